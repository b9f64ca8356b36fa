"""The bayesopt backend on fixed histories: proposals, recommendations, fidelities."""

import numpy as np
import pytest

from mixer import MixerError
from search.backends import backend_config, make_backend
from search.fidelity import table_fidelities
from search.history import History
from search.space import Pool, SearchSpace
from tests.conftest import DOMAINS, OPTIMUM, make_history, make_space, truth

FAST = {"n_candidates": 512, "recommend_candidates": 4000}
COSTS = {"cheap": 1.0, "full": 10.0}


def cheap_truth(X: np.ndarray) -> np.ndarray:
    """The cheap fidelity: higher losses, the same ranking up to a small distortion."""
    return truth(X) + 0.8 + 0.3 * X[:, 3]


def _mfmake_space(pool: bool = False) -> SearchSpace:
    space = SearchSpace(DOMAINS, prior=np.full(4, 0.25), fidelity=table_fidelities(["cheap", "full"], "full", COSTS))
    if pool:
        X = np.random.default_rng(9).dirichlet(np.ones(4), size=60)
        space.pool = Pool([f"c{i}" for i in range(60)] + [f"f{i}" for i in range(60)], np.vstack([X, X]),
                          ["cheap"] * 60 + ["full"] * 60)
    return space


def _mfmake_history(n_cheap: int, n_full: int) -> History:
    rng = np.random.default_rng(3)
    history = History.empty(DOMAINS)
    for i, x in enumerate(rng.dirichlet(np.ones(4), size=n_cheap + n_full)):
        cheap = i < n_cheap
        history = history.append(x, (cheap_truth if cheap else truth)(x[None])[0], "cheap" if cheap else "full",
                                 f"r{i}")
    return history


@pytest.mark.slow  # fits a GP and scores 512 candidates (the contract suite keeps bayesopt's rules in the fast lane)
def test_single_fidelity_proposals_are_deterministic_distinct_and_promising():
    backend = make_backend("bayesopt", FAST, make_space())
    history = make_history(15)
    first = backend.propose(history, 4, np.random.default_rng(5))
    again = backend.propose(history, 4, np.random.default_rng(5))
    X = np.array([p.mixture.vector(DOMAINS) for p in first])
    assert np.array_equal(X, np.array([p.mixture.vector(DOMAINS) for p in again]))
    assert len(np.unique(X, axis=0)) == 4 and all(p.fidelity == "f" for p in first)
    assert truth(X).min() < np.sort(history.y)[2]  # at least one beats all but the best two runs


@pytest.mark.slow  # fits GPs over many rounds
def test_recommends_near_the_optimum_with_its_posterior():
    backend = make_backend("bayesopt", FAST, make_space())
    history = make_history(30)
    rec = backend.recommend(history)
    chosen = rec.mixture.vector(DOMAINS)
    assert np.abs(chosen - OPTIMUM).sum() < 0.25
    assert abs(rec.predicted - truth(chosen[None])[0]) < 0.05 and 0 < rec.predicted_std < 0.2  # out-of-fold error included
    mean, std = backend.predict(history, history.X[:5])
    assert np.abs(mean - history.y[:5]).max() < 0.05 and (std >= 0).all()


def test_first_proposals_are_prior_draws_at_the_cheapest_fidelity():
    backend = make_backend("bayesopt", FAST, _mfmake_space())
    proposals = backend.propose(History.empty(DOMAINS), 3, np.random.default_rng(0))
    assert [p.fidelity for p in proposals] == ["cheap"] * 3


BASELINES = {"uniform": np.full(4, 0.25), "token-share": np.array([0.4, 0.3, 0.2, 0.1])}


