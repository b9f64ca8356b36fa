"""The backend contract: what every search backend must do, checked for each one in the
registry. A new backend is added by passing this file (ARCHITECTURE.md).

- its proposals are mixtures within the space's weight bounds (caps, --min/--max/--fix), at a
  fidelity the space has;
- in pool mode, unused pool entries, each once;
- on too few runs or tied runs it proposes and, at worst, refuses to recommend with
  TooFewRuns (the driver then answers the best run), never another error;
- a model depends on its History alone: fitted twice, in any order, it answers the same,
  so a resumed search proposes exactly what the uninterrupted one did;
- direction is the Target's: a search maximising -L proposes and recommends exactly what
  one minimising L does, run for run, and reports values in the user's orientation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixer.workspace import open_workspace
from search import driver
from search.backends import BACKENDS, make_backend
from search.backends.base import TooFewRuns
from search.history import History
from mixer.bounds import WeightBounds, WeightConstraints
from store import ImportSpec, get_search, import_runs, latest_recommendation, search_runs
from tests.conftest import DOMAINS, make_space, truth
from tests.search.test_driver import FailingEvaluator, _spec

# Small settings, so that the whole contract runs in the fast lane.
FAST = {"random": {}, "regmix": {"n_candidates": 5_000, "screen_top": 200, "n_models": 2},
        "bayesopt": {"n_candidates": 128, "recommend_candidates": 512, "batch_screen": 32},
        "mixing_law": {"bootstrap": 2, "n_candidates": 2_000}, "climb": {"n_candidates": 2_000}}


def test_every_registered_backend_is_checked():
    assert set(FAST) == set(BACKENDS)


CAPS = np.array([0.35, 1.0, 0.5, 1.0])
CONSTRAINTS = WeightConstraints(minimum={"b": 0.1}, maximum={"d": 0.3}, fixed={"c": 0.2})


def _capped_space(constraints: WeightConstraints = WeightConstraints()):
    space = make_space()
    space.bounds = WeightBounds.of(DOMAINS, constraints, CAPS)
    space.budget_runs = 16
    return space


def _capped_history(n: int, seed: int = 0, constraints: WeightConstraints = WeightConstraints(),
                    maximize: bool = False) -> History:
    """n runs within the space's bounds (as a search's own runs are), targets `truth`
    (negated, as a maximised target reaches a backend)."""
    X = _capped_space(constraints).candidates(n, np.random.default_rng(seed))
    y = -truth(X) if maximize else truth(X)
    return History(DOMAINS, X, y, ["f"] * n, [f"r{i}" for i in range(n)], [None] * n)


def _proposals(name: str, history: History, space, n: int = 4, seed: int = 0):
    return make_backend(name, FAST[name], space).fit(history).propose(n, np.random.default_rng(seed))


@pytest.mark.parametrize("name", sorted(BACKENDS))
@pytest.mark.parametrize("runs", [0, 3, 12])
def test_proposals_are_mixtures_within_the_caps(name, runs):
    space = _capped_space()
    history = _capped_history(runs) if runs else History.empty(DOMAINS)
    for proposal in _proposals(name, history, space):
        x = proposal.mixture.vector(DOMAINS)
        assert np.isclose(x.sum(), 1.0) and (x >= 0).all()
        assert (x <= CAPS + 1e-6).all(), (name, x)
        assert proposal.fidelity in space.fidelity.labels


@pytest.mark.slow  # reason: 1,000 proposals of each backend, over a dozen fits
@pytest.mark.parametrize("name", sorted(BACKENDS))
@pytest.mark.parametrize("maximize", [False, True])
def test_constraints_hold_for_a_thousand_proposals_and_the_answer(name, maximize):
    space = _capped_space(CONSTRAINTS)
    X = []
    for runs in (0, 12):
        history = _capped_history(runs, constraints=CONSTRAINTS, maximize=maximize) if runs else History.empty(DOMAINS)
        model = make_backend(name, FAST[name], space).fit(history)
        for seed in range(40):
            X += [p.mixture.vector(DOMAINS) for p in model.propose(50, np.random.default_rng(seed))]
            if len(X) >= 500 * (1 + (runs > 0)):
                break
        if runs:
            X.append(model.recommend().mixture.vector(DOMAINS))
    X = np.array(X)
    assert len(X) >= 1_000 and np.allclose(X.sum(axis=1), 1.0)
    assert space.bounds.contains(X).all(), X[~space.bounds.contains(X)][:3]
    assert np.allclose(X[:, 2], 0.2, atol=1e-6) and (X[:, 1] >= 0.1 - 1e-6).all() and (X[:, 3] <= 0.3 + 1e-6).all()
    assert (X[:, 0] <= CAPS[0] + 1e-6).all()


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_pool_mode_proposes_unused_entries_once(name):
    space = make_space(pool=True)
    space.budget_runs = 16
    used = space.pool.keys[:6]
    X = space.pool.X[:6]
    history = History(DOMAINS, X, truth(X), ["f"] * 6, [f"r{i}" for i in range(6)], list(used))
    keys = [p.pool_key for p in _proposals(name, history, space, n=5)]
    assert len(keys) == 5 and len(set(keys)) == 5 and not set(keys) & set(used)
    for key, p in zip(keys, _proposals(name, history, space, n=5)):
        assert np.allclose(p.mixture.vector(DOMAINS), space.pool.X[space.pool.keys.index(key)])


@pytest.mark.parametrize("name", sorted(BACKENDS))
@pytest.mark.parametrize("case", ["one run", "two runs", "tied runs"])
def test_too_few_or_tied_runs_propose_and_at_worst_refuse_to_recommend(name, case):
    space = _capped_space()
    history = _capped_history({"one run": 1, "two runs": 2, "tied runs": 8}[case])
    if case == "tied runs":
        history.y[:] = 2.5
    model = make_backend(name, FAST[name], space).fit(history)
    assert model.propose(2, np.random.default_rng(0))
    try:
        rec = model.recommend()
    except TooFewRuns:
        return
    assert np.isclose(rec.mixture.vector(DOMAINS).sum(), 1.0)


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_a_model_depends_on_its_history_alone(name):
    space = _capped_space()
    history, other = _capped_history(14, seed=1), _capped_history(9, seed=2)
    backend = make_backend(name, FAST[name], space)
    first = backend.fit(history).propose(3, np.random.default_rng(5))
    backend.fit(other).propose(3, np.random.default_rng(5))         # another search's history in between
    again = make_backend(name, FAST[name], space).fit(history).propose(3, np.random.default_rng(5))
    assert [p.mixture.as_dict() for p in first] == [p.mixture.as_dict() for p in backend.fit(history).propose(
        3, np.random.default_rng(5))] == [p.mixture.as_dict() for p in again]


@pytest.fixture(scope="module")
def scored_table(tmp_path_factory):
    """A table whose runs carry a loss and its negative (a score to maximise)."""
    tmp = tmp_path_factory.mktemp("table")
    ws = open_workspace(tmp / "ws")
    X = np.random.default_rng(0).dirichlet(np.ones(4), size=80)
    pd.DataFrame(X, columns=[f"w_{d}" for d in "abcd"]).assign(index=range(80)).to_csv(tmp / "mix.csv", index=False)
    pd.DataFrame({"index": range(80), "m_loss": truth(X), "m_score": -truth(X)}).to_csv(tmp / "met.csv", index=False)
    import_runs(ws.db_path, ImportSpec(mixtures_csv=tmp / "mix.csv", metrics_csv=tmp / "met.csv", search="past",
                                       weight_prefix="w_", metric_prefix="m_"))
    return ws


def _searched(ws, name: str, backend: str, interrupt_on: int | None = None, **kwargs) -> pd.DataFrame:
    search = driver.create(ws, _spec(name=name, backend=backend, options=FAST[backend], runs=6, parallel=3,
                                     **kwargs))
    if interrupt_on is not None:
        def ctrl_c(batch):
            if batch == interrupt_on:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            driver.run(ws, search.name, evaluator=lambda inner: FailingEvaluator(inner, ctrl_c))
    driver.run(ws, search.name)
    return search_runs(ws.db_path, search.id)


# The model backends' variants fit a model every round of three searches (3-6 s each): they
# run in the slow lane; random, which fits none, keeps the rule in the fast lane.
SLOW_SEARCHES = {"bayesopt", "climb", "mixing_law", "regmix"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_SEARCHES else n
                                  for n in sorted(BACKENDS)])
def test_maximising_minus_l_is_minimising_l_and_a_resume_is_the_uninterrupted_search(scored_table, name):
    ws = scored_table
    low = _searched(ws, f"{name}-min", name, target="loss")
    high = _searched(ws, f"{name}-max", name, target="score", maximize=True)
    resumed = _searched(ws, f"{name}-resumed", name, target="loss", interrupt_on=2)
    assert list(low.pool_key) == list(high.pool_key) == list(resumed.pool_key)
    assert np.allclose(high.target_value, -low.target_value)             # the user's orientation, as measured
    recs = {s: latest_recommendation(ws.db_path, get_search(ws.db_path, f"{name}-{s}").id)
            for s in ("min", "max", "resumed")}
    assert recs["min"]["mixture"] == recs["max"]["mixture"] == recs["resumed"]["mixture"]
    if recs["min"]["predicted"] is not None:
        assert recs["max"]["predicted"] == pytest.approx(-recs["min"]["predicted"])
        assert recs["max"]["predicted_std"] == pytest.approx(recs["min"]["predicted_std"])
