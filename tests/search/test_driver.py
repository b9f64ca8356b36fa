"""The driver with the table evaluator (fast, no Ray), on a table the test builds."""

import numpy as np
import pandas as pd
import pytest

from mixer import MixerError
from mixer.workspace import open_workspace
from search import driver
from search.proposing import run_seed
from mixer.config import build
from search.spec import SearchSpec
from store import ImportSpec, get_search, import_runs, latest_recommendation, run_sql, search_runs
from tests.conftest import REGMIX, needs_regmix
from tests.conftest import OPTIMUM, truth


@pytest.fixture
def table_ws(tmp_path):
    ws = open_workspace(tmp_path / "ws")
    X = np.random.default_rng(0).dirichlet(np.ones(4), size=120)
    mixtures = pd.DataFrame(X, columns=[f"w_{d}" for d in "abcd"]).assign(index=range(120))
    y = truth(X)
    metrics = pd.DataFrame({"index": range(120), "m_loss": y, "m_other": -y})
    mixtures.to_csv(tmp_path / "mix.csv", index=False)
    metrics.to_csv(tmp_path / "met.csv", index=False)
    import_runs(ws.db_path, ImportSpec(mixtures_csv=tmp_path / "mix.csv", metrics_csv=tmp_path / "met.csv",
                                       search="past", weight_prefix="w_", metric_prefix="m_", fidelity="small"))
    return ws


def _spec(name="s", backend="regmix", table="past", target="loss", maximize=False, runs=24, parallel=4,
          max_cost=None, options=None, fidelities=None, target_fidelity=None, fidelity_costs=None, validate=False,
          seed=0):
    """A table search spec from flat keywords (the nested spec has one field per component)."""
    options = {"n_candidates": 20_000, "screen_top": 500, "n_models": 3} if options is None else options
    return build(SearchSpec, dict(
        name=name, backend=backend, options=options, validate=validate, seed=seed,
        budget=dict(runs=runs, parallel=parallel, max_cost=max_cost), target=dict(spec=target, maximize=maximize),
        fidelity=dict(labels=fidelities, target=target_fidelity, costs=fidelity_costs or {}),
        table=dict(search=table)), "search")


@pytest.mark.slow  # a search end to end (the fast lane keeps the backend contract)
def test_table_search_end_to_end(table_ws):
    search = driver.create(table_ws, _spec())
    rec = driver.run(table_ws, search.name)
    runs = search_runs(table_ws.db_path, search.id)
    assert len(runs) == 24 and (runs.status == "done").all()
    assert runs.pool_key.is_unique and runs.pool_key.str.startswith("past/").all()
    assert (search_runs(table_ws.db_path, search.id).role == "search").sum() == 24
    stored = latest_recommendation(table_ws.db_path, search.id)
    assert stored["mixture"] == pytest.approx(rec.mixture.as_dict())
    assert np.abs(rec.mixture.vector(list("abcd")) - OPTIMUM).sum() < 0.35
    assert runs.target_value.min() <= np.sort(truth(np.random.default_rng(0).dirichlet(np.ones(4), size=120)))[5]
    with pytest.raises(MixerError, match="already finished"):
        driver.run(table_ws, search.name)


@pytest.mark.slow  # a search end to end (the fast lane keeps the backend contract)
def test_maximize_flips_the_direction(table_ws):
    search = driver.create(table_ws, _spec(name="max", target="other", maximize=True, backend="random", options={}))
    rec = driver.run(table_ws, search.name)
    best = search_runs(table_ws.db_path, search.id).target_value.max()
    assert rec.evidence["best_observed"] == pytest.approx(best)  # the user's orientation, not the backend's


@pytest.mark.slow  # a search end to end (the fast lane keeps the backend contract)
@pytest.mark.parametrize("backend, runs", [("regmix", 2), ("mixing_law", 2), ("bayesopt", 1)])
def test_a_budget_too_small_for_the_model_ends_with_the_best_run_and_says_why(table_ws, backend, runs):
    """Before, the search stayed 'created' and every resume repeated the fit's error."""
    search = driver.create(table_ws, _spec(name=f"small-{backend}", backend=backend, runs=runs, parallel=1, options={}))
    rec = driver.run(table_ws, search.name)
    done = search_runs(table_ws.db_path, search.id)
    assert get_search(table_ws.db_path, search.name).status == "done" and len(done) == runs
    assert rec.evidence["rule"] == "best-run:too-few-runs" and "finished runs" in rec.evidence["reason"]
    assert rec.evidence["best_observed"] == pytest.approx(done.target_value.min()) and rec.predicted is None
    best_x = done.set_index("run_id").mixture[rec.evidence["best_run"]]
    assert rec.mixture.as_dict() == pytest.approx(best_x)


