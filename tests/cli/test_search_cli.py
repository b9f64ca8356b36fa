"""The search commands as a user runs them: real proxies on the embedded Ray cluster."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pandas as pd
import pytest
import yaml

from store import run_sql
from tests.conftest import ROOT, kill_once_done, mixer_cli, one_error_line, run_mixer, synthetic_documents, write_jsonl

QUICK = ["--preset", "tiny", "--tokens", "16k", "--seq-len", "64", "--batch-size", "8", "--cpus", "1"]


@pytest.fixture(scope="module")
def searched(tmp_path_factory):  # every test using it is slow: it starts Ray
    """A workspace with three domains and one finished, validated regmix search."""
    tmp = tmp_path_factory.mktemp("search")
    ws = tmp / "ws"
    for i, (name, alphabet) in enumerate([("web", "abc "), ("code", "{}();\n"), ("math", "0123+=")]):
        src = write_jsonl(tmp / f"{name}.jsonl", synthetic_documents(i, 60, alphabet))
        assert run_mixer("corpus", "add", name, str(src), workspace=ws).returncode == 0
    result = run_mixer("search", "start", "--name", "s1", "--backend", "regmix", "--runs", "5", "--parallel", "2",
                       "--validate", "--option", "n_candidates=20000", *QUICK, workspace=ws, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return ws, result


@pytest.mark.slow
def test_search_runs_to_budget_and_validates(searched):
    ws, result = searched
    assert "recommended mixture" in result.stdout
    runs = json.loads(run_mixer("sql", "select run_id, status, target_value from run_summary order by run_id",
                                "-f", "json", workspace=ws).stdout)
    assert [r["run_id"] for r in runs] == [f"s1/{i:04d}" for i in range(5)] + ["s1/validation"]
    assert all(r["status"] == "done" and r["target_value"] > 0 for r in runs)
    rec = json.loads(run_mixer("sql", "select validation_run_id, predicted from recommendations", "-f", "json",
                               workspace=ws).stdout)
    assert rec[0]["validation_run_id"] == "s1/validation" and rec[0]["predicted"] > 0


@pytest.mark.slow
def test_best_export_predict_plot_status_list(searched, tmp_path):
    ws, _ = searched
    best = run_mixer("best", workspace=ws)
    assert best.returncode == 0 and "predicted avg" in best.stdout
    exported = json.loads(run_mixer("export", "s1", "--format", "json", workspace=ws).stdout)["mixture"]
    assert set(exported) == {"web", "code", "math"} and sum(exported.values()) == pytest.approx(1.0)
    megatron = run_mixer("export", "--format", "megatron", "--path-template", "/data/{name}", workspace=ws).stdout.split()
    assert sum(map(float, megatron[0::2])) == pytest.approx(1.0) and all(p.startswith("/data/") for p in megatron[1::2])
    olmo = yaml.safe_load(run_mixer("export", "s1", "-f", "olmo", "--path-template", "/d/{name}", workspace=ws).stdout)
    assert "max_tokens" not in olmo["source_mixture_config"]  # the proxies' 16k budget is not the target job's
    olmo = yaml.safe_load(run_mixer("export", "s1", "-f", "olmo", "--path-template", "/d/{name}", "--token-budget",
                                    "100B", workspace=ws).stdout)
    assert olmo["source_mixture_config"]["max_tokens"] == 100 * 10**9
    (tmp_path / "m.csv").write_text("web,code,math\n1,0,0\n0.2,0.3,0.5\n")
    predicted = json.loads(run_mixer("predict", "s1", "--mixtures", str(tmp_path / "m.csv"), "-f", "json",
                                     workspace=ws).stdout)
    assert len(predicted) == 2 and all(p["predicted"] > 0 and p["predicted_std"] >= 0 for p in predicted)
    png = tmp_path / "s1.png"
    assert run_mixer("plot", "s1", "-o", str(png), workspace=ws).returncode == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    status = run_mixer("search", "status", "s1", workspace=ws)
    assert re.search(r"│ status +│ done +│", status.stdout) and re.search(r"│ runs +│ 6 +│", status.stdout)
    listed = json.loads(run_mixer("search", "list", "-f", "json", workspace=ws).stdout)
    assert [(s["name"], s["status"], s["runs"]) for s in listed] == [("s1", "done", 6)]


@pytest.fixture(scope="module")
def three_domains(tmp_path_factory):
    """A workspace with the same three domains and no search (built in-process, fast)."""
    tmp = tmp_path_factory.mktemp("domains")
    ws = tmp / "ws"
    for i, (name, alphabet) in enumerate([("web", "abc "), ("code", "{}();\n"), ("math", "0123+=")]):
        src = write_jsonl(tmp / f"{name}.jsonl", synthetic_documents(i, 60, alphabet))
        assert mixer_cli("corpus", "add", name, str(src), workspace=ws).returncode == 0
    return ws


@pytest.mark.parametrize("args, needle", [
    (["search", "start", "--backend", "gp", "--tokens", "16k"], "unknown backend 'gp'"),
    (["search", "start", "--option", "depth=3", "--tokens", "16k"], "has no option depth"),
    (["search", "start", "--option", "top_k=2.7", "--tokens", "16k"], "regmix.top_k expects int, got '2.7'"),
    (["search", "start", "--target", "physics", "--tokens", "16k"], "unknown target physics"),
    (["search", "start", "--domains", "web,nope", "--tokens", "16k"], "unknown domain 'nope'"),
    (["search", "start", "--tokens", "10M"], "more than --max-epochs 4 times"),
    (["search", "start", "--tokens", "10M", "--backend", "mixing_law"], "more than --max-epochs 4 times"),
    (["search", "start", "--tokens", "16k", "--backend", "mixing_law", "--option", "prior=web=0.5,nope=0.5"],
     "mixing_law prior 'web=0.5,nope=0.5': unknown domain(s) in mixture: nope"),
    (["search", "start", "--runs", "0", "--tokens", "16k"], "--runs must be at least 1, got 0"),
    (["search", "start", "--max-cost", "0.5", "--tokens", "16k"],
     "--max-cost 0.5 cannot pay for one run at the target fidelity tiny:16000 (it costs 1)"),
    (["search", "start", "--name", "a/b", "--tokens", "16k"], "bad search name 'a/b'"),
    (["search", "start", "--evaluator", "table"], "--evaluator table needs --table SEARCH"),
    (["search", "start", "--evaluator", "table", "--table", "t", "--swarm", "4"], "--swarm is a proxy setting, and a table search trains"),
    (["search", "start", "--evaluator", "table", "--table", "t", "--cpus", "2"], "--cpus is a proxy setting, and a table search trains"),
    (["search", "start", "--evaluator", "table", "--table", "t", "--replicates", "2"],
     "--replicates trains the best runs again with other seeds and needs --evaluator proxy"),
    (["search", "start", "--fidelities", "tiny:8k", "--preset", "tiny"], "either --fidelities or --preset"),
    (["search", "start", "--fidelities", "tiny:8k,1m:5k", "--backend", "bayesopt", "--target-fidelity", "tiny:8k"],
     "must have the largest model"),
    (["search", "start", "--fidelities", "tiny:8k,tiny:16k"],
     "backend regmix searches one fidelity, this search has 2 (tiny:8000, tiny:16000); use --backend bayesopt or "
     "mixing_law or one fidelity"),
    (["search", "start", "--fidelities", "tiny:1k,tiny:8k,tiny:16k,tiny:32k", "--backend", "mixing_law"],
     "fidelity tiny:1000 trains fewer tokens than one batch (16 x 256 tokens)"),
    (["search", "start", "--fidelities", "tiny:0,tiny:32k", "--backend", "bayesopt"],
     "fidelity tiny:0 trains fewer tokens than one batch"),
    (["search", "start", "--fidelities", "tiny:8k,tiny:16k", "--backend", "mixing_law"],
     "mixing_law extrapolates each mixture from its runs at the cheaper fidelities to the target (tiny:16000), but "
     "it has 1 cheaper fidelity, needs 3; add fidelities along tokens"),
    (["search", "start", "--fidelities", "tiny:8k,tiny:16k", "--backend", "bayesopt", "--fidelity-cost", "tiny:8k"],
     "bad --fidelity-cost 'tiny:8k'"),
    (["search", "start", "--fidelities", "huge:8k,tiny:16k", "--backend", "bayesopt"], "unknown proxy preset 'huge'"),
    (["search", "start", "--seed", "-1", "--tokens", "16k"], "--seed must be between 0 and 4294967295, got -1"),
    (["search", "start", "--group", "prose"], "bad --group 'prose': expected NAME=PATTERN"),
    (["search", "start", "--group", "x=nope*", "--tokens", "16k"], "unknown domain pattern 'nope*'"),
    (["search", "start", "--seed", str(2**80), "--tokens", "16k"], "--seed must be between 0 and 4294967295"),
    (["search", "start", "--cpus", "-1", "--tokens", "16k"], "--cpus must be 0 or more, got -1.0"),
    (["search", "start", "--target", "web=nan", "--tokens", "16k"], "bad target weight 'web=nan': not a finite number"),
    (["search", "start", "--seq-len", "0", "--tokens", "16k"], "--seq-len must be at least 1, got 0"),
    (["search", "start", "--batch-size", "0", "--tokens", "16k"], "--batch-size must be at least 1, got 0"),
    (["search", "start", "--name", "", "--tokens", "16k"], "--name is empty"),
    (["search", "start", "--domains", " , ", "--tokens", "16k"], "--domains is empty"),
    (["search", "start", "--fidelities", "", "--backend", "bayesopt"], "--fidelities is empty"),
    (["search", "start", "--fidelities", "tiny:8k,,tiny:16k", "--backend", "bayesopt"],
     "--fidelities 'tiny:8k,,tiny:16k' has an empty item"),
    (["search", "start", "--target", "a=0.5,,b=0.5", "--tokens", "16k"], "--target 'a=0.5,,b=0.5' has an empty item"),
    (["search", "start", "--min", "a=0.1,,b=0.1", "--tokens", "16k"], "--min 'a=0.1,,b=0.1' has an empty item"),
    (["best", ""], "no search named ''"),
    (["runs", "list", "-n", "-1"], "--limit must be 0 (all) or more, got -1"),
    (["sql", "select 1", "--wait", "-1"], "--wait must be 0 or more seconds, got -1.0"),
    (["search", "status", "ghost"], "no search named 'ghost'"),
    (["search", "resume", "ghost"], "no search named 'ghost'"),
    (["search", "cancel", "ghost"], "no search named 'ghost'"),
    (["best", "ghost"], "no search named 'ghost'"),
    (["export", "ghost"], "no search named 'ghost'"),
    (["plot", "ghost", "-o", "x.png"], "no search named 'ghost'"),
    (["predict", "ghost", "--mixtures", "m.csv"], "no search named 'ghost'"),
])
def test_search_command_errors(three_domains, args, needle):
    assert needle in one_error_line(mixer_cli(*args, workspace=three_domains))
    assert "ghost" in args or json.loads(mixer_cli("search", "list", "-f", "json", workspace=three_domains).stdout) == []


@pytest.mark.parametrize("args, needle", [
    (["search", "start", "--name", "s1", "--tokens", "16k"], "already exists"),
    (["search", "resume", "s1"], "already finished"),
    (["export", "s1", "--format", "csv"], "unknown export format 'csv'"),
    (["export", "s1", "--format", "megatron"], "--format megatron needs --path-template"),
    (["plot", "s1", "-o", "x.txt"], "use a .png"),
    (["predict", "s1", "--mixtures", "/no/file.csv"], "file not found"),
])
@pytest.mark.slow
def test_errors_on_a_finished_search(searched, args, needle):
    ws, _ = searched
    assert needle in one_error_line(mixer_cli(*args, workspace=ws))


def test_commands_in_an_empty_workspace(workspace):
    assert "no domains" in one_error_line(mixer_cli("search", "start", workspace=workspace))
    assert "no search yet" in one_error_line(mixer_cli("best", workspace=workspace))


@pytest.mark.slow
def test_kill_9_of_the_driver_then_resume(searched):
    ws, _ = searched
    kill_once_done(["search", "start", "--name", "k9", "--backend", "random", "--runs", "8", "--parallel", "2",
                    *QUICK, "--tokens", "60k"], ws,
                   "SELECT count(*) AS n FROM runs WHERE run_id LIKE 'k9/%' AND status = 'done'", 1)
    before = run_sql(ws / "mixer.duckdb", "SELECT run_id, status, target_value AS target FROM runs WHERE run_id LIKE 'k9/%'")
    assert 1 <= (before.status == "done").sum() < 8
    resumed = run_mixer("search", "resume", "k9", workspace=ws, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    n_done = int((before.status == "done").sum())
    assert f"resuming 'k9': {n_done} of 8 runs done" in resumed.stdout
    progress = re.findall(r"^k9: (\d+)/8 runs", resumed.stdout, flags=re.M)  # not a terminal: a line per run
    assert progress and int(progress[-1]) == 8
    after = run_sql(ws / "mixer.duckdb", "SELECT run_id, status, target_value AS target FROM runs WHERE run_id LIKE 'k9/%' "
                    "ORDER BY run_id")
    assert list(after.run_id) == [f"k9/{i:04d}" for i in range(8)] and (after.status == "done").all()
    finished_before = before[before.status == "done"].set_index("run_id").target
    assert after.set_index("run_id").target[finished_before.index].tolist() == finished_before.tolist()


@pytest.mark.slow
def test_bayesopt_at_two_proxy_fidelities_with_measured_costs(searched):
    ws, _ = searched
    result = run_mixer("search", "start", "--name", "mf", "--backend", "bayesopt", "--fidelities", "tiny:8k,tiny:16k",
                       "--runs", "6", "--parallel", "2", "--seq-len", "64", "--batch-size", "8",
                       "--option", "n_candidates=256", workspace=ws, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = json.loads(run_mixer("sql", "select fidelity, preset, tokens, status from run_summary "
                                "where search = 'mf' order by run_id", "-f", "json", workspace=ws).stdout)
    assert len(runs) == 6 and all(r["status"] == "done" for r in runs)
    assert all(r["fidelity"] == f"{r['preset']}:{r['tokens']}" for r in runs)
    assert [r["tokens"] for r in runs[:4]] == [16000, 16000, 8000, 8000]  # the baselines at the target, then cheap
    rec = json.loads(run_mixer("sql", "select r.evidence from recommendations r join searches s on s.id = r.search_id "
                               "where s.name = 'mf'", "-f", "json", workspace=ws).stdout)
    evidence = rec[0]["evidence"]   # a JSON column: written as the object it holds
    # the target's run time is measured by search s1 (tiny at 16k tokens), the cheap one's by this
    # search: the costs are their ratio, not the FLOPs prior of exactly 1/2
    assert evidence["target_fidelity"] == "tiny:16000" and evidence["costs"]["tiny:16000"] == 1.0
    assert evidence["costs"]["tiny:8000"] > 0 and evidence["costs"]["tiny:8000"] != pytest.approx(0.5, abs=1e-9)
    status = run_mixer("search", "status", "mf", workspace=ws).stdout
    shown = re.search(r"│ runs by fidelity │ (.*?) +│", status).group(1)
    assert sorted(part.split(":")[1] for part in shown.split(", ")) == ["16000", "8000"], status
    assert re.search(r"│ cost +│ [\d.]+ spent \(in units of one run at the target fidelity; a run costs", status)


@pytest.mark.slow
def test_mixing_law_climbs_a_token_ladder_and_answers_from_the_extrapolated_targets(searched):
    ws, _ = searched
    result = run_mixer("search", "start", "--name", "nested", "--backend", "mixing_law", "--fidelities",
                       "tiny:2k,tiny:4k,tiny:8k,tiny:16k", "--runs", "11", "--parallel", "2", "--seq-len", "64",
                       "--batch-size", "8", "--option", "bootstrap=2", workspace=ws, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = json.loads(run_mixer("sql", "select tokens, mixture, status from run_summary where search = 'nested' "
                                "and role = 'search' order by run_id", "-f", "json", workspace=ws).stdout)
    assert all(r["status"] == "done" for r in runs)
    assert [r["tokens"] for r in runs] == [16000, 16000] + [2000, 4000, 8000] * 3  # baselines, then ladders
    assert runs[2]["mixture"] == runs[3]["mixture"] == runs[4]["mixture"] != runs[5]["mixture"]
    rec = json.loads(run_mixer("sql", "select r.evidence from recommendations r join searches s on s.id = r.search_id "
                               "where s.name = 'nested'", "-f", "json", workspace=ws).stdout)
    assert rec[0]["evidence"]["extrapolated"] == 1  # the 2 baselines are measured at the target (and laddered)
    assert rec[0]["evidence"]["quality"]["runs"] == 3
    best = run_mixer("best", "nested", workspace=ws).stdout
    assert "fit: 3 mixtures at the target fidelity, 1 of them extrapolated from their runs at cheaper ones" in best
    plotted = run_mixer("plot", "nested", "-o", str(ws.parent / "nested.png"), workspace=ws)
    assert plotted.returncode == 0 and (ws.parent / "nested.png").stat().st_size > 0, plotted.stderr[-2000:]


@pytest.mark.slow  # runs the CLI in subprocesses
def test_an_unreachable_ray_address_fails_in_seconds_and_leaves_no_run_running(three_domains):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()  # a subprocess: this test process may already hold a Ray cluster
    result = run_mixer("search", "start", "--name", "unreachable", "--ray-address", f"127.0.0.1:{port}", *QUICK,
                       workspace=three_domains)
    assert f"cannot connect to Ray at 127.0.0.1:{port}" in one_error_line(result)
    assert time.perf_counter() - start < 30
    searches = mixer_cli("sql", "select count(*) as n from searches where name = 'unreachable'", "-f", "json",
                         workspace=three_domains)
    assert json.loads(searches.stdout) == [{"n": 0}]  # refused before the search was stored


@pytest.mark.slow  # builds the built-in domains and trains 4 + 9 tiny runs
def test_the_demo_prints_the_table_how_it_chose_and_a_plain_verdict_then_serves(tmp_path):
    from tests.search.web.conftest import free_port

    port = free_port()
    demo = subprocess.Popen([sys.executable, "-c", "import cli; cli.app()", "--workspace", str(tmp_path / "ws"), "demo",
                             "--runs", "4", "--tokens", "16k", "--serve", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out = ""
        for line in demo.stdout:          # until the web view says where it is
            out += line
            if "mixer serve:" in line:
                break
        assert f"http://127.0.0.1:{port}/" in out, demo.stderr.read()[-2000:] if demo.poll() is not None else out
        for _ in range(150):              # the URL is printed as uvicorn starts listening
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/searches", timeout=30) as response:
                    served = json.loads(response.read())["searches"]
                break
            except OSError:
                time.sleep(0.2)
        assert [s["name"] for s in served] == ["demo-1"] and served[0]["status"] == "done"
    finally:
        os.killpg(demo.pid, signal.SIGTERM)
        demo.wait(30)
    assert "target stdlib-tail (held-out loss), mean over 3 seeds" in out and "{" not in out.split("next:")[0]
    shown = dict(pair.split() for pair in re.search(r"^recommended mixture: (.*)$", out, flags=re.M)[1].split(", "))
    assert set(shown) <= {"python", "cpp", "docs", "licenses"} and abs(sum(map(float, shown.values())) - 1) < 0.01
    assert re.search(r"chosen: the (best run|uniform mixture's run|token-share mixture's run) demo-1/\d{4} "
                     r"\(observed [\d.]+, one run\)", out)
    verdicts = r"^the recommendation (\((uniform|token-share)\) )?(beats|is better than|does NOT beat|is the) " \
               r"(uniform|token-share)"
    assert len(re.findall(verdicts, out, flags=re.M)) == 2



@pytest.mark.parametrize("args, message", [
    (["--target", "rust"], "unknown target rust (available: avg, worst, cpp, docs, licenses, python, stdlib-tail)"),
    (["--target", "python=0"], "target 'python=0' weighs every metric 0: nothing to minimise"),
    (["--runs", "0"], "--runs must be at least 1, got 0"),
    (["--backend", "rust"], "unknown backend 'rust' (choose from random, regmix, bayesopt, mixing_law, climb)")])
def test_a_mistaken_demo_option_ends_in_one_line_before_anything_is_built(tmp_path, args, message):
    result = mixer_cli("demo", *args, workspace=tmp_path / "ws")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"mixer: error: {message}"]
    assert not (tmp_path / "ws").exists()  # refused before the workspace was opened


@pytest.mark.slow  # runs the CLI in subprocesses
def test_a_mixing_law_search_over_a_table_shows_its_interaction_matrix(tmp_path):
    """Per-domain losses that follow a known law: the search fits one law per domain, `best`
    prints t (domains x domains) and `plot` draws it."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    X = rng.dirichlet(np.ones(3), 40)
    t = np.array([[-1.0, 0.5, 0.5], [0.3, -0.8, 0.5], [0.2, 0.2, -0.4]])
    losses = 2.0 + np.exp(X @ t.T)
    names = ["web", "code", "math"]
    pd.DataFrame(X, columns=[f"w_{n}" for n in names]).assign(id=range(40)).to_csv(tmp_path / "mix.csv", index=False)
    pd.DataFrame(losses, columns=[f"m_{n}" for n in names]).assign(id=range(40)).to_csv(tmp_path / "met.csv", index=False)
    ws = tmp_path / "ws"
    imported = mixer_cli("runs", "import", str(tmp_path / "mix.csv"), str(tmp_path / "met.csv"),
                         "--search", "past", "--weight-prefix", "w_", "--metric-prefix", "m_", "--id-column", "id",
                         workspace=ws)
    assert imported.returncode == 0, imported.stderr
    started = mixer_cli("search", "start", "--name", "law", "--evaluator", "table", "--table", "past",
                        "--backend", "mixing_law", "--runs", "12", "--parallel", "4", workspace=ws)
    assert started.returncode == 0, started.stderr
    shown = mixer_cli("best", "law", workspace=ws).stdout
    assert "fitted mixing law" in shown and "optimum: exact convex program (cvxpy)" in shown
    cells = [[c.strip() for c in re.split(r"[│|┃]", line) if c.strip()] for line in shown.splitlines()]
    header = next(row for row in cells if row[:1] == ["law"])
    matrix = {row[0]: dict(zip(header[1:], map(float, row[1:]))) for row in cells
              if len(row) == 4 and row[0] in names and row[1] != "law"}
    assert set(matrix) == set(names)
    assert all(matrix[n][n] < 0 for n in names)      # more of a domain lowers its own loss, as in the truth
    assert mixer_cli("plot", "law", "-o", str(tmp_path / "law.png"), workspace=ws).returncode == 0
    assert (tmp_path / "law.png").stat().st_size > 10_000


@pytest.mark.slow  # runs the CLI in subprocesses
def test_a_table_search_that_runs_out_says_so_when_it_ends(workspace, tmp_path):
    rows = np.random.default_rng(0).dirichlet(np.ones(2), size=10)
    pd.DataFrame({"w_a": rows[:, 0], "w_b": rows[:, 1], "m_a": rows[:, 0] + 1.0}).to_csv(tmp_path / "t.csv", index=False)
    assert mixer_cli("runs", "import", str(tmp_path / "t.csv"), "--search", "t", "--weight-prefix", "w_",
                     "--metric-prefix", "m_", workspace=workspace).returncode == 0
    out = mixer_cli("search", "start", "--evaluator", "table", "--table", "t", "--backend", "random", "--runs", "15",
                    "--parallel", "5", workspace=workspace)
    assert out.returncode == 0, out.stderr
    assert "note: fewer runs than --runs: every entry of table 't' it could run was run" in out.stdout
