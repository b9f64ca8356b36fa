"""Targets users have (issue 30): worst-case targets, weight constraints and eval-only sets,
through whole searches and the commands that read them."""

import numpy as np
import pandas as pd
import pytest

from mixer import MixerError
from mixer.config import build
from mixer.corpus import AddRequest
from mixer.ingest import IngestConfig
from mixer.workspace import open_workspace
from search import driver
from search.domains import add_domain
from search.evaluators import build_space, search_domains
from search.spec import SearchSpec
from search.targets import Target
from store import ImportSpec, get_search, import_runs, latest_recommendation, run_sql, search_runs
from tests.conftest import synthetic_documents, truth, write_jsonl


@pytest.fixture
def two_loss_ws(tmp_path):
    """A table of 150 runs with two losses whose larger one switches across the simplex."""
    ws = open_workspace(tmp_path / "ws")
    X = np.random.default_rng(0).dirichlet(np.ones(4), size=150)
    pd.DataFrame(X, columns=[f"w_{d}" for d in "abcd"]).assign(index=range(150)).to_csv(tmp_path / "mix.csv",
                                                                                      index=False)
    pd.DataFrame({"index": range(150), "m_left": truth(X), "m_right": truth(X[:, ::-1])}).to_csv(
        tmp_path / "met.csv", index=False)
    import_runs(ws.db_path, ImportSpec(mixtures_csv=tmp_path / "mix.csv", metrics_csv=tmp_path / "met.csv",
                                       search="past", weight_prefix="w_", metric_prefix="m_"))
    return ws


def _table_spec(name, backend, target, runs=14, constraints=None, options=None):
    return build(SearchSpec, dict(name=name, backend=backend, options=options or {}, budget=dict(runs=runs, parallel=7),
                                  target=dict(spec=target), constraints=constraints or {}, table=dict(search="past")),
                 "search")


@pytest.mark.slow  # reason: two whole table searches, a mixing-law fit per round
@pytest.mark.parametrize("backend, options", [("mixing_law", {"bootstrap": 4}),
                                              ("regmix", {"n_candidates": 20_000, "n_models": 2})])
def test_worst_is_the_largest_stored_loss_and_constraints_hold_on_a_table(two_loss_ws, backend, options):
    constraints = {"minimum": {"a": 0.1}, "maximum": {"d": 0.5}}
    record = driver.create(two_loss_ws, _table_spec(f"w-{backend}", backend, "worst:left,right", 14, constraints,
                                                    options))
    rec = driver.run(two_loss_ws, record.name)
    runs = search_runs(two_loss_ws.db_path, get_search(two_loss_ws.db_path, record.name).id)
    done = runs[runs.status == "done"]
    assert len(done) == 14
    for row in done.itertuples():
        assert row.target_value == pytest.approx(max(row.final_values["left"], row.final_values["right"]))
        assert row.mixture["a"] >= 0.1 - 1e-9 and row.mixture.get("d", 0.0) <= 0.5 + 1e-9
    x = rec.mixture.as_dict()
    assert x["a"] >= 0.1 - 1e-6 and x.get("d", 0.0) <= 0.5 + 1e-6
    assert "binding" in latest_recommendation(two_loss_ws.db_path, record.id)["evidence"]
    if backend == "mixing_law":
        assert "epigraph" in rec.evidence["solver"] or rec.evidence.get("rule", "").startswith(("best-run", "baseline"))


def test_constraints_no_table_run_meets_and_infeasible_ones_store_nothing(two_loss_ws):
    with pytest.raises(MixerError, match="no run of table 'past' meets the --min/--max/--fix constraints"):
        driver.create(two_loss_ws, _table_spec("x", "random", "left", constraints={"minimum": {"a": 0.97}}))
    with pytest.raises(MixerError, match="the --min and --fix weights sum to 1.2 > 1"):
        driver.create(two_loss_ws, _table_spec("y", "random", "left", constraints={"minimum": {"a": 0.6, "b": 0.6}}))
    assert run_sql(two_loss_ws.db_path, "SELECT count(*) AS n FROM searches WHERE kind = 'search'").n[0] == 0


@pytest.fixture
def eval_ws(tmp_path):
    """Two training domains and an eval-only set, byte-tokenised."""
    ws = open_workspace(tmp_path / "ws")
    for i, name in enumerate(["prose", "digits"]):
        add_domain(ws, AddRequest(name=name, sources=[write_jsonl(tmp_path / f"{name}.jsonl",
                                                                  synthetic_documents(i, 80, "ab c" if i else "0123 "))]))
    add_domain(ws, AddRequest(name="support", sources=[write_jsonl(tmp_path / "support.jsonl",
                                                                   synthetic_documents(7, 30, "ab 01"))],
                              ingest=IngestConfig(eval_only=True)))
    return ws


def test_an_eval_only_set_is_never_a_training_domain_and_is_measured(eval_ws):
    assert list(search_domains(eval_ws, None)) == ["digits", "prose"]
    with pytest.raises(MixerError, match="support is an eval-only set: measured, never trained on, so it cannot be "
                                         r"in a search's --domains \(use it in --target\)"):
        search_domains(eval_ws, ["prose", "support"])
    spec = build(SearchSpec, dict(name="s", target=dict(spec="support=0.7,prose=0.3"),
                                  proxy=dict(train=dict(tokens=4096, seq_len=64, batch_size=8))), "search")
    built = build_space(eval_ws, spec)
    assert built.measured == ["digits", "prose", "support"] and built.eval_sets == ["support"]
    spec.target.check(built.measured)
    assert spec.target.value({"digits": 1.0, "prose": 2.0, "support": 3.0}, built.averaged) == pytest.approx(2.7)
    assert Target("avg").value({"digits": 1.0, "prose": 2.0, "support": 3.0}, built.averaged) == 1.5


def test_a_set_smaller_than_one_window_is_refused_and_nothing_is_left(eval_ws, tmp_path):
    with pytest.raises(MixerError, match="eval-only set 'tiny' has .* tokens, fewer than one evaluation window"):
        add_domain(eval_ws, AddRequest(name="tiny", sources=[write_jsonl(tmp_path / "t.jsonl", ["short text"])],
                                       ingest=IngestConfig(eval_only=True)))
    assert not (eval_ws.domains_dir / "tiny").exists()
    assert list(run_sql(eval_ws.db_path, "SELECT name FROM domains ORDER BY name").name) == ["digits", "prose", "support"]