@pytest.mark.slow  # a search end to end (the fast lane keeps the backend contract)
def test_a_table_search_that_runs_out_of_entries_says_so(table_ws):
    from search import views

    search = driver.create(table_ws, _spec(name="all", backend="random", runs=130, parallel=40, options={}))
    driver.run(table_ws, search.name)
    summary, _ = views.status(table_ws, get_search(table_ws.db_path, search.name))
    assert summary["budget"] == "120 of 130 runs done (every entry of table 'past' it could run was run)"


class FailingEvaluator:
    """Wraps a search's evaluator; calls `on_batch(n)` before the n-th batch (1-based)."""

    def __init__(self, inner, on_batch):
        self.inner, self.on_batch, self.batches = inner, on_batch, 0
        self.parallel, self.instant = inner.parallel, inner.instant

    def evaluate(self, runs):
        self.batches += 1
        self.on_batch(self.batches)
        yield from self.inner.evaluate(runs)


@pytest.mark.slow  # a search end to end (the fast lane keeps the backend contract)
def test_resume_after_a_crash_reruns_only_unfinished_runs(table_ws):
    search = driver.create(table_ws, _spec(name="crashy", runs=12))

    def ctrl_c_on_third(n):
        if n == 3:
            raise KeyboardInterrupt  # Ctrl-C after the third round was recorded as queued

    with pytest.raises(KeyboardInterrupt):
        driver.run(table_ws, search.name, evaluator=lambda inner: FailingEvaluator(inner, ctrl_c_on_third))
    before = search_runs(table_ws.db_path, search.id)
    assert (before.status == "done").sum() == 8 and (before.status == "queued").sum() == 4  # none left "running"
    from search import views

    summary, _ = views.status(table_ws, get_search(table_ws.db_path, search.name))
    assert summary["status"].startswith("interrupted") and summary["budget"] == "8 of 12 runs done"
    assert views.latest(table_ws, None).name == "crashy"
    driver.run(table_ws, search.name)
    after = search_runs(table_ws.db_path, search.id)
    assert len(after) == 12 and (after.status == "done").all() and after.run_id.is_unique
    kept = after.set_index("run_id").loc[before[before.status == "done"].run_id]
    assert list(kept.target_value) == list(before[before.status == "done"].target_value)


@pytest.mark.slow  # a search end to end (the fast lane keeps the backend contract)
def test_cancel_stops_a_running_search_after_its_round(table_ws):
    search = driver.create(table_ws, _spec(name="stopme"))

    def cancel_from_elsewhere(n):
        if n == 2:
            driver.cancel(table_ws, search.name)  # as `mixer search cancel` in another process

    assert driver.run(table_ws, search.name, evaluator=lambda inner: FailingEvaluator(inner, cancel_from_elsewhere)) is None
    assert len(search_runs(table_ws.db_path, search.id)) == 8
    with pytest.raises(MixerError, match="already cancelled"):
        driver.cancel(table_ws, search.name)
    with pytest.raises(MixerError, match="was cancelled"):
        driver.run(table_ws, search.name)


@pytest.mark.slow  # a search end to end (the fast lane keeps the backend contract)
def test_a_cancel_during_the_last_round_ends_cancelled_without_a_recommendation(table_ws):
    search = driver.create(table_ws, _spec(name="lastround", runs=8, parallel=4))

    def cancel_in_the_last_round(n):
        if n == 2:
            driver.cancel(table_ws, search.name)

    assert driver.run(table_ws, search.name, evaluator=lambda inner: FailingEvaluator(inner, cancel_in_the_last_round)) is None
    assert get_search(table_ws.db_path, search.name).status == "cancelled"
    assert latest_recommendation(table_ws.db_path, search.id) is None


