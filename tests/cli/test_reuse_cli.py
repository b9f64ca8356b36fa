"""When the corpus changes, as a user runs it (issue 33): `corpus diff`, a search started
with `--reuse` on the embedded Ray cluster, killed with -9 and resumed, and its export."""

import json

import pytest

from store import run_sql
from tests.conftest import kill_once_done, mixer_cli, one_error_line, run_mixer, synthetic_documents, write_jsonl

QUICK = ["--preset", "tiny", "--tokens", "16k", "--seq-len", "64", "--batch-size", "8", "--cpus", "1"]
ALPHABETS = {"web": "abc ", "code": "{}();\n", "math": "0123+=", "books": "xyz .", "legal": "§ lmn"}


def corpus_add(ws, tmp, name, seed, *flags):
    src = write_jsonl(tmp / f"{name}-{seed}.jsonl", synthetic_documents(seed, 60, ALPHABETS[name]))
    assert mixer_cli("corpus", "add", name, str(src), *flags, workspace=ws).returncode == 0


@pytest.fixture(scope="module")
def changed(tmp_path_factory):  # slow: starts Ray
    tmp = tmp_path_factory.mktemp("reuse")
    ws = tmp / "ws"
    for seed, name in enumerate(["web", "code", "math", "books"]):
        corpus_add(ws, tmp, name, seed)
    before = run_mixer("search", "start", "--name", "before", "--backend", "random", "--runs", "4", "--parallel", "2",
                       *QUICK, workspace=ws, timeout=600)
    assert before.returncode == 0, before.stderr[-3000:]
    corpus_add(ws, tmp, "web", 10, "--replace", "--force")
    corpus_add(ws, tmp, "legal", 11)
    return ws


@pytest.mark.slow
def test_corpus_diff_names_the_replaced_and_the_added_domain(changed):
    shown = mixer_cli("corpus", "diff", "before", "--format", "json", workspace=changed)
    assert shown.returncode == 0, shown.stderr
    rows = {r["domain"]: r["change"] for r in json.loads(shown.stdout)}
    assert rows == {"web": "changed", "code": "unchanged", "math": "unchanged", "books": "unchanged",
                    "legal": "added"}


@pytest.mark.slow
def test_a_reuse_search_killed_and_resumed_trains_leaf_mixtures_and_exports_leaves(changed, tmp_path):
    args = ["search", "start", "--name", "after", "--reuse", "before", "--backend", "random", "--runs", "8",
            "--parallel", "1", *QUICK]   # runs enough that the kill, polled every 3 s, lands before the end
    kill_once_done(args, changed, "SELECT count(*) AS n FROM runs WHERE run_id LIKE 'after/%' AND status = 'done'", 1)
    again = run_mixer("search", "resume", "after", workspace=changed, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    runs = run_sql(changed / "mixer.duckdb", "SELECT run_id, mixture, status FROM runs WHERE run_id LIKE 'after/%'")
    assert (runs.status == "done").all() and len(runs) >= 4
    for mixture in runs.mixture:                 # the search's coordinates: the group, web, legal
        assert set(dict(mixture)) <= {"before-kept", "web", "legal"}
    spec = json.loads(run_sql(changed / "mixer.duckdb", "SELECT config FROM searches WHERE name = 'after'").config[0])
    shares = spec["proxy"]["groups"]["before-kept"]
    assert set(shares) <= {"code", "math", "books"} and abs(sum(shares.values()) - 1) < 1e-9
    exported = mixer_cli("export", "after", "--format", "json", workspace=changed)
    assert exported.returncode == 0, exported.stderr
    weights = json.loads(exported.stdout)
    leaves = weights["mixture"]
    assert "before-kept" not in json.dumps(weights) and abs(sum(leaves.values()) - 1) < 1e-6
    kept = [d for d in shares if leaves.get(d, 0) > 0]
    for a in kept:                                 # the reused domains keep the earlier ratios exactly
        for b in kept:
            assert leaves[a] / leaves[b] == pytest.approx(shares[a] / shares[b], rel=1e-6)
    best = mixer_cli("best", "after", workspace=changed).stdout
    assert "as the domains it trains on" in best
    status = mixer_cli("search", "status", "after", workspace=changed).stdout
    assert "reusing search 'before' (aggregate)" in status and "searched as one domain 'before-kept'" in status


@pytest.mark.slow
def test_a_reuse_with_another_token_budget_is_one_line_and_stores_nothing(changed):
    quick = QUICK[:]
    quick[quick.index("16k")] = "32k"
    result = run_mixer("search", "start", "--name", "odd", "--reuse", "before", *quick, workspace=changed)
    assert result.returncode == 2
    assert one_error_line(result) == ("mixer: error: search 'before' trained its proxies with --tokens 16000 (now "
                                      "32000): reusing its answer needs the same proxies (or --reuse-mode full)")
    assert run_sql(changed / "mixer.duckdb", "SELECT count(*) AS n FROM searches WHERE name = 'odd'").n[0] == 0
