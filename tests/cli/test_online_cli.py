"""`mixer online start` as a user runs it: Aioli and DoReMi on the embedded Ray cluster,
the trajectory in DuckDB, the schedule exported and read back, and bad input."""

import json

import pytest

from mixer.loader import LoaderConfig, MixtureLoader
from mixer.mixture import Schedule
from store import MetricRow, RunRecord, SearchRecord, create_search, run_sql, write_runs
from tests.conftest import mixer_cli, one_error_line, run_mixer, synthetic_documents, write_jsonl

QUICK = ["--preset", "tiny", "--tokens", "64k", "--seq-len", "64", "--batch-size", "8", "--cpus", "1"]
AIOLI = ["--option", "update_steps=40", "--option", "lp_rounds=1", "--option", "lp_steps=2"]


@pytest.fixture(scope="module")
def domains_ws(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("online")
    ws = tmp / "ws"
    for i, (name, alphabet) in enumerate([("web", "abc "), ("code", "{}();\n"), ("math", "0123+=")]):
        src = write_jsonl(tmp / f"{name}.jsonl", synthetic_documents(i, 60, alphabet))
        assert mixer_cli("corpus", "add", name, str(src), workspace=ws).returncode == 0
    return ws


@pytest.fixture(scope="module")
def aioli_job(domains_ws):  # slow: starts Ray
    result = run_mixer("online", "start", "--method", "aioli", "--name", "a1", *QUICK, *AIOLI,
                       workspace=domains_ws, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return domains_ws


@pytest.mark.slow
def test_aioli_records_its_trajectory_and_exports_a_schedule_the_loader_reads(aioli_job, tmp_path):
    ws = aioli_job
    weights = run_sql(ws / "mixer.duckdb", "select step, name, value from metrics where run_id = 'a1/online' "
                                           "and split = 'weight' order by step, name")
    by_step = weights.groupby("step").value.sum()
    assert len(by_step) >= 10 and ((by_step - 1).abs() < 1e-9).all()       # every stage a mixture
    probes = weights[(weights.step < 12) & (weights.value == 0.75)]
    assert sorted(probes.name) == ["code", "math", "web"]                   # one probe per domain first
    assert mixer_cli("export", "a1", "--schedule", "--with-probes", "-o", str(tmp_path / "s.json"),
                     workspace=ws).returncode == 0
    doc = json.loads((tmp_path / "s.json").read_text())
    schedule = Schedule.from_dict(doc)
    assert doc["schedule"][1]["tokens"] == 2 * 8 * 64 and len(schedule.starts) == len(by_step)
    decided = json.loads(mixer_cli("export", "a1", "--schedule", workspace=ws).stdout)   # the default: no probes
    assert [stage["start"] for stage in decided["schedule"]][0] == 0 and len(decided["schedule"]) < len(by_step)
    assert not any(0.75 in stage["mixture"].values() for stage in decided["schedule"])
    static = run_sql(ws / "mixer.duckdb", "select role, mixture, seed, target_value from run_summary "
                                          "where run_id = 'a1/uniform'").iloc[0]    # judged against uniform, same seed
    online = run_sql(ws / "mixer.duckdb", "select seed, target_value from run_summary where run_id = 'a1/online'").iloc[0]
    assert static.role == "baseline" and static.seed == online.seed and set(static.mixture.values()) == {1 / 3}
    from mixer.domain import open_domains
    loader = MixtureLoader(open_domains(ws / "domains"), schedule, LoaderConfig(seq_len=64, batch_size=8,
                                                                                 total_steps=125))
    assert next(loader).tokens.shape == (8, 65)
    decided_loader = MixtureLoader(open_domains(ws / "domains"), Schedule.from_dict(decided),
                                   LoaderConfig(seq_len=64, batch_size=8, total_steps=125))
    assert next(decided_loader).tokens.shape == (8, 65)
    assert mixer_cli("plot", "a1", "-o", str(tmp_path / "a1.png"), workspace=ws).returncode == 0
    best = mixer_cli("best", "a1", workspace=ws).stdout
    assert "averaged over its training" in best
    verdict = "WORSE than" if online.target_value > static.target_value else "better than"
    assert f"the online run ended at {online.target_value:.4f} (avg)" in best and verdict in best
    assert "cannot be resumed" in one_error_line(mixer_cli("search", "resume", "a1", workspace=ws))
    assert one_error_line(mixer_cli("export", "a1", "--with-probes", workspace=ws)) == (
        "mixer: error: --with-probes is for --schedule (an online run's stages)")


@pytest.mark.slow
def test_doremi_reuses_a_finished_reference_run_and_stays_above_eps(aioli_job):
    ws = aioli_job
    result = run_mixer("online", "start", "--method", "doremi", "--name", "d1", *QUICK, "--option", "update_steps=25",
                       "--option", "reference_run=a1/online", "--no-compare", workspace=ws, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = run_sql(ws / "mixer.duckdb", "select run_id from run_summary where search = 'd1'")
    assert list(runs.run_id) == ["d1/online"]                             # no reference trained
    weights = run_sql(ws / "mixer.duckdb", "select step, value from metrics where run_id = 'd1/online' "
                                           "and split = 'weight'")
    assert weights.step.nunique() == 5 and weights.value.min() >= 1e-3 / 3


def _stored_run(ws, run_id: str, status: str, domains: list[str], tokens: int = 64_000) -> None:
    """A run in the store as `mixer proxy train` leaves it (status, final held-out losses)."""
    search = SearchRecord(id=f"s-{run_id}", name=f"past-{run_id}", backend="random", evaluator="proxy")
    create_search(ws / "mixer.duckdb", search)
    write_runs(ws / "mixer.duckdb", [RunRecord(run_id, search.id, {d: 1 / len(domains) for d in domains},
                                               status=status, error=None if status == "done" else "diverged",
                                               preset="tiny", tokens=tokens)],
               [MetricRow(run_id, 10, "val", d, 2.0) for d in domains] if status == "done" else [])


@pytest.mark.parametrize("args, needle", [
    (["--method", "odin"], "unknown online method 'odin' (choose from aioli, doremi)"),
    (["--method", "aioli", "--option", "depth=3"], "online aioli has no option depth"),
    (["--method", "aioli", "--option", "update_steps=4000"], "is longer than the run (125 steps)"),
    (["--method", "aioli", "--domains", "web"], "online mixing needs at least 2 domains, has 1"),
    (["--method", "doremi", "--option", "reference_run=ghost"], "reference_run 'ghost': no such run"),
    (["--method", "doremi", "--option", "reference_run=bad"], "reference_run 'bad' failed: diverged"),
    (["--method", "doremi", "--option", "reference_run=two"], "was measured on code, web, not on this job's"),
    (["--method", "doremi", "--option", "reference_run=big"], "was trained as tiny:2000000, not as this job's tiny:64000"),
    (["--method", "doremi", "--option", "reference=web=0.5,nope=0.5"], "unknown domain(s) in mixture: nope"),
    (["--method", "doremi", "--option", "reference=uniform", "--option", "reference_run=bad"], "not both"),
    (["--method", "aioli", "--option", "one_hot_factor=0.3"], "one_hot_factor must exceed 1 / domains = 0.333"),
])
def test_bad_online_input_is_one_line_and_stores_nothing(domains_ws, args, needle):
    db = domains_ws / "mixer.duckdb"
    if run_sql(db, "select count(*) as n from runs where run_id in ('bad', 'two')").n[0] == 0:
        _stored_run(domains_ws, "bad", "failed", ["web", "code", "math"])
        _stored_run(domains_ws, "two", "done", ["web", "code"])
        _stored_run(domains_ws, "big", "done", ["web", "code", "math"], tokens=2_000_000)
    before = run_sql(db, "select count(*) as n from searches").n[0]
    assert needle in one_error_line(mixer_cli("online", "start", *args, *QUICK, workspace=domains_ws))
    assert run_sql(db, "select count(*) as n from searches").n[0] == before