@pytest.mark.slow  # a search end to end (the fast lane keeps the backend contract)
def test_every_run_has_its_own_stored_seed_and_shares_the_search_initialisation(table_ws):
    search = driver.create(table_ws, _spec(name="seeds", runs=8, backend="random", options={}, seed=3))
    driver.run(table_ws, search.name)
    runs = search_runs(table_ws.db_path, search.id)
    assert runs.seed.notna().all() and runs.seed.nunique() == 8
    assert list(runs.seed) == [run_seed(3, i) for i in range(8)]  # reproducible from (search seed, index)
    assert (runs.init_seed == 3).all()  # one initialisation: runs differ by mixture and data order


@pytest.mark.parametrize("change, message", [
    (dict(backend="nope"), "unknown backend 'nope'"),
    (dict(options={"bogus": "1"}), "has no option bogus"),
    (dict(target="latency"), "unknown target latency"),
    (dict(table="missing"), "no search named 'missing'"),
    (dict(validate=True), "validate trains the recommendation and needs the proxy evaluator"),
    (dict(runs=0), "budget.runs must be at least 1, got 0"),
    (dict(name="../x"), "bad search name '../x'"),
])
def test_bad_searches_fail_at_creation_and_store_nothing(table_ws, change, message):
    with pytest.raises(MixerError, match=message):
        driver.create(table_ws, _spec(**change))
    assert run_sql(table_ws.db_path, "SELECT count(*) AS n FROM searches")["n"].tolist() == [1]


def test_empty_workspace_is_a_clear_error(tmp_path):
    with pytest.raises(MixerError, match="no domains in workspace"):
        driver.create(open_workspace(tmp_path / "empty"), SearchSpec(name="x"))


@pytest.mark.slow  # a search end to end (the fast lane keeps the backend contract)
@needs_regmix
def test_regmix_finds_a_top_run_of_the_published_pool(tmp_path):
    ws = open_workspace(tmp_path / "ws")
    import_runs(ws.db_path, ImportSpec(
        mixtures_csv=REGMIX / "train_mixture_1m.csv", metrics_csv=REGMIX / "train_pile_loss_1m.csv",
        search="regmix-1m", weight_prefix="train_the_pile_", metric_prefix="metric/the_pile_",
        metric_suffix="_val_loss", fidelity="1m", target="pile_cc"))
    search = driver.create(ws, _spec(name="rm", table="regmix-1m", target="pile_cc", runs=16))
    driver.run(ws, search.name)
    best = search_runs(ws.db_path, search.id).target_value.min()
    pool = run_sql(ws.db_path, "SELECT target_value FROM run_summary WHERE search = 'regmix-1m'").target_value
    assert best <= np.sort(pool)[5]  # a top-1% run of 512 within 16 runs


@pytest.fixture
def two_fidelity_ws(tmp_path):
    """The same 120 mixtures at a cheap fidelity (shifted, slightly distorted) and the full one."""
    ws = open_workspace(tmp_path / "ws")
    X = np.random.default_rng(0).dirichlet(np.ones(4), size=120)
    pd.DataFrame(X, columns=[f"w_{d}" for d in "abcd"]).assign(index=range(120)).to_csv(tmp_path / "mix.csv",
                                                                                        index=False)
    for fidelity, y in (("cheap", truth(X) + 0.8 + 0.3 * X[:, 3]), ("full", truth(X))):
        pd.DataFrame({"index": range(120), "m_loss": y}).to_csv(tmp_path / f"{fidelity}.csv", index=False)
        import_runs(ws.db_path, ImportSpec(mixtures_csv=tmp_path / "mix.csv", metrics_csv=tmp_path / f"{fidelity}.csv",
                                           search="past", weight_prefix="w_", metric_prefix="m_", fidelity=fidelity))
    return ws


MF = dict(backend="bayesopt", options={"n_candidates": 256}, target_fidelity="full",
          fidelity_costs={"cheap": 1.0, "full": 10.0})


