"""Fit quality from out-of-fold predictions, and a std that covers real errors."""

import numpy as np
import pytest

from search.backends import make_backend
from search.history import History
from search.quality import FitQuality, calibrated_std, fit_quality, out_of_fold
from tests.conftest import DOMAINS, make_space, truth


def test_every_row_is_predicted_by_a_model_that_did_not_see_it():
    seen = []

    def fold_fit(train, test):
        assert not set(train) & set(test)
        seen.extend(test)
        return test.astype(float), np.zeros(len(test))

    rows = np.array([3, 5, 7, 11, 13, 17, 19])
    mean, _ = out_of_fold(fold_fit, rows)
    assert sorted(seen) == sorted(rows) and np.array_equal(mean, rows.astype(float))


def test_quality_scores_a_perfect_and_a_useless_model():
    y = np.linspace(0, 1, 10)
    perfect = fit_quality(y, y.copy(), np.full(10, 0.1), 4)
    assert perfect.cv_spearman == pytest.approx(1.0) and perfect.cv_rmse == 0.0
    useless = fit_quality(y, y[::-1].copy(), np.full(10, 0.1), 4)
    assert useless.cv_spearman == pytest.approx(-1.0) and useless.z_rms > 5
    assert useless.cv_r2 < 0 and perfect.cv_r2 == pytest.approx(1.0)
    assert fit_quality(y[:3], y[:3], np.ones(3), 4) == FitQuality(3, 4, runs_std=float(np.std(y[:3])))


def test_calibrated_std_never_falls_below_the_out_of_fold_error():
    quality = FitQuality(20, 4, 0.9, 0.05, 30.0)
    assert np.allclose(calibrated_std(np.array([0.0, 0.05]), quality), [0.05, np.sqrt(2) * 0.05])
    untested = FitQuality(3, 4, runs_std=0.2)  # too few runs to check: their spread is the floor
    assert calibrated_std(np.array([0.0]), untested) == pytest.approx([0.2])


def test_regmix_std_covers_about_two_thirds_of_new_noisy_runs():
    rng = np.random.default_rng(0)
    X = rng.dirichlet(np.ones(4), size=24)
    noise = 0.1
    history = History(DOMAINS, X, truth(X) + rng.normal(0, noise, 24), ["f"] * 24, [f"r{i}" for i in range(24)],
                      [None] * 24)
    backend = make_backend("regmix", {"n_models": 5}, make_space())
    X_new = rng.dirichlet(np.ones(4), size=400)
    mean, std = backend.predict(history, X_new)
    y_new = truth(X_new) + rng.normal(0, noise, 400)
    coverage = float(np.mean(np.abs(y_new - mean) <= std))
    assert 0.55 <= coverage <= 0.95, coverage
    spread_only = np.stack([m.predict(X_new) for m in backend.fit(history).fitted.model.models]).std(axis=0)
    assert np.mean(np.abs(y_new - mean) <= spread_only) < coverage  # the ensemble alone is overconfident
