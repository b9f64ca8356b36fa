"""The recommendation guard: a weak model answers with the best run, labelled; a strong one
with its own pick; one target-fidelity run never crowns an unevaluated corner."""

import numpy as np
import pytest

from search.backends import make_backend
from search.guard import GuardConfig, guard, weak_model_reason
from search.history import History
from search.quality import FitQuality
from tests.conftest import DOMAINS, OPTIMUM, make_history, make_space, truth
from tests.search.test_bayesopt import _mfmake_history, _mfmake_space

FAST = {"n_candidates": 20_000, "screen_top": 500, "n_models": 3}


def _guarded(name: str, history: History, options: dict | None = None, space=None):
    backend = make_backend(name, FAST if options is None else options, space or make_space())
    return guard(backend.fit(history), (space or make_space()).target_fidelity)


def test_a_weak_model_yields_the_best_observed_run_labelled():
    rng = np.random.default_rng(4)
    X = rng.dirichlet(np.ones(4), size=6)
    history = History(DOMAINS, X, rng.normal(3.0, 0.05, size=6), ["f"] * 6, [f"r{i}" for i in range(6)], [None] * 6)
    rec = _guarded("regmix", history)
    best = int(np.argmin(history.y))
    assert np.allclose(rec.mixture.vector(DOMAINS), X[best])
    assert rec.evidence["rule"] == "best-run:weak-model" and rec.evidence["best_run"] == f"r{best}"
    assert "6 runs at the target fidelity for 4 domains" in rec.evidence["reason"]
    assert rec.evidence["model_pick"]["mixture"] != rec.mixture.as_dict()


def test_noise_without_signal_is_a_weak_model_even_with_many_runs():
    rng = np.random.default_rng(5)
    X = rng.dirichlet(np.ones(4), size=40)
    history = History(DOMAINS, X, rng.normal(3.0, 0.05, size=40), ["f"] * 40, [f"r{i}" for i in range(40)],
                      [None] * 40)
    rec = _guarded("regmix", history)
    assert rec.evidence["rule"].startswith("best-run:")
    assert np.allclose(rec.mixture.vector(DOMAINS), X[np.argmin(history.y)])


def test_a_measured_answer_is_never_less_certain_than_the_runs_spread():
    rng = np.random.default_rng(5)   # noise only: out-of-fold error above the runs' spread
    X = rng.dirichlet(np.ones(4), size=40)
    history = History(DOMAINS, X, rng.normal(3.0, 0.05, size=40), ["f"] * 40, [f"r{i}" for i in range(40)],
                      [None] * 40)
    model = make_backend("regmix", FAST, make_space()).fit(history)
    rec = guard(model, make_space().target_fidelity)
    quality = model.quality()
    assert quality.cv_rmse > quality.runs_std
    assert model.predict(rec.mixture.vector(DOMAINS)[None])[1][0] > quality.runs_std
    assert rec.predicted_std == quality.runs_std


def test_a_strong_model_recommends_its_own_pick_with_the_predicted_gain():
    history = make_history(40)
    rec = _guarded("regmix", history)
    assert rec.evidence["rule"] == "model"
    assert np.abs(rec.mixture.vector(DOMAINS) - OPTIMUM).sum() < 0.25
    assert rec.evidence["predicted_gain"] > rec.predicted_std
    assert truth(rec.mixture.vector(DOMAINS)[None])[0] < history.y.min()


@pytest.mark.slow  # a multi-fidelity GP fit (the fast lane stays under a minute)
def test_bayesopt_with_one_target_run_recommends_that_evaluated_mixture():
    space = _mfmake_space()
    history = _mfmake_history(n_cheap=12, n_full=1)
    rec = _guarded("bayesopt", history, {"n_candidates": 256, "recommend_candidates": 512}, space)
    full = history.at_fidelity("full")
    assert np.allclose(rec.mixture.vector(DOMAINS), full.X[0])
    assert rec.evidence["rule"] == "best-run:weak-model"


def test_random_search_answers_with_its_best_run_and_says_it_has_no_model():
    history = make_history(12)
    rec = _guarded("random", history, {})
    assert rec.evidence["rule"] == "no-model"
    assert np.allclose(rec.mixture.vector(DOMAINS), history.X[np.argmin(history.y)])


def test_weak_model_reasons_name_the_shortfall():
    assert "3 runs at the target fidelity for 5 domains" in weak_model_reason(FitQuality(3, 5))
    assert "too few to cross-validate" in weak_model_reason(FitQuality(12, 5))
    assert "Spearman 0.20" in weak_model_reason(FitQuality(12, 5, 0.2, 0.1, 1.0))
    assert weak_model_reason(FitQuality(12, 5, 0.8, 0.1, 1.0, runs_std=0.3)) is None
    assert "no better than their mean" in weak_model_reason(FitQuality(12, 5, 0.8, 0.1, 1.0, runs_std=0.05))
    assert weak_model_reason(FitQuality(12, 5, 0.8, 0.1, 1.0), GuardConfig(min_runs_per_domain=3)) is not None


def _noisy_with_uniform_run(uniform_y: float) -> History:
    """40 runs of pure noise (a weak model), the first of them the uniform mixture."""
    rng = np.random.default_rng(5)
    X = np.vstack([np.full(4, 0.25), rng.dirichlet(np.ones(4), size=39)])
    y = rng.normal(3.0, 0.05, size=40)
    y[0] = uniform_y
    return History(DOMAINS, X, y, ["f"] * 40, [f"r{i}" for i in range(40)], [None] * 40)


def test_a_best_run_within_the_noise_of_the_baseline_run_yields_the_baseline_labelled():
    history = _noisy_with_uniform_run(uniform_y=2.90)     # the best run (2.88) is below it, within the noise
    assert history.y.min() < 2.90
    backend = make_backend("regmix", FAST, make_space())
    rec = guard(backend.fit(history), "f", baselines={"uniform": np.full(4, 0.25)})
    assert np.allclose(rec.mixture.vector(DOMAINS), 0.25)
    assert rec.evidence["rule"] == "baseline:no-clear-gain" and rec.evidence["best_run"] == "r0"
    assert rec.evidence["baseline"] == "uniform" and rec.evidence["model_weak"]
    assert "beat the uniform run by" in rec.evidence["baseline_reason"]


def test_a_best_run_clear_of_the_baseline_run_stays_the_answer():
    history = _noisy_with_uniform_run(uniform_y=3.5)      # far above every other run
    backend = make_backend("regmix", FAST, make_space())
    rec = guard(backend.fit(history), "f", baselines={"uniform": np.full(4, 0.25)})
    assert rec.evidence["rule"] == "best-run:weak-model"
    assert np.allclose(rec.mixture.vector(DOMAINS), history.X[np.argmin(history.y)])