@pytest.mark.slow  # a 40-cost multi-fidelity GP search end to end
def test_multi_fidelity_table_search_spends_its_cost_budget(two_fidelity_ws):
    search = driver.create(two_fidelity_ws, _spec(name="mf", runs=100, max_cost=40, **MF))
    rec = driver.run(two_fidelity_ws, search.name)
    runs = search_runs(two_fidelity_ws.db_path, search.id)
    cost = runs.fidelity.map(MF["fidelity_costs"]).to_numpy()
    assert (runs.status == "done").all() and runs.pool_key.is_unique
    assert set(runs.fidelity) <= {"cheap", "full"} and runs.fidelity.iloc[:4].eq("cheap").all()
    assert 40 - 10 < cost.sum() <= 40  # never a run the budget cannot pay for, and no full run left unbought
    session = driver.SearchSession(two_fidelity_ws, search)
    assert session.load().spent() == (len(runs), cost.sum())
    chosen = rec.mixture.vector(list("abcd"))
    full = runs[runs.fidelity == "full"]
    if rec.evidence["rule"] == "model":  # the GP trusted at the target fidelity: its optimum
        assert np.abs(chosen - OPTIMUM).sum() < 0.4
    else:  # too few target-fidelity runs to trust: the best one, never an unevaluated mixture
        best = full.loc[full.target_value.idxmin()]
        assert rec.evidence["rule"].startswith("best-run") and rec.evidence["best_run"] == best.run_id
        assert np.allclose(chosen, [best.mixture[d] for d in "abcd"])
    stored = latest_recommendation(two_fidelity_ws.db_path, search.id)
    assert stored["evidence"]["runs_by_fidelity"] == runs.fidelity.value_counts().to_dict() | {
        f: 0 for f in ("cheap", "full") if f not in set(runs.fidelity)}
    from search import views   # the stop by cost is said, with each run's cost beside it

    record = get_search(two_fidelity_ws.db_path, search.name)
    assert views.ended_early(two_fidelity_ws, record).startswith(f"--max-cost 40 stopped it: {cost.sum():.4g} spent")
    summary, shown = views.status(two_fidelity_ws, record)
    assert summary["cost"] == (f"{cost.sum():.4g} of --max-cost 40 spent (in --fidelity-cost's units; a run costs "
                               "cheap 1, full 10)")
    assert shown.cost.tolist() == list(cost)


@pytest.mark.slow  # a search end to end (the fast lane keeps the backend contract)
def test_single_fidelity_backend_on_a_two_fidelity_table_uses_the_target(two_fidelity_ws):
    search = driver.create(two_fidelity_ws, _spec(name="rm", runs=8, target_fidelity="full"))
    driver.run(two_fidelity_ws, search.name)
    assert set(search_runs(two_fidelity_ws.db_path, search.id).fidelity) == {"full"}
    # the costs of every fidelity of the table, as for a multi-fidelity search: accepted, the target's used
    priced = driver.create(two_fidelity_ws, _spec(name="rm-priced", runs=4, target_fidelity="full", max_cost=25,
                                                  backend="random", options={},
                                                  fidelity_costs={"cheap": 1, "full": 10}))
    driver.run(two_fidelity_ws, priced.name)
    runs = search_runs(two_fidelity_ws.db_path, priced.id)
    assert set(runs.fidelity) == {"full"} and len(runs) == 2  # two runs of cost 10 fit in 25


@pytest.mark.slow  # a search end to end (the fast lane keeps the backend contract)
def test_fidelity_costs_come_from_an_imported_cost_column(tmp_path):
    ws = open_workspace(tmp_path / "ws")
    X = np.random.default_rng(0).dirichlet(np.ones(4), size=30)
    pd.DataFrame(X, columns=[f"w_{d}" for d in "abcd"]).assign(index=range(30)).to_csv(tmp_path / "mix.csv", index=False)
    for fidelity, y, hours in (("cheap", truth(X) + 0.8, 0.5), ("full", truth(X), 5.0)):
        pd.DataFrame({"index": range(30), "m_loss": y, "hours": hours}).to_csv(tmp_path / f"{fidelity}.csv", index=False)
        import_runs(ws.db_path, ImportSpec(mixtures_csv=tmp_path / "mix.csv", metrics_csv=tmp_path / f"{fidelity}.csv",
                                           search="past", weight_prefix="w_", metric_prefix="m_", fidelity=fidelity,
                                           cost_column="hours"))
    search = driver.create(ws, _spec(name="priced", runs=8, **dict(MF, fidelity_costs={})))  # no --fidelity-cost
    rec = driver.run(ws, search.name)
    assert rec.evidence["costs"] == {"cheap": pytest.approx(0.1), "full": pytest.approx(1.0)}
    for fidelity in ("cheap", "full"):  # another table with the same labels and no costs: past's are not its own
        import_runs(ws.db_path, ImportSpec(mixtures_csv=tmp_path / "mix.csv", metrics_csv=tmp_path / f"{fidelity}.csv",
                                           search="other", weight_prefix="w_", metric_prefix="m_", fidelity=fidelity))
    with pytest.raises(MixerError, match="need costs: give --fidelity-cost .* or import the table's run costs"):
        driver.create(ws, _spec(name="unpriced", table="other", runs=8, **dict(MF, fidelity_costs={})))


