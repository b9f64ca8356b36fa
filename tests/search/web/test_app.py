"""The web view's JSON documents, pages and export against the store, through Starlette's
test client (no browser): the numbers are the store's, exports are `mixer export`'s, the
token gate holds, and nothing a browser sends is trusted."""

from __future__ import annotations

import math

import pytest

from tests.conftest import mixer_cli
from tests.search.web.conftest import HOSTILE, LiveDriver


@pytest.fixture(scope="module")
def ws(web_workspace):
    from mixer.workspace import open_workspace

    return open_workspace(web_workspace.root, create=False)


def client(ws, **config):
    from starlette.testclient import TestClient

    from search.web.app import AppConfig, create_app

    return TestClient(create_app(ws, AppConfig(snapshot_s=0.0, **config)), base_url="http://127.0.0.1:8470")


def sql(ws, query: str):
    from store import run_sql

    return run_sql(ws.db_path, query)


def test_searches_document_matches_the_store(ws, web_workspace):
    rows = {r["name"]: r for r in client(ws).get("/api/searches").json()["searches"]}
    assert set(rows) == {web_workspace.imported, web_workspace.finished, web_workspace.running}
    finished = rows[web_workspace.finished]
    expected = sql(ws, f"SELECT count(*) AS n, min(target_value) AS best FROM run_summary WHERE search = "
                       f"'{web_workspace.finished}' AND role = 'search'").iloc[0]
    assert (finished["done"], finished["budget"], finished["kind"]) == (int(expected.n), 8, "search")
    assert math.isclose(finished["best"], float(expected.best), rel_tol=1e-12)
    assert rows[web_workspace.imported]["budget"] is None and rows[web_workspace.imported]["runs"] == 60


def test_search_document_runs_curve_and_recommendation(ws, web_workspace):
    doc = client(ws).get(f"/api/searches/{web_workspace.finished}").json()
    stored = sql(ws, f"SELECT run_id, target_value FROM run_summary WHERE search = '{web_workspace.finished}'"
                     " ORDER BY created_at, run_id")
    assert doc["runs"]["id"] == list(stored.run_id)
    assert doc["runs"]["target"] == pytest.approx(list(stored.target_value))
    assert all(math.isclose(sum(w), 1.0, abs_tol=1e-4) for w in doc["runs"]["weights"])
    assert HOSTILE in doc["domains"]
    curve = doc["best_curve"]   # the best so far never gets worse, and ends at the best run
    assert [c["best"] for c in curve] == sorted((c["best"] for c in curve), reverse=True)
    assert curve[-1]["best"] == pytest.approx(doc["progress"]["best"]["value"])
    rec = doc["recommendation"]
    stored_rec = sql(ws, "SELECT predicted FROM recommendations r JOIN searches s ON s.id = r.search_id WHERE "
                         f"s.name = '{web_workspace.finished}' ORDER BY r.created_at DESC LIMIT 1").iloc[0]
    assert rec["predicted"] == pytest.approx(float(stored_rec.predicted))
    assert math.isclose(sum(rec["mixture"].values()), 1.0, abs_tol=1e-6)
    assert any(line.startswith("fit:") for line in rec["lines"]) and rec["quality"]["cv_spearman"] is not None


def test_curves_of_a_run(ws, web_workspace):
    doc = client(ws).get("/api/curves", params={"run": f"{web_workspace.finished}/0000"}).json()
    assert doc["search"] == web_workspace.finished and "val/loss" in doc["series"]


def test_export_is_what_mixer_export_writes(ws, web_workspace):
    c = client(ws)
    for fmt, template in (("json", None), ("megatron", "/data/{name}_text_document")):
        params = {"format": fmt} | ({"path_template": template} if template else {})
        response = c.get(f"/api/searches/{web_workspace.finished}/export", params=params)
        cli = mixer_cli("export", web_workspace.finished, "--format", fmt,
                        *(["--path-template", template] if template else []), workspace=web_workspace.root)
        assert response.status_code == 200 and response.text == cli.stdout
        assert response.headers["content-disposition"].startswith("attachment")


@pytest.mark.parametrize("path, status, words", [
    ("/api/searches/nope", 404, "no search named 'nope'"),
    ("/api/searches/tsearch/export?format=docx", 400, "unknown export format 'docx'"),
    ("/api/searches/tsearch/export?format=megatron", 400, "needs --path-template"),
    ("/api/searches/tsearch/export?format=megatron&path_template=/x/{0}", 400, "no {name}"),
    ("/api/searches/tsearch/export?format=megatron&path_template=/d/{name}{name:>10000000}", 400, "no other braces"),
    ("/api/searches/nope/export?format=json", 404, "no search named 'nope'"),
    ("/api/curves?run=tsearch/9999", 404, "no run 'tsearch/9999'"),
    ("/api/searches/x';DROP TABLE runs;--", 404, "no search named"),
])
def test_bad_requests_answer_one_line_and_change_nothing(ws, path, status, words):
    before = sql(ws, "SELECT count(*) AS n FROM runs").n[0]
    response = client(ws).get(path)
    assert response.status_code == status and words in response.json()["error"]
    assert sql(ws, "SELECT count(*) AS n FROM runs").n[0] == before


def test_pages_escape_names_and_forbid_inline_script(ws, web_workspace):
    response = client(ws).get("/search/" + "<img src=x onerror=alert(1)>")     # no such search: said, escaped
    assert response.status_code == 404
    assert "<img src=x" not in response.text and "no search named &#x27;&lt;img src=x onerror=alert(1)&gt;" in response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page = client(ws).get(f"/search/{web_workspace.finished}")
    assert page.status_code == 200 and f'data-search="{web_workspace.finished}"' in page.text


