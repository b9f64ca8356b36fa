import numpy as np
import pytest

from mixer import MixerError
from search.backends import backend_config, make_backend, parse_options
from search.history import History
from search.fidelity import Fidelities
from search.space import Pool, SearchSpace

DOMAINS = ["a", "b", "c", "d"]
OPTIMUM = np.array([0.4, 0.3, 0.2, 0.1])


def truth(X: np.ndarray) -> np.ndarray:
    """A smooth loss with its minimum inside the simplex."""
    return 2.0 + ((X - OPTIMUM) ** 2).sum(axis=1) * 5


def _history(n: int, seed: int = 0) -> History:
    X = np.random.default_rng(seed).dirichlet(np.ones(4), size=n)
    return History(DOMAINS, X, truth(X), ["f"] * n, [f"r{i}" for i in range(n)], [None] * n)


def _space(pool: bool = False) -> SearchSpace:
    space = SearchSpace(DOMAINS, prior=np.full(4, 0.25), fidelity=Fidelities.single("f"))
    if pool:
        X = np.random.default_rng(9).dirichlet(np.ones(4), size=200)
        space.pool = Pool([f"p{i}" for i in range(200)], X, ["f"] * 200)
    return space


FAST = {"n_candidates": 20_000, "screen_top": 500, "n_models": 3}


@pytest.mark.parametrize("name, options", [("random", {}), ("regmix", FAST), ("bayesopt", {"n_candidates": 256})])
def test_every_proposal_is_a_valid_mixture(name, options):
    backend = make_backend(name, options, _space())
    for history in (History.empty(DOMAINS), _history(30)):
        proposals = backend.propose(history, 5, np.random.default_rng(1))
        assert len(proposals) == 5
        for p in proposals:
            w = p.mixture.vector(DOMAINS)
            assert (w >= 0).all() and abs(w.sum() - 1) < 1e-9 and p.fidelity == "f"


def test_regmix_recommends_near_the_optimum_with_calibrated_prediction():
    backend = make_backend("regmix", FAST, _space())
    history = _history(60)
    rec = backend.recommend(history)
    chosen = rec.mixture.vector(DOMAINS)
    assert np.abs(chosen - OPTIMUM).sum() < 0.25
    assert truth(chosen[None])[0] < np.sort(history.y)[3]  # better than all but the best few runs
    assert abs(rec.predicted - truth(chosen[None])[0]) < 0.2 and rec.predicted_std >= 0
    assert rec.evidence["runs"] == 60 and rec.evidence["cv_spearman"] > 0.7


def test_regmix_proposals_improve_on_random_ones():
    history = _history(40)
    regmix = make_backend("regmix", FAST, _space()).propose(history, 8, np.random.default_rng(2))
    rand = make_backend("random", {}, _space()).propose(history, 8, np.random.default_rng(2))
    score = lambda ps: truth(np.array([p.mixture.vector(DOMAINS) for p in ps])).mean()  # noqa: E731
    assert score(regmix) < score(rand) - 0.1


@pytest.mark.parametrize("name", ["random", "regmix", "bayesopt"])
def test_pool_mode_picks_unused_entries_once(name):
    space = _space(pool=True)
    backend = make_backend(name, FAST if name == "regmix" else {}, space)
    history = History(DOMAINS, space.pool.X[:10], truth(space.pool.X[:10]), ["f"] * 10,
                      [f"r{i}" for i in range(10)], [f"p{i}" for i in range(10)], pending_keys=["p10"])
    proposals = backend.propose(history, 20, np.random.default_rng(0))
    keys = [p.pool_key for p in proposals]
    assert len(set(keys)) == 20 and not set(keys) & {f"p{i}" for i in range(11)}
    for p in proposals:
        assert np.allclose(p.mixture.vector(DOMAINS), space.pool.X[int(p.pool_key[1:])])


def test_random_recommends_its_best_run():
    history = _history(20)
    rec = make_backend("random", {}, _space()).recommend(history)
    assert np.allclose(rec.mixture.vector(DOMAINS), history.X[np.argmin(history.y)])


def test_options_are_typed_and_checked_at_creation():
    cfg = backend_config("regmix", parse_options(["top_k=50", "regressor=linear", "n_candidates=1e5"]))
    assert cfg.top_k == 50 and cfg.regressor.value == "linear" and cfg.n_candidates == 100_000
    with pytest.raises(MixerError, match="unknown backend 'gp'"):
        backend_config("gp", {})
    with pytest.raises(MixerError, match="has no option depth"):
        backend_config("regmix", {"depth": "3"})
    with pytest.raises(MixerError, match="bad value 'many'"):
        backend_config("regmix", {"top_k": "many"})
    with pytest.raises(MixerError, match="expected KEY=VALUE"):
        parse_options(["top_k"])