@pytest.mark.parametrize("change, message", [
    (dict(MF, target_fidelity=None), "choose one with fidelity.target"),
    (dict(MF, fidelity_costs={}), "need costs: give --fidelity-cost"),
    (dict(fidelities=["cheap", "full"], target_fidelity="full"), "backend regmix searches one fidelity"),
    (dict(MF, backend="mixing_law", fidelities=["cheap", "full"]),
     "backend mixing_law runs one fidelity of a table, this search has 2"),
    (dict(MF, target_fidelity="huge"), "has no runs at fidelity huge"),
    (dict(MF, fidelity_costs={"cheap": 1, "full": 10, "mid": 3}), "names mid, not a fidelity"),
    (dict(MF, max_cost=0), "budget.max_cost must be positive"),
    (dict(MF, max_cost=9.5), "budget.max_cost 9.5 cannot pay for one run at the target fidelity full .it costs 10."),
])
def test_bad_multi_fidelity_searches_fail_at_creation(two_fidelity_ws, change, message):
    with pytest.raises(MixerError, match=message):
        driver.create(two_fidelity_ws, _spec(**change))
    assert run_sql(two_fidelity_ws.db_path, "SELECT count(*) AS n FROM searches")["n"].tolist() == [1]


@pytest.mark.slow  # fits a GP with its cross-validation on 120 runs
def test_predict_reads_a_published_table_as_it_is_from_an_imported_search(table_ws, tmp_path):
    from search import views

    with pytest.raises(MixerError, match="has no target values; import it with --target"):
        views.predict(table_ws, get_search(table_ws.db_path, "past"), views.PredictRequest(tmp_path / "x.csv"))
    import_runs(table_ws.db_path, ImportSpec(mixtures_csv=tmp_path / "mix.csv", metrics_csv=tmp_path / "met.csv",
                                             search="scored", weight_prefix="w_", metric_prefix="m_", target="loss"))
    X = np.random.default_rng(5).dirichlet(np.ones(4), size=6)
    published = pd.DataFrame(X, columns=[f"w_{d}" for d in "abcd"]).assign(index=[f"q{i}" for i in range(6)])
    published.to_csv(tmp_path / "published.csv", index=False)
    request = views.PredictRequest(tmp_path / "published.csv", weight_prefix="w_", id_column="index")
    out = views.predict(table_ws, get_search(table_ws.db_path, "scored"), request).frame
    assert list(out["index"]) == [f"q{i}" for i in range(6)]
    assert np.abs(out.predicted.to_numpy() - truth(X)).max() < 0.3 and (out.predicted_std > 0).all()
    bayes = views.predict(table_ws, get_search(table_ws.db_path, "scored"),
                          views.PredictRequest(tmp_path / "published.csv", "w_", "index", backend="bayesopt")).frame
    assert np.abs(bayes.predicted.to_numpy() - truth(X)).max() < 0.3


@pytest.mark.slow  # matplotlib and a regmix fit of 120 runs: 1.6 s
def test_an_imported_search_plots_its_runs_and_fit(table_ws, tmp_path):
    from search import views

    import_runs(table_ws.db_path, ImportSpec(mixtures_csv=tmp_path / "mix.csv", metrics_csv=tmp_path / "met.csv",
                                             search="scored", weight_prefix="w_", metric_prefix="m_", target="loss"))
    views.plot(table_ws, get_search(table_ws.db_path, "scored"), tmp_path / "scored.png")
    assert (tmp_path / "scored.png").stat().st_size > 10_000