def test_multi_fidelity_runs_the_baselines_at_the_target_fidelity_first():
    from search.backends.base import unmeasured_baselines
    from search.views import explain

    space = _mfmake_space()
    space.baselines = dict(BASELINES)
    backend = make_backend("bayesopt", FAST, space)
    history = History.empty(DOMAINS)
    first = backend.propose(history, 4, np.random.default_rng(0))
    assert [p.fidelity for p in first] == ["full", "full", "cheap", "cheap"]
    assert np.allclose([p.mixture.vector(DOMAINS) for p in first[:2]], list(BASELINES.values()))
    assert unmeasured_baselines(space, history) == ["uniform", "token-share"]
    for p in first[:1]:   # uniform measured at the target: only token-share is proposed there again
        x = p.mixture.vector(DOMAINS)
        history = history.append(x, truth(x[None])[0], "full", "r0")
    again = backend.propose(history, 2, np.random.default_rng(1))
    assert [p.fidelity for p in again] == ["full", "cheap"] and np.allclose(
        again[0].mixture.vector(DOMAINS), BASELINES["token-share"])
    assert unmeasured_baselines(space, history) == ["token-share"]
    lines = explain({"predicted": None, "predicted_std": None, "evidence": {"baselines_unmeasured": ["token-share"]}},
                    "avg")
    assert lines == ["note: no run of the token-share mixture at the target fidelity: the answer was never compared "
                     "with it there"]


@pytest.mark.slow  # fits GPs over many rounds
def test_multi_fidelity_predicts_the_target_from_mostly_cheap_runs():
    backend = make_backend("bayesopt", FAST, _mfmake_space())
    history = _mfmake_history(n_cheap=30, n_full=4)
    rec = backend.recommend(history)
    chosen = rec.mixture.vector(DOMAINS)
    assert np.abs(chosen - OPTIMUM).sum() < 0.3
    assert abs(rec.predicted - truth(chosen[None])[0]) < 0.15  # the target, not the cheap fidelity's level
    assert rec.evidence["runs_by_fidelity"] == {"cheap": 30, "full": 4}
    assert rec.evidence["costs"] == COSTS
    proposals = backend.propose(history, 4, np.random.default_rng(1))
    assert {p.fidelity for p in proposals} <= {"cheap", "full"} and len(proposals) == 4
    for p in proposals:
        w = p.mixture.vector(DOMAINS)
        assert (w >= 0).all() and abs(w.sum() - 1) < 1e-9


@pytest.mark.slow  # multi-fidelity GP fits (the fast lane stays under a minute)
def test_costs_steer_the_fidelity():
    """With the cheap fidelity nearly free it is chosen; priced like the target, the target is."""
    history = _paired_history(cheap_truth, n_full=6)  # every target run has its cheap twin: no shadow runs due
    rng = np.random.default_rng(2)
    free = make_backend("bayesopt", FAST, _mfmake_space()).propose(
        History(**{**history.__dict__, "costs": {"cheap": 0.01, "full": 10.0}}), 1, rng)
    dear = make_backend("bayesopt", FAST, _mfmake_space()).propose(
        History(**{**history.__dict__, "costs": {"cheap": 10.0, "full": 10.0}}), 1, np.random.default_rng(2))
    assert free[0].fidelity == "cheap" and dear[0].fidelity == "full"


@pytest.mark.slow  # fits GPs over many rounds
def test_pool_mode_proposes_each_mixture_fidelity_pair_once():
    space = _mfmake_space(pool=True)
    backend = make_backend("bayesopt", FAST, space)
    history = History.empty(DOMAINS)
    seen = []
    for round_ in range(5):
        for p in backend.propose(history, 4, np.random.default_rng(round_)):
            i = space.pool.keys.index(p.pool_key)
            assert p.fidelity == space.pool.fidelity[i]
            assert np.allclose(p.mixture.vector(DOMAINS), space.pool.X[i])
            y = (cheap_truth if p.fidelity == "cheap" else truth)(space.pool.X[i][None])[0]
            history = history.append(space.pool.X[i], y, p.fidelity, p.pool_key, p.pool_key)
            seen.append(p.pool_key)
    assert len(seen) == 20 and len(set(seen)) == 20


