"""Optimising for a user's own target, as the README's section runs it: an eval-only set,
constraints, `best` saying which bind, and the one-line errors."""

import json

import pytest

from store import run_sql
from tests.conftest import mixer_cli, one_error_line, run_mixer, synthetic_documents, write_jsonl

def DB(ws):  # noqa: N802
    return ws / "mixer.duckdb"


QUICK = ["--preset", "tiny", "--tokens", "16k", "--seq-len", "64", "--batch-size", "8", "--cpus", "1"]


@pytest.fixture(scope="module")
def target_ws(tmp_path_factory):
    """Three domains and an eval-only set drawn from two of their alphabets."""
    tmp = tmp_path_factory.mktemp("target")
    ws = tmp / "ws"
    for i, (name, alphabet) in enumerate([("web", "abc "), ("code", "{}();\n"), ("math", "0123+=")]):
        src = write_jsonl(tmp / f"{name}.jsonl", synthetic_documents(i, 60, alphabet))
        assert mixer_cli("corpus", "add", name, str(src), workspace=ws).returncode == 0
    src = write_jsonl(tmp / "support.jsonl", synthetic_documents(9, 40, "abc {}();"))
    added = mixer_cli("corpus", "add", "support", str(src), "--eval-only", workspace=ws)
    assert added.returncode == 0 and "eval-only set 'support'" in added.stdout, added.stderr
    return ws


@pytest.mark.slow  # reason: a proxy search on Ray, then best and sql as subprocesses
def test_a_search_for_an_eval_set_under_constraints(target_ws):
    listed = json.loads(mixer_cli("corpus", "list", "-f", "json", workspace=target_ws).stdout)
    assert {r["name"]: r["use"] for r in listed}["support"] == "eval-only"
    result = run_mixer("search", "start", "--name", "t1", "--runs", "5", "--parallel", "2", "--swarm", "2",
                       "--target", "support", "--min", "web=0.2", "--fix", "math=0.1", "--option",
                       "n_candidates=20000", *QUICK, workspace=target_ws, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = run_sql(DB(target_ws), "SELECT run_id, mixture, target_value, final_values FROM run_summary "
                                      "WHERE search = 't1'")
    assert len(runs) == 5
    for row in runs.itertuples():
        assert row.mixture["web"] >= 0.2 - 1e-9 and abs(row.mixture["math"] - 0.1) < 1e-9
        assert row.target_value == pytest.approx(row.final_values["support"])
    curve = run_sql(DB(target_ws), "SELECT count(DISTINCT step) AS n FROM metrics WHERE split = 'eval' "
                                       "AND name = 'support' GROUP BY run_id")
    assert (curve.n > 1).all()   # along the curve, not only at the end
    best = mixer_cli("best", "t1", workspace=target_ws)
    assert best.returncode == 0 and "math at --fix 0.1" in best.stdout, best.stdout


@pytest.mark.slow  # reason: an online proxy run on Ray
def test_aioli_steers_toward_an_eval_only_set(target_ws):
    result = run_mixer("online", "start", "--method", "aioli", "--name", "o1", "--target", "support",
                       "--preset", "tiny", "--tokens", "64k", "--seq-len", "64", "--batch-size", "8", "--cpus", "1",
                       "--option", "update_steps=40", "--option", "lp_rounds=1", "--option", "lp_steps=2",
                       workspace=target_ws, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    told = run_sql(DB(target_ws), "SELECT DISTINCT name FROM metrics WHERE run_id = 'o1/online' AND split = 'online'")
    assert sorted(told.name) == ["code", "math", "support", "web"]   # the controller was told the target's loss
    run = run_sql(DB(target_ws), "SELECT target_value, final_values FROM run_summary WHERE run_id = 'o1/online'")
    assert run.target_value[0] == pytest.approx(run.final_values[0]["support"])
    refused = mixer_cli("online", "start", "--method", "doremi", "--target", "support", "--tokens", "64k",
                        workspace=target_ws)
    assert "doremi steers by each domain's excess loss" in one_error_line(refused)


@pytest.mark.slow  # reason: one CLI subprocess per case
@pytest.mark.parametrize("args, message", [
    (["search", "start", "--tokens", "16k", "--min", "web=0.7,code=0.5"], "the --min and --fix weights sum to 1.2 > 1: no mixture meets them"),
    (["search", "start", "--fix", "web=1.5"], "--fix web=1.5: a weight must be between 0 and 1"),
    (["search", "start", "--tokens", "60k", "--fix", "web=0.9"], "--fix web=0.9 is above its repetition cap"),
    (["search", "start", "--domains", "web,support"], "support is an eval-only set: measured, never trained on, so "
                                                      "it cannot be in a search's --domains (use it in --target)"),
    (["proxy", "train", "--mixture", "web=0.5,support=0.5"], "support is an eval-only set"),
    (["search", "start", "--target", "worst", "--maximize"], "--target worst is the largest loss, minimised"),
    (["search", "start", "--tokens", "16k", "--eval", "web"], "--eval names web, not an eval-only set of the workspace (known: support)"),
])
def test_target_and_constraint_mistakes_are_one_line_and_store_nothing(target_ws, args, message):
    before = run_sql(DB(target_ws), "SELECT count(*) AS n FROM searches").n[0]
    result = mixer_cli(*args, workspace=target_ws)
    assert result.returncode == 2 and message in one_error_line(result)
    assert run_sql(DB(target_ws), "SELECT count(*) AS n FROM searches").n[0] == before