def test_an_imported_score_table_keeps_its_direction(table_ws, tmp_path):
    from search import views

    import_runs(table_ws.db_path, ImportSpec(mixtures_csv=tmp_path / "mix.csv", metrics_csv=tmp_path / "met.csv",
                                             search="scores", weight_prefix="w_", metric_prefix="m_",
                                             target="other", maximize=True))
    assert views.status(table_ws, get_search(table_ws.db_path, "past"))[0]["best"] == "-"  # imported without --target
    record = get_search(table_ws.db_path, "scores")
    summary, runs = views.status(table_ws, record)
    assert record.direction == "maximize" and summary["best"].startswith(f"{runs.target_value.max():.4f}")
    with pytest.raises(MixerError, match="was imported as maximized; import into it with --maximize"):
        import_runs(table_ws.db_path, ImportSpec(mixtures_csv=tmp_path / "mix.csv", metrics_csv=tmp_path / "met.csv",
                                                 search="scores", weight_prefix="w_", metric_prefix="m_"))
    with pytest.raises(MixerError, match="holds imported runs; search over them .* or fit them with `mixer predict"):
        views.recommendation(table_ws, record)
    with pytest.raises(MixerError, match="was imported with --target other; import into it with --target other"):
        import_runs(table_ws.db_path, ImportSpec(mixtures_csv=tmp_path / "mix.csv", metrics_csv=tmp_path / "met.csv",
                                                 search="scores", weight_prefix="w_", metric_prefix="m_",
                                                 target="loss", maximize=True))
    assert get_search(table_ws.db_path, "scores").target == "other"


def test_a_table_search_goes_the_way_its_table_does(table_ws, tmp_path):
    """A search minimising a table of scores answered its worst entry as the best."""
    import_runs(table_ws.db_path, ImportSpec(mixtures_csv=tmp_path / "mix.csv", metrics_csv=tmp_path / "met.csv",
                                             search="scores", weight_prefix="w_", metric_prefix="m_",
                                             target="other", maximize=True))
    with pytest.raises(MixerError, match="table 'scores' holds scores, higher is better .*: search it with --maximize"):
        driver.create(table_ws, _spec(name="low", table="scores", target="other", backend="random", options={}))
    import_runs(table_ws.db_path, ImportSpec(mixtures_csv=tmp_path / "mix.csv", metrics_csv=tmp_path / "met.csv",
                                             search="past", weight_prefix="w_", metric_prefix="m_", target="loss",
                                             fidelity="small"))
    assert get_search(table_ws.db_path, "past").target == "loss"   # imported first without one
    with pytest.raises(MixerError, match="table 'past' holds loss as losses, lower is better .*: search them without"):
        driver.create(table_ws, _spec(name="high", target="loss", maximize=True, backend="random", options={}))
    with pytest.raises(MixerError, match="as losses, lower is better"):   # its --target, weighted
        driver.create(table_ws, _spec(name="high", target="loss=1", maximize=True, backend="random", options={}))
    assert driver.create(table_ws, _spec(name="other-high", target="other", maximize=True, backend="random",
                                         options={})).direction == "maximize"
    assert run_sql(table_ws.db_path, "SELECT count(*) AS n FROM searches")["n"].tolist() == [3]




def test_predict_refuses_what_is_not_a_mixture_and_warns_on_a_weak_model(table_ws, tmp_path):
    from search import views

    X = np.random.default_rng(1).dirichlet(np.ones(4), size=6)
    pd.DataFrame(X, columns=[f"w_{d}" for d in "abcd"]).assign(index=range(6)).to_csv(tmp_path / "few.csv", index=False)
    pd.DataFrame({"index": range(6), "m_loss": truth(X)}).to_csv(tmp_path / "few_met.csv", index=False)
    import_runs(table_ws.db_path, ImportSpec(mixtures_csv=tmp_path / "few.csv", metrics_csv=tmp_path / "few_met.csv",
                                             search="few", weight_prefix="w_", metric_prefix="m_", target="loss"))
    record = get_search(table_ws.db_path, "few")
    (tmp_path / "over.csv").write_text("a,b,c,d\n0.5,0.5,0.25,0.25\n")
    with pytest.raises(MixerError, match="data row 1 is not a mixture .* they sum to 1.5"):
        views.predict(table_ws, record, views.PredictRequest(tmp_path / "over.csv"))
    (tmp_path / "partial.csv").write_text("a,b\n0.5,0.5\n")
    with pytest.raises(MixerError, match="no column for domain.s. c, d"):
        views.predict(table_ws, record, views.PredictRequest(tmp_path / "partial.csv"))
    (tmp_path / "ok.csv").write_text("a,b,c,d\n0.25,0.25,0.25,0.25\n")
    assert "6 runs at the target fidelity for 4 domains" in views.predict(
        table_ws, record, views.PredictRequest(tmp_path / "ok.csv")).warning