def test_bad_options_fail_at_creation():
    assert backend_config("bayesopt", {"n_candidates": "1e3"}).n_candidates == 1000
    with pytest.raises(MixerError, match="local_fraction"):
        backend_config("bayesopt", {"local_fraction": "2"})
    with pytest.raises(MixerError, match="needs at least 2 finished runs"):
        make_backend("bayesopt", {}, make_space()).recommend(make_history(1))


def test_a_fit_depends_on_its_runs_alone():
    """Two fits of the same runs give the same model whatever torch's RNG did before (the
    optimiser's restarts are seeded), and a fit does not depend on an earlier one: a
    resumed search refits what the uninterrupted one fitted."""
    import torch

    from search.fidelity import Fidelities
    from search.gp import MixtureGP

    rng = np.random.default_rng(0)
    X = rng.dirichlet(np.ones(4), 40)
    y = X @ np.array([1.0, 2.0, 0.5, 1.5]) + 0.3 * (X[:, 0] - 0.3) ** 2 + 0.01 * rng.standard_normal(40)
    single = Fidelities(["t"], "t")
    MixtureGP(4, single).fit(X[:36], y[:36])
    first = MixtureGP(4, single).fit(X, y)
    torch.rand(1000)
    second = MixtureGP(4, single).fit(X, y)
    probe = rng.dirichlet(np.ones(4), 200)
    assert np.array_equal(first.predict_target(probe)[0], second.predict_target(probe)[0])


def test_predictions_are_the_joint_posteriors_marginals_and_the_frontier_keeps_the_likely_optima():
    """predict_target scores mixtures one by one (no m x m covariance): its means and stds
    equal the joint posterior's diagonal. The max-value frontier keeps the best upper bounds."""
    import torch

    from search.backends import bayesopt
    from search.fidelity import Fidelities
    from search.gp import MixtureGP

    rng = np.random.default_rng(1)
    X = rng.dirichlet(np.ones(4), 30)
    gp = MixtureGP(4, Fidelities(["t"], "t")).fit(X, truth(X))
    probe = rng.dirichlet(np.ones(4), 700)
    mean, std = gp.predict_target(probe)
    with torch.no_grad():
        joint = gp.model.posterior(torch.as_tensor(probe))
    np.testing.assert_allclose(mean, -joint.mean.squeeze(-1).numpy(), atol=1e-8)
    np.testing.assert_allclose(std, joint.variance.sqrt().squeeze(-1).numpy(), atol=1e-8)
    frontier = bayesopt._likely_optima(gp, probe)
    assert len(frontier) == bayesopt.FRONTIER_SIZE
    bound = mean - 2 * std
    kept = {tuple(x) for x in frontier}
    assert tuple(probe[np.argmin(bound)]) in kept and tuple(probe[np.argmin(mean)]) in kept
    assert max(bound[[tuple(x) in kept for x in probe]]) <= min(bound[[tuple(x) not in kept for x in probe]])


def test_pool_mode_recommends_a_mixture_with_a_target_fidelity_run_by_default():
    space = _mfmake_space(pool=True)
    history = History.empty(DOMAINS)
    for i in range(20):                               # every mixture at the cheap fidelity, three at the target
        history = history.append(space.pool.X[i], cheap_truth(space.pool.X[i][None])[0], "cheap", f"c{i}", f"c{i}")
    for i in (0, 1, 2):
        history = history.append(space.pool.X[60 + i], truth(space.pool.X[60 + i][None])[0], "full", f"f{i}", f"f{i}")
    rec = make_backend("bayesopt", FAST, space).recommend(history)
    chosen = rec.mixture.vector(DOMAINS)
    assert any(np.allclose(chosen, space.pool.X[60 + i], atol=1e-6) for i in (0, 1, 2))
    with pytest.raises(MixerError, match="pool_recommend"):
        backend_config("bayesopt", {"pool_recommend": "cheapest"})


