"""Seed noise (`search start --replicates`) and `mixer transfer` as a user runs them:
real proxies on the embedded Ray cluster, a transfer killed with -9 and run again."""

import re

import pytest

from store import run_sql
from tests.conftest import kill_once_done, mixer_cli, one_error_line, run_mixer, synthetic_documents, write_jsonl

QUICK = ["--preset", "tiny", "--tokens", "16k", "--seq-len", "64", "--batch-size", "8", "--cpus", "1"]


@pytest.fixture(scope="module")
def replicated(tmp_path_factory):  # slow: starts Ray
    tmp = tmp_path_factory.mktemp("transfer")
    ws = tmp / "ws"
    for i, (name, alphabet) in enumerate([("web", "abc "), ("code", "{}();\n"), ("math", "0123+=")]):
        src = write_jsonl(tmp / f"{name}.jsonl", synthetic_documents(i, 60, alphabet))
        assert mixer_cli("corpus", "add", name, str(src), workspace=ws).returncode == 0
    result = run_mixer("search", "start", "--name", "r1", "--runs", "5", "--parallel", "2", "--replicates", "2",
                       "--option", "n_candidates=20000", *QUICK, workspace=ws, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return ws, result


@pytest.mark.slow
def test_replicates_measure_the_seed_noise_and_best_says_whether_the_gain_exceeds_it(replicated):
    ws, started = replicated
    runs = run_sql(ws / "mixer.duckdb", "select run_id AS id, seed, init_seed from runs where run_id like 'r1/replicate/%'")
    assert len(runs) == 2 and runs.init_seed.isna().all()          # a fresh initialisation, not the search's
    assert runs.seed.nunique() == 2                                  # and each its own: offsets span two
    best = mixer_cli("best", "r1", workspace=ws).stdout
    noise = float(re.search(r"seed noise: ([\d.]+) \(std of one run, from 2 replicate pairs\)", best).group(1))
    assert noise > 0
    assert (re.search(r"vs uniform: predicted gain -?[\d.]+ (exceeds|does NOT exceed) the noise on a difference", best)
            or "vs uniform: the answer is the uniform mixture" in best
            or "not judged, the model cannot be trusted yet" in best)
    fresh = r"a fresh seed: [\d.]+ ± [\d.]+ \(.* over 2 paired runs; from so few pairs this ± is itself loose"
    assert re.search(fresh, best) and re.search(fresh, started.stdout)   # start ends as best does
    status = mixer_cli("search", "status", "r1", workspace=ws).stdout
    assert "seed noise" in status and "replicate" not in re.search(r"│ best .*", status).group(0)
    fit = re.search(r"fit: (\d+) runs", best)
    assert fit is None or int(fit.group(1)) == 5                      # replicates never feed the model


@pytest.mark.slow
def test_a_transfer_killed_midway_and_rerun_has_every_mixture_and_seed_once(replicated, tmp_path):
    ws, _ = replicated
    args = ["transfer", "r1", "--fidelity", "tiny:32k", "--top", "1", "--baselines", "uniform", "--seeds", "2",
            "--parallel", "2"]
    kill_once_done(args, ws, "SELECT count(*) AS n FROM runs WHERE run_id LIKE 'r1/transfer%' AND status = 'done'", 2)
    before = run_sql(ws / "mixer.duckdb", "SELECT run_id AS id, target_value AS target FROM runs WHERE run_id LIKE 'r1/transfer%' AND status = 'done'")
    again = run_mixer(*args, workspace=ws, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    after = run_sql(ws / "mixer.duckdb", "SELECT run_id AS id, status, target_value AS target FROM runs WHERE run_id LIKE 'r1/transfer%' ORDER BY id")
    recommended_is_uniform = "the recommendation is the uniform mixture itself" in again.stdout
    labels = ["recommended", "top-1"] + ([] if recommended_is_uniform else ["uniform"])   # a baseline answer: once
    expected = sorted(f"r1/transfer{scale}/{label}/seed-{k}" for scale in ("", "@tiny:32000") for label in labels
                      for k in range(2))
    if len(after) == len(expected) - 4:   # the recommendation was the best run itself: no separate top-1
        expected = [e for e in expected if "/top-1/" not in e]
    assert list(after.id) == expected and (after.status == "done").all()
    kept = after.set_index("id").target
    assert kept[before.id].tolist() == before.target.tolist()       # finished runs reused, not trained again
    assert "rank correlation (Spearman)" in again.stdout and "too few mixtures for an interval" in again.stdout
    advice = re.search(r"seed noise ([\d.]+) \(std of one run, 2 pairs\); the mixtures' runs spread [\d.]+: "
                       r"(?:about (\d) seeds|(8) seeds, the most chosen)", again.stdout)   # said before training
    assert advice and 2 <= int(advice.group(2) or advice.group(3)) <= 8, again.stdout
    assert "with --seeds 2 the ranking's interval will be wide" in again.stdout or advice.group(2) == "2"
    assert recommended_is_uniform or "95% interval" in again.stdout
    assert mixer_cli("plot", "r1", "--transfer", "-o", str(tmp_path / "t.png"), workspace=ws).returncode == 0


@pytest.mark.parametrize("args, needle", [
    (["transfer", "ghost", "--fidelity", "1m:1M"], "no search named 'ghost'"),
    (["transfer", "x", "--fidelity", "1m"], "bad fidelity '1m'"),
    (["transfer", "x", "--fidelity", "1m:1M", "--seeds", "1"], "--seeds >= 2"),
    (["transfer", "x", "--fidelity", "1m:1M", "--baselines", "best"], "unknown baseline(s) best"),
    (["plot", "ghost", "--transfer", "-o", "x.png"], "no search named 'ghost'"),
])
def test_transfer_errors(workspace, args, needle):
    assert needle in one_error_line(mixer_cli(*args, workspace=workspace))
