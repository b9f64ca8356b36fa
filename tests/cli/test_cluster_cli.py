"""`mixer corpus cluster`, `corpus clusters` and `plot --clusters` as a user runs them, and
the whole unlabeled-corpus path: cluster -> climb search on the cluster domains -> export."""

import json

import numpy as np
import pytest

from store import run_sql
from tests.cli.test_search_cli import QUICK
from tests.conftest import mixer_cli, one_error_line, run_mixer
from tests.mixer.test_clustering import mixed_corpus

SMALL = ["--clusters", "3", "--initial-clusters", "24", "--min-cluster-docs", "2"]


@pytest.mark.slow  # clusters a corpus through the CLI
def test_cluster_list_show_and_plot(workspace, tmp_path):
    docs, _ = mixed_corpus(tmp_path / "mixed.jsonl")
    made = mixer_cli("corpus", "cluster", "mix", str(tmp_path / "mixed.jsonl"), *SMALL, workspace=workspace)
    assert made.returncode == 0, made.stderr
    assert f"clustering 'mix': {len(docs)} documents -> 3 domains (mix/00 ... mix/02)" in made.stdout
    rows = json.loads(mixer_cli("corpus", "clusters", "mix", "-f", "json", workspace=workspace).stdout)
    assert [r["domain"] for r in rows] == ["mix/00", "mix/01", "mix/02"]
    assert sum(r["docs"] for r in rows) == len(docs) and all(r["top_terms"] and r["parents"] for r in rows)
    domains = json.loads(mixer_cli("corpus", "list", "-f", "json", workspace=workspace).stdout)
    assert {d["name"]: d["docs"] + d["val_docs"] for d in domains} == {r["domain"]: r["docs"] for r in rows}
    table = mixer_cli("corpus", "clusters", "mix", workspace=workspace).stdout
    assert "mix/00" in table and "top_terms" in table
    png = tmp_path / "mix.png"
    assert mixer_cli("plot", "--clusters", "mix", "-o", str(png), workspace=workspace).returncode == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


@pytest.mark.parametrize("setup, args, needle", [
    ("empty", ["corpus", "cluster", "c", "EMPTY"], "no documents found in the sources"),
    ("few", ["corpus", "cluster", "c", "FEW", "--clusters", "4"], "fewer than 2 per cluster for --clusters 4"),
    (None, ["corpus", "cluster", "c", "SRC", "--clusters", "1"], "--clusters must be at least 2"),
    (None, ["corpus", "cluster", "c", "SRC", "--clusters", "9", "--initial-clusters", "8"],
     "--clusters 9 is more than --initial-clusters 8"),
    (None, ["corpus", "cluster", "c", "SRC", "--embedder", "file:NOFILE"], "does not exist"),
    ("rows", ["corpus", "cluster", "c", "SRC", "--embedder", "file:EMB"], "rows but the sources have"),
    ("dims", ["corpus", "cluster", "c", "SRC", "--embedder", "file:EMB"], "every row needs the same dimension"),
    (None, ["corpus", "cluster", "c", "SRC", "--embedder", "sentence-transformers:NOFILE"], "does not exist"),
    (None, ["corpus", "cluster", "c", "SRC", "--embedder", "bert"], "unknown --embedder 'bert'"),
    (None, ["corpus", "cluster", "../evil", "SRC"], "bad clustering name"),
    (None, ["corpus", "clusters", "ghost"], "no clustering named 'ghost'"),
    (None, ["plot", "--clusters", "ghost", "-o", "x.png"], "no clustering named 'ghost'"),
])
def test_cluster_errors_are_one_line_and_store_nothing(workspace, tmp_path, setup, args, needle):
    docs, _ = mixed_corpus(tmp_path / "mixed.jsonl")
    (tmp_path / "empty.jsonl").write_text(json.dumps({"text": "  "}) + "\n")
    (tmp_path / "few.jsonl").write_text("".join(json.dumps({"text": f"doc {i}"}) + "\n" for i in range(5)))
    emb = tmp_path / ("e.npy" if setup == "rows" else "e.parquet")
    if setup == "rows":
        np.save(emb, np.ones((len(docs) + 1, 4), dtype=np.float32))
    elif setup == "dims":
        import pandas as pd
        pd.DataFrame({"e": [[1.0, 2.0]] * (len(docs) - 1) + [[1.0, 2.0, 3.0]]}).to_parquet(emb)
    paths = {"SRC": tmp_path / "mixed.jsonl", "EMPTY": tmp_path / "empty.jsonl", "FEW": tmp_path / "few.jsonl"}
    args = [str(paths.get(a, a)).replace("NOFILE", str(tmp_path / "nope")).replace("EMB", str(emb)) for a in args]
    assert needle in one_error_line(mixer_cli(*args, workspace=workspace))
    if (workspace / "mixer.duckdb").exists():
        assert run_sql(workspace / "mixer.duckdb", "select count(*) as n from domains").n[0] == 0
        assert run_sql(workspace / "mixer.duckdb", "select count(*) as n from clusterings").n[0] == 0
    assert not (workspace / "domains").exists() or list((workspace / "domains").iterdir()) == []


@pytest.mark.slow
def test_unlabeled_corpus_to_a_climb_search_to_an_export(workspace, tmp_path):
    mixed_corpus(tmp_path / "mixed.jsonl", sizes=(90, 60, 40))
    assert run_mixer("corpus", "cluster", "mix", str(tmp_path / "mixed.jsonl"), *SMALL,
                     workspace=workspace).returncode == 0
    searched = run_mixer("search", "start", "--name", "c1", "--backend", "climb", "--domains", "mix/*",
                         "--runs", "6", "--parallel", "2", *QUICK, workspace=workspace, timeout=600)
    assert searched.returncode == 0, searched.stderr[-3000:]
    runs = run_sql(workspace / "mixer.duckdb", "select mixture, status from run_summary where search = 'c1'")
    assert len(runs) >= 6 and (runs.status == "done").all()
    assert all(set(m) == {"mix/00", "mix/01", "mix/02"} for m in runs.mixture.map(dict))
    exported = json.loads(run_mixer("export", "c1", "--format", "json", workspace=workspace).stdout)["mixture"]
    assert set(exported) == {"mix/00", "mix/01", "mix/02"} and sum(exported.values()) == pytest.approx(1.0)
    config = json.loads(run_sql(workspace / "mixer.duckdb", "select config from searches where name = 'c1'").config[0])
    assert config["proxy"]["domains"] == ["mix/00", "mix/01", "mix/02"]   # the pattern, expanded and stored


@pytest.mark.slow  # clusters a corpus through the CLI
def test_skip_bad_lines_skips_and_counts_them(workspace, tmp_path):
    docs, _ = mixed_corpus(tmp_path / "mixed.jsonl")
    with open(tmp_path / "mixed.jsonl", "a") as f:
        f.write("{not json\n" + json.dumps({"text": 5}) + "\n" + json.dumps({"body": "x"}) + "\n")
    refused = one_error_line(mixer_cli("corpus", "cluster", "mix", str(tmp_path / "mixed.jsonl"), *SMALL,
                                       workspace=workspace))
    assert "not valid JSON" in refused and "--skip-bad-lines" in refused
    made = mixer_cli("corpus", "cluster", "mix", str(tmp_path / "mixed.jsonl"), *SMALL, "--skip-bad-lines",
                     workspace=workspace)
    assert made.returncode == 0 and f"{len(docs)} documents" in made.stdout and "3 bad lines skipped" in made.stdout
    meta = json.loads((workspace / "domains" / "mix+00" / "meta.json").read_text())
    assert meta["bad_lines"] == 3