def _paired_history(cheap_values, n_full: int = 12) -> History:
    X = np.random.default_rng(5).dirichlet(np.ones(4), size=30)
    history = History.empty(DOMAINS)
    for i, (x, c) in enumerate(zip(X, cheap_values(X))):
        history = history.append(x, c, "cheap", f"c{i}")
        if i < n_full:
            history = history.append(x, truth(x[None])[0], "full", f"f{i}")
    return history


def _misleading(X: np.ndarray) -> np.ndarray:
    """A cheap fidelity that ranks mixtures independently of the target."""
    return cheap_truth(np.random.default_rng(1).permutation(X))


@pytest.mark.slow  # fits GPs over many rounds
def test_the_gate_keeps_an_informative_cheap_fidelity_and_drops_a_misleading_one():
    agreeing = _paired_history(cheap_truth)
    gate = make_backend("bayesopt", FAST, _mfmake_space()).fit(agreeing).gate
    assert gate.used == {"cheap": True} and gate.pairs == {"cheap": 12} and gate.correlation["cheap"] > 0.8
    misleading = _paired_history(_misleading)
    backend = make_backend("bayesopt", FAST, _mfmake_space())
    assert backend.fit(misleading).gate.used == {"cheap": False}
    for i, x in enumerate(np.random.default_rng(7).dirichlet(np.ones(4), size=2)):  # target runs without a twin
        misleading = misleading.append(x, truth(x[None])[0], "full", f"lone{i}")
    assert {p.fidelity for p in backend.propose(misleading, 4, np.random.default_rng(0))} == {"full"}  # not bought,
    # not even as a shadow run
    rec = backend.recommend(misleading)
    assert rec.evidence["cheap_fidelities"]["used"] == {"cheap": False}
    assert abs(rec.predicted - truth(rec.mixture.vector(DOMAINS)[None])[0]) < 0.3  # the target's level (cheap: +0.8)


def test_the_gate_needs_pairs_before_it_drops_a_fidelity():
    gate = make_backend("bayesopt", FAST, _mfmake_space()).fit(_paired_history(_misleading, n_full=3)).gate
    assert gate.used == {"cheap": True} and gate.correlation == {"cheap": None} and gate.pairs == {"cheap": 3}


@pytest.mark.slow  # multi-fidelity GP fits (the fast lane stays under a minute)
def test_target_runs_are_shadowed_by_cheap_runs_of_the_same_mixture():
    history = _mfmake_history(n_cheap=20, n_full=3)   # the three target runs have no cheap twin
    proposals = make_backend("bayesopt", FAST, _mfmake_space()).propose(history, 4, np.random.default_rng(0))
    targets = history.at_fidelity("full").X
    assert [p.fidelity for p in proposals[:2]] == ["cheap", "cheap"]
    assert all(np.abs(targets - p.mixture.vector(DOMAINS)).sum(axis=1).min() < 1e-9 for p in proposals[:2])
    assert len(proposals) == 4


@pytest.mark.slow  # multi-fidelity GP fits (the fast lane stays under a minute)
def test_best_says_what_each_cheap_fidelity_is_worth():
    from search.views import fidelity_lines

    rec = make_backend("bayesopt", FAST, _mfmake_space()).recommend(_paired_history(_misleading))
    [line] = fidelity_lines(rec.evidence["cheap_fidelities"])
    assert line.startswith("fidelity cheap: Spearman") and "12 paired runs" in line and "DROPPED" in line
    assert fidelity_lines(None) == []


@pytest.mark.slow  # fits GPs over many rounds
def test_until_the_gate_can_judge_every_batch_holds_a_target_run():
    history = _paired_history(cheap_truth, n_full=2)  # two pairs: no verdict yet
    proposals = make_backend("bayesopt", FAST, _mfmake_space()).propose(history, 3, np.random.default_rng(0))
    assert "full" in [p.fidelity for p in proposals] and len(proposals) == 3