def test_best_explains_the_rule_the_observed_value_and_the_fit():
    from search import views

    rec = {"predicted": 3.1758, "predicted_std": 0.0681, "evidence": {
        "rule": "best-run:weak-model", "best_run": "s/0006", "best_observed": 3.1684,
        "reason": "8 runs for 5 domains: a model needs about 10 (2 per domain)",
        "quality": {"runs": 8, "domains": 5, "cv_spearman": 0.57, "cv_rmse": 0.0678, "runs_std": 0.02}}}
    lines = views.explain(rec, "avg")
    assert lines[0] == "predicted avg: 3.1758 ± 0.0681 (the model's value at this mixture)"
    assert lines[1] == "chosen: the best run s/0006 (observed 3.1684, one run), because the model cannot be trusted yet"
    assert "cross-validated Spearman 0.57, error 0.0678 out of fold (the runs spread 0.0200)" in lines[2]
    assert lines[3].startswith("warning: 8 runs for 5 domains")


@pytest.mark.slow  # a search end to end (the fast lane keeps the backend contract)
def test_no_more_runs_are_marked_running_than_the_evaluator_keeps_in_flight(table_ws):
    search = driver.create(table_ws, _spec(name="slots", runs=8, parallel=8, backend="random", options={}))
    seen = []

    class TwoAtATime:
        parallel, instant = 2, False

        def __init__(self, inner):
            self.inner = inner

        def evaluate(self, runs):
            for run, result in self.inner.evaluate(runs):
                states = search_runs(table_ws.db_path, search.id).status.value_counts().to_dict()
                seen.append(states.get("running", 0))
                yield run, result

    driver.run(table_ws, search.name, evaluator=TwoAtATime)
    assert len(seen) == 8 and max(seen) == 2
    assert (search_runs(table_ws.db_path, search.id).status == "done").all()


def test_two_default_named_searches_started_at_once_get_different_names(table_ws, monkeypatch):
    first = driver.create(table_ws, _spec(name=None, backend="random", options={}))
    real = driver.next_search_name
    calls = []

    def stale(db, backend):  # the second `search start` read the names before the first stored its own
        calls.append(1)
        return first.name if len(calls) == 1 else real(db, backend)

    monkeypatch.setattr(driver, "next_search_name", stale)
    second = driver.create(table_ws, _spec(name=None, backend="random", options={}))
    assert first.name == "random-1" and second.name == "random-2" and len(calls) == 2


@pytest.mark.slow  # runs a 120-entry table to exhaustion with model backends
@pytest.mark.parametrize("backend, options", [("regmix", None), ("mixing_law", {"bootstrap": 4})])
def test_a_table_search_stops_when_every_entry_has_been_run(table_ws, backend, options):
    search = driver.create(table_ws, _spec(name=f"all-{backend}", backend=backend, options=options, runs=130,
                                           parallel=16))
    rec = driver.run(table_ws, search.name)
    runs = search_runs(table_ws.db_path, search.id)
    assert len(runs) == 120 and (runs.status == "done").all() and runs.pool_key.is_unique
    assert rec is not None and get_search(table_ws.db_path, search.name).status == "done"