def test_static_front_end_ships_with_the_package(ws):
    c = client(ws)
    assert "function el(" in c.get("/static/app.js").text and "table.data" in c.get("/static/style.css").text
    assert "cdn" not in c.get("/").text.lower()


def test_token_gate(ws):
    token = "t" * 24
    c = client(ws, token=token, local_only=False)
    assert c.get("/api/searches").status_code == 401
    assert c.get("/api/searches", headers={"authorization": f"Bearer {'x' * 24}"}).status_code == 401
    first = c.get("/", params={"token": token}, follow_redirects=False)   # the URL mixer serve prints
    assert first.status_code == 303 and first.headers["location"] == "http://127.0.0.1:8470/"   # no token kept
    assert "mixer_token" in first.headers["set-cookie"]
    assert c.get("/").status_code == 200 and c.get("/api/searches").status_code == 200   # the cookie carries it
    assert client(ws, token=token, local_only=False).get(
        "/api/searches", headers={"authorization": f"Bearer {token}"}).status_code == 200


def test_local_server_refuses_foreign_host_headers(ws):
    from starlette.testclient import TestClient

    from search.web.app import create_app

    rebound = TestClient(create_app(ws), base_url="http://evil.example:8470")
    assert rebound.get("/api/searches").status_code == 400
    assert TestClient(create_app(ws), base_url="http://[::1]:8470").get("/api/searches").status_code == 200


def test_token_gate_answers_json_and_takes_any_case_of_bearer(ws):
    token = "t" * 24
    c = client(ws, token=token, local_only=False)
    refused = c.get("/api/searches")
    assert refused.status_code == 401 and "needs its token" in refused.json()["error"]
    assert c.get("/api/searches", headers={"authorization": f"bearer {token}"}).status_code == 200


def test_live_driver_shows_running_and_new_runs(ws, web_workspace):
    c = client(ws)
    driver = LiveDriver(web_workspace.root, web_workspace.running)
    try:
        before = c.get(f"/api/searches/{web_workspace.running}").json()
        run_id = driver.add_run(2.5)
        after = c.get(f"/api/searches/{web_workspace.running}").json()
        listed = {r["name"]: r for r in c.get("/api/searches").json()["searches"]}
    finally:
        driver.stop()
    assert run_id not in before["runs"]["id"] and run_id in after["runs"]["id"]
    assert after["runs"]["wall_s"][after["runs"]["id"].index(run_id)] == 1.5
    assert listed[web_workspace.running]["live"] and listed[web_workspace.running]["status"] == "running"
    assert (listed[web_workspace.finished]["own_done"], listed[web_workspace.finished]["budget"]) == (8, 8)
    assert after["progress"]["budget_text"].startswith(f"{after['progress']['own_done']} of 4 runs done")


def test_corpus_document_lists_domains_and_clusterings(tmp_path, small_domains):
    from mixer.workspace import open_workspace
    from store import ClusteringRecord, ClusterRecord, write_clustering

    ws = open_workspace(tmp_path / "ws")
    for meta in small_domains.values():      # the domains' folders, as `corpus add` leaves them
        (ws.domains_dir / meta.name).symlink_to(meta.path)
    clusters = [ClusterRecord(0, "c-00", 30, 900, 1.0, ["alpha", HOSTILE]), ClusterRecord(1, "c-01", 12, 400, 1.0)]
    write_clustering(ws.db_path, ClusteringRecord("c", "lsa", 42, 42, clusters=clusters))
    doc = client(ws).get("/api/corpus").json()
    assert [d["name"] for d in doc["domains"]] == sorted(m.name for m in small_domains.values())
    assert all(d["use"] == "train" and d["tokens"] > 0 and d["held_out_tokens"] > 0 for d in doc["domains"])
    [clustering] = doc["clusterings"]
    assert [(c["domain"], c["documents"], c["top_terms"]) for c in clustering["clusters"]] == [
        ("c-00", 30, ["alpha", HOSTILE]), ("c-01", 12, [])]


def test_serve_refuses_missing_store_and_bad_flags(tmp_path, web_workspace):
    import socket

    for args, words in ((["serve", "--workspace", str(tmp_path / "none")], "does not exist"),
                        (["serve", "--workspace", str(tmp_path)], "no mixer store"),
                        (["serve", "--port", "70000"], "--port 70000 is not a port"),
                        (["serve", "--host", "0.0.0.0", "--token", "short"], "shorter than 16"),
                        (["serve", "--host", "0.0.0.0", "--token", "abcdefgh[/bold]ijklmnop"], "letters, digits"),
                        (["serve", "--host", "nonexistent.invalid"], "--host nonexistent.invalid:"),
                        (["demo", "--port", "8470"], "--port is the web view's port: give --serve with it")):
        result = mixer_cli(*args, workspace=tmp_path)
        assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr, result.stderr
    with socket.socket() as taken:      # a port in use: one line before anything is printed
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = mixer_cli("serve", "--workspace", str(web_workspace.root), "--port", str(port))
        assert result.returncode == 2 and result.stdout == ""
        assert f"cannot listen on 127.0.0.1 port {port}:" in result.stderr
        demo = mixer_cli("demo", "--serve", "--port", str(port), workspace=tmp_path / "demo")
        assert demo.returncode == 2 and "cannot listen" in demo.stderr and not (tmp_path / "demo").exists()
