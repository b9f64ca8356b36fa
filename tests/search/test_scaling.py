"""Cheap runs extrapolated to the target fidelity (search.scaling) and mixing_law's ladder:
each mixture at every cheaper fidelity, the law fitted on the extrapolated targets."""

import numpy as np
import pytest

from mixer import MixerError
from search.backends import make_backend
from search.fidelity import Fidelities, proxy_fidelities
from search.history import History
from search.scaling import cheap_labels, extrapolated, fit_scaling_laws, ladders
from search.space import SearchSpace
from tests.conftest import DOMAINS, OPTIMUM

LADDER = ["tiny:10k", "tiny:20k", "tiny:40k", "tiny:160k"]   # the last is the target


def token_fidelities() -> Fidelities:
    return proxy_fidelities([f"tiny:{n}" for n in (10_000, 20_000, 40_000, 160_000)], "tiny:160000", 512)


def law_loss(X: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Each mixture's loss at fidelity input u (1 at the target): floor, amplitude and the
    mixture's distance to OPTIMUM all matter, so cheap ranks differ from the target's."""
    distance = ((X - OPTIMUM) ** 2).sum(axis=1)
    floor = 2.0 + 5.0 * distance
    amplitude = 0.2 + 2.0 * X[:, 0]            # more of domain a learns slower
    return floor + amplitude * np.exp(1.2 * (1.0 - u))


def ladder_history(X: np.ndarray, fidelity: Fidelities, noise: float = 0.0, seed: int = 0) -> History:
    rows, labels, y = [], [], []
    rng = np.random.default_rng(seed)
    for label in cheap_labels(fidelity):
        u = fidelity.inputs_of(label)[0]
        rows.append(X)
        labels += [label] * len(X)
        y.append(law_loss(X, np.full(len(X), u)) + rng.normal(0, noise, len(X)))
    X_all = np.vstack(rows)
    return History(DOMAINS, X_all, np.concatenate(y), labels, [f"r{i}" for i in range(len(X_all))],
                   [None] * len(X_all))


def test_the_joint_fit_recovers_each_mixtures_target_and_the_shared_exponent():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(24), 4)
    u = np.tile([0.0, 0.25, 0.5, 0.75], 24)[:, None]
    e, a = rng.uniform(1.5, 2.5, 24), rng.uniform(0.2, 1.0, 24)
    values = e[groups] + a[groups] * np.exp(1.3 * (1.0 - u[:, 0]))
    laws = fit_scaling_laws(u, groups, values, huber_delta=0.5)
    assert laws.alpha[0] == pytest.approx(1.3, rel=1e-3)
    assert np.abs(laws.at_target() - (e + a)).max() < 1e-4


def test_extrapolation_ranks_mixtures_as_the_target_does_where_the_cheapest_rung_does_not():
    fidelity = token_fidelities()
    X = np.random.default_rng(1).dirichlet(np.ones(4), 20)
    at_target, from_ladder = extrapolated(ladder_history(X, fidelity, noise=0.002), fidelity, huber_delta=0.5)
    assert at_target.fidelity == [fidelity.target] * 20 and from_ladder.all()
    truth = law_loss(X, np.ones(20))                  # rows come in the order of the mixtures' first runs
    cheapest = law_loss(X, np.zeros(20))
    rank = lambda v: np.argsort(np.argsort(v))
    assert np.corrcoef(rank(cheapest), rank(truth))[0, 1] < 0.9
    assert np.corrcoef(rank(at_target.y), rank(truth))[0, 1] > 0.97
    assert np.abs(at_target.y - truth).max() < 0.05


def test_a_measured_target_run_wins_and_an_unfinished_ladder_is_left_out():
    fidelity = token_fidelities()
    X = np.random.default_rng(2).dirichlet(np.ones(4), 6)
    history = ladder_history(X, fidelity)
    measured = History(DOMAINS, X[:1], np.array([9.0]), [fidelity.target], ["t0"], [None])
    partial = History(DOMAINS, np.full((1, 4), 0.25), np.array([3.0]), [cheap_labels(fidelity)[0]], ["p0"], [None])
    joined = History(DOMAINS, np.vstack([history.X, measured.X, partial.X]),
                     np.concatenate([history.y, measured.y, partial.y]),
                     history.fidelity + measured.fidelity + partial.fidelity,
                     history.run_ids + ["t0", "p0"], [None] * (len(history) + 2))
    at_target, from_ladder = extrapolated(joined, fidelity, huber_delta=0.5)
    assert len(at_target) == 6 and from_ladder.sum() == 5     # the partial ladder is not a row
    row = np.flatnonzero(np.abs(at_target.X - X[0]).sum(axis=1) < 1e-9)[0]
    assert at_target.y[row] == 9.0
    missing = ladders(joined).missing(fidelity)
    assert [label for _, label in missing] == cheap_labels(fidelity)[1:]


def test_per_domain_losses_are_extrapolated_one_by_one_and_recombined():
    fidelity = token_fidelities()
    X = np.random.default_rng(3).dirichlet(np.ones(4), 10)
    history = ladder_history(X, fidelity)
    values = np.stack([history.y, history.y + 1.0], axis=1)
    history = History(DOMAINS, history.X, values @ np.array([0.5, 0.5]), history.fidelity, history.run_ids,
                      history.pool_keys, metrics=["a", "b"], values=values, terms=np.array([0.5, 0.5]))
    at_target = extrapolated(history, fidelity, huber_delta=0.5).history
    assert at_target.metrics == ["a", "b"]
    assert np.allclose(at_target.values[:, 1] - at_target.values[:, 0], 1.0, atol=1e-3)
    assert np.allclose(at_target.y, at_target.values @ at_target.terms)


def ladder_space() -> SearchSpace:
    return SearchSpace(DOMAINS, prior=np.full(4, 0.25), fidelity=token_fidelities(),
                       baselines={"uniform": np.full(4, 0.25)})


def test_mixing_law_climbs_each_ladder_cheapest_first_after_the_baselines_target_runs():
    space = ladder_space()
    backend = make_backend("mixing_law", {"bootstrap": 2}, space)
    proposals = backend.propose(History.empty(DOMAINS), 7, np.random.default_rng(0))
    labels = [p.fidelity for p in proposals]
    assert labels == [space.target_fidelity] + cheap_labels(space.fidelity) * 2
    first = proposals[1].mixture.vector(DOMAINS)
    assert all(np.allclose(p.mixture.vector(DOMAINS), first) for p in proposals[1:4])


def answer_on_target_values(X: np.ndarray, u: float) -> np.ndarray:
    """mixing_law's answer from runs measured at fidelity input u (1: the target)."""
    space = SearchSpace(DOMAINS, prior=np.full(4, 0.25), fidelity=Fidelities.single("t"))
    history = History(DOMAINS, X, law_loss(X, np.full(len(X), u)), ["t"] * len(X), [f"r{i}" for i in range(len(X))],
                      [None] * len(X))
    return make_backend("mixing_law", {"bootstrap": 2}, space).fit(history).recommend().mixture.vector(DOMAINS)


@pytest.mark.slow  # ladders fitted, then the law (the fast lane stays under a minute)
def test_mixing_law_answers_from_extrapolated_ladders_what_target_runs_would_give():
    space = ladder_space()
    X = space.candidates(16, np.random.default_rng(4))
    model = make_backend("mixing_law", {"bootstrap": 2}, space).fit(ladder_history(X, space.fidelity, noise=0.001))
    rec = model.recommend()
    assert rec.evidence["extrapolated"] == 16
    answer = rec.mixture.vector(DOMAINS)
    assert np.abs(answer - answer_on_target_values(X, 1.0)).sum() < 0.05
    assert np.abs(answer - answer_on_target_values(X, 0.0)).sum() > 0.2    # the cheapest rung alone misleads
    assert [p.fidelity for p in model.propose(3, np.random.default_rng(0))] == cheap_labels(space.fidelity)
    quality = model.quality()   # its rows are mixtures, not target runs in order: no per-run predictions
    assert quality.runs == 16 and quality.cv_spearman is not None and quality.out_of_fold is None


def test_a_ladder_the_budget_cannot_finish_is_not_started_and_the_rest_runs_at_the_target():
    space = ladder_space()
    space.budget_runs = 12     # 1 baseline + 3 ladders of 3 rungs leave 2 runs: not a ladder
    backend = make_backend("mixing_law", {"bootstrap": 2}, space)
    history = History.empty(DOMAINS)
    while len(history) < space.budget_runs:
        proposals = backend.fit(history).propose(2, np.random.default_rng(len(history)))
        for p in proposals:
            x = p.mixture.vector(DOMAINS)
            history = history.append(x, float(law_loss(x[None], np.ones(1))[0]), p.fidelity, f"r{len(history)}")
    rungs = cheap_labels(space.fidelity)
    assert history.fidelity == [space.target_fidelity] + rungs * 3 + [space.target_fidelity] * 2
    assert ladders(history).missing(space.fidelity) == []


@pytest.mark.parametrize("labels, target, message", [
    (["tiny:10k", "tiny:20k", "tiny:160k"], "tiny:160k", "has 2 cheaper fidelities, needs 3"),
    (["tiny:10k", "tiny:20k", "tiny:40k", "1m:160k"], "1m:160k", "the cheaper fidelities do not vary in size"),
])
def test_a_ladder_that_cannot_determine_its_law_is_refused(labels, target, message):
    from search.fidelity import proxy_label

    fidelity = proxy_fidelities([proxy_label(x) for x in labels], proxy_label(target), 512)
    space = SearchSpace(DOMAINS, prior=np.full(4, 0.25), fidelity=fidelity)
    with pytest.raises(MixerError, match=message):
        make_backend("mixing_law", {}, space)


def test_search_backends_says_which_fidelities_each_backend_runs():
    from search.backends import capability_table

    rows = capability_table().set_index("backend").fidelities
    assert rows["mixing_law"].startswith("several (proxy runs): each mixture at every cheaper one")
    assert rows["bayesopt"].startswith("several") and rows["regmix"] == "the target only"
