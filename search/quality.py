"""How far a backend's model can be trusted: out-of-fold predictions of the runs it was
fitted on, summarised as a `FitQuality`, and the calibration of its predicted std.

A model's own spread (an ensemble's disagreement, a GP's posterior) is not its error: on
a real 6-run search the regmix ensemble predicted +-0.0003 where it missed by 0.03. The
out-of-fold residuals measure the error the model actually makes on runs it did not see,
and the std a backend reports is widened until it covers them (see `calibrated_std`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields

import numpy as np

FOLDS = 5
MIN_RUNS_TO_CHECK = 5           # fewer target runs: no cross-validation, the model is untested

# fit_predict(train [k], test [m]) -> (mean [m], std [m]) at the `test` rows, from a model
# fitted without them (train: the other checked rows; it may use rows never checked too)
FoldFit = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class FitQuality:
    """runs: runs checked (at the target fidelity); domains: columns of the mixture;
    cv_spearman: rank correlation of out-of-fold predictions with the runs; cv_rmse: their
    root mean squared error; z_rms: root mean square of residual / predicted std (1 is
    honest, above 1 overconfident). None where too few runs to check."""

    runs: int
    domains: int
    cv_spearman: float | None = None
    cv_rmse: float | None = None
    z_rms: float | None = None
    runs_std: float | None = None    # std of the runs' targets: an error above it is worse than their mean
    out_of_fold: np.ndarray | None = field(default=None, repr=False, compare=False)
    # [runs] each checked run's prediction by a model fitted without its fold, where the
    # backend checks every target-fidelity run in order (regmix, mixing_law); else None

    @property
    def cv_r2(self) -> float | None:
        """1 - out-of-fold MSE / variance of the runs (0: no better than predicting their mean)."""
        if self.cv_rmse is None or not self.runs_std:
            return None
        return 1.0 - (self.cv_rmse / self.runs_std) ** 2

    def as_dict(self) -> dict:
        """The summary numbers (what a recommendation's evidence stores), not the predictions."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "out_of_fold"}


def out_of_fold(fit_predict: FoldFit, rows: np.ndarray, folds: int = FOLDS, seed: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std [len(rows)] at each of `rows`, each predicted by a model fitted without
    its fold (the model may see every other run, of any fidelity)."""
    order = np.random.default_rng(seed).permutation(len(rows))
    mean, std = np.empty(len(rows)), np.empty(len(rows))
    for fold in range(min(folds, len(rows))):
        held = order[fold::folds]
        m, s = fit_predict(np.delete(rows, held), rows[held])
        mean[held], std[held] = m, s
    return mean, std


def fit_quality(y: np.ndarray, mean: np.ndarray | None, std: np.ndarray | None, n_domains: int) -> FitQuality:
    """Summary of out-of-fold predictions mean/std [n] of the runs' targets y [n]."""
    runs_std = float(np.std(y)) if len(y) > 1 else None
    if mean is None or len(y) < MIN_RUNS_TO_CHECK:
        return FitQuality(len(y), n_domains, runs_std=runs_std)
    from scipy.stats import spearmanr

    residual = y - mean
    rho = spearmanr(mean, y)[0] if np.ptp(mean) > 0 and np.ptp(y) > 0 else 0.0
    z = residual / np.maximum(std, 1e-12)
    return FitQuality(len(y), n_domains, float(rho), float(np.sqrt(np.mean(residual ** 2))),
                      float(np.sqrt(np.mean(z ** 2))), runs_std, out_of_fold=np.asarray(mean))


def calibrated_std(model_std: np.ndarray, quality: FitQuality) -> np.ndarray:
    """The model's std [m] combined with its out-of-fold RMSE, sqrt(std^2 + rmse^2): the
    error it made on runs it had not seen (seed noise included) is a floor under its
    own spread. A model too young to be checked (fewer than MIN_RUNS_TO_CHECK runs) gets
    the runs' own spread as that floor: untested, it knows no better than they vary."""
    std = np.asarray(model_std, dtype=np.float64)
    floor = quality.cv_rmse if quality.cv_rmse is not None else (quality.runs_std or 0.0)
    return np.sqrt(std ** 2 + floor ** 2)


@dataclass(frozen=True)
class GuardConfig:
    """When a model has earned trust (search.guard's rules read it; so does regmix's design)."""

    min_runs_per_domain: float = 2.0
    min_cv_spearman: float = 0.5


def weak_model_reason(quality: FitQuality, cfg: GuardConfig = GuardConfig()) -> str | None:
    """Why the model cannot be trusted yet, in a user's words; None when it can."""
    needed = int(np.ceil(cfg.min_runs_per_domain * quality.domains))
    if quality.runs < needed:
        return (f"{quality.runs} runs at the target fidelity for {quality.domains} domains: a model needs "
                f"about {needed} ({cfg.min_runs_per_domain:g} per domain)")
    if quality.cv_spearman is None:
        return f"{quality.runs} runs are too few to cross-validate the model"
    if quality.cv_spearman < cfg.min_cv_spearman:
        return (f"the model ranks held-out runs poorly (cross-validated Spearman {quality.cv_spearman:.2f} "
                f"< {cfg.min_cv_spearman:g})")
    if quality.cv_r2 is not None and quality.cv_r2 <= 0:
        return (f"the model's out-of-fold error {quality.cv_rmse:.4g} is not below the runs' own spread "
                f"{quality.runs_std:.4g}: it predicts no better than their mean")
    return None


def lowest_error(candidates: list, quality_of) -> object:
    """The candidate whose FitQuality (`quality_of(candidate)`) has the lowest out-of-fold
    RMSE; those too young to check count last (the first of them wins a tie of none checked)."""
    return min(candidates, key=lambda c: np.inf if quality_of(c).cv_rmse is None else quality_of(c).cv_rmse)