@pytest.mark.slow  # a search created, then its domain removed (the fast lane stays under a minute)
def test_status_of_a_search_whose_setup_no_longer_resolves_still_shows_its_runs(table_ws):
    from search import views
    from store import transaction

    search = driver.create(table_ws, _spec(name="orphan", backend="random", runs=4, options={}))
    driver.run(table_ws, search.name)
    with transaction(table_ws.db_path) as con:   # its table is gone (as a domain removed with --force would be)
        con.execute("UPDATE searches SET name = 'renamed' WHERE name = 'past'")
    summary, runs = views.status(table_ws, get_search(table_ws.db_path, "orphan"))
    assert len(runs) == 4 and summary["runs done"] == 4 and summary["status"] == "done"
    assert "no search named 'past'" in summary["setup"]


@pytest.mark.parametrize("kind, status, needle", [
    ("online", "done", "is an online aioli run, not a search"),
    ("import", "done", "holds imported runs, not a search"),
    ("proxy-train", "failed", "is the run of a `mixer proxy train`, not a search"),
    ("search", "done", "is already finished"),
    ("search", "cancelled", "was cancelled")])
def test_only_a_created_or_interrupted_search_can_be_run(kind, status, needle):
    from store import SearchRecord

    record = SearchRecord(id="s-1", name="x", backend="aioli", evaluator="proxy", status=status, kind=kind)
    with pytest.raises(MixerError, match=needle):
        driver.check_resumable(record)
    driver.check_resumable(SearchRecord(id="s-2", name="y", backend="regmix", evaluator="proxy", status="running"))


def test_status_of_an_import_at_two_fidelities_shows_every_run(two_fidelity_ws):
    from search import views

    summary, runs = views.status(two_fidelity_ws, get_search(two_fidelity_ws.db_path, "past"))
    assert summary["kind"] == "import" and len(runs) == summary["runs done"] == 240
    assert summary["best"] == "-" and "setup" not in summary      # imported without --target: nothing to rank


@pytest.mark.slow  # a search end to end (the fast lane keeps the backend contract)
def test_search_list_says_interrupted_as_status_does(table_ws):
    from search import views

    search = driver.create(table_ws, _spec(name="cut", backend="random", runs=8, options={}))

    def ctrl_c_on_second(n):
        if n == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        driver.run(table_ws, search.name, evaluator=lambda inner: FailingEvaluator(inner, ctrl_c_on_second))
    listed = views.searches(table_ws).set_index("name")
    assert listed.status["cut"] == "interrupted" and listed.status["past"] == "done"
    assert views.status(table_ws, get_search(table_ws.db_path, "cut"))[0]["status"].startswith("interrupted")


@pytest.mark.slow  # multi-fidelity GP searches end to end
def test_a_cost_budget_buys_a_target_run_and_its_stop_is_named(tmp_path):
    """A table of 20 small and 10 big runs, priced by its own cost column (1 and 10 hours).
    Before, `--max-cost 1.5` bought 14 small runs and none at the target, and the stop said
    "every entry of table 'mf' it could run was run" with 16 entries unrun."""
    from search import views

    ws = open_workspace(tmp_path / "ws")
    X = np.random.default_rng(0).dirichlet(np.ones(4), size=30)
    pd.DataFrame(X, columns=[f"w_{d}" for d in "abcd"]).assign(
        id=range(30), fid=["small"] * 20 + ["big"] * 10, hours=[1] * 20 + [10] * 10, m_loss=truth(X)
    ).to_csv(tmp_path / "t.csv", index=False)
    import_runs(ws.db_path, ImportSpec(mixtures_csv=tmp_path / "t.csv", search="mf", weight_prefix="w_",
                                       metric_prefix="m_", id_column="id", fidelity_column="fid", cost_column="hours",
                                       target="loss"))
    for max_cost in (1.0, 1.5, 2.5):
        search = driver.create(ws, _spec(name=f"s{max_cost}", table="mf", runs=20, max_cost=max_cost,
                                         backend="bayesopt", options={"n_candidates": 256},
                                         fidelities=["small", "big"], target_fidelity="big"))
        rec = driver.run(ws, search.name)
        runs = search_runs(ws.db_path, search.id)
        assert "big" in set(runs.fidelity) and rec.evidence["rule"] != "model:no-target-run"
    assert views.ended_early(ws, get_search(ws.db_path, search.name)) == (
        "--max-cost 2.5 stopped it: 2.3 spent; the 0.2 left pays for no run at the target fidelity, and none of "
        "bayesopt's proposals fitted in it (in units of one run at the target fidelity; a run costs small 0.1, big 1)")
