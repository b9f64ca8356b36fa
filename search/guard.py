"""The recommendation guard: a backend's pick becomes the answer only when its model has
earned trust and predicts the pick better than what was already run.

Rules, in order (the one that decided is stored in the evidence as `rule`; before them,
the driver answers `best-run:too-few-runs` when the backend cannot fit on so few runs):
1. `no-model`: the backend recommends an observed run itself (random search).
2. `best-run:weak-model`: fewer target-fidelity runs than `min_runs_per_domain` x domains,
   too few to cross-validate, an out-of-fold Spearman below `min_cv_spearman`, or an
   out-of-fold error no smaller than the runs' own spread (R^2 <= 0): the best observed run
   at the target fidelity is the answer.
3. `best-run:no-predicted-gain`: the model predicts its pick better than the best run by
   no more than the pick's (calibrated) std: the best run is the answer.
4. `model`: otherwise the backend's pick, with the predicted gain in the evidence.
5. `baseline:no-clear-gain` (after 2 or 3): when the search ran the baselines (uniform,
   token share: every model backend's proxy design starts with them) and its best run beats the
   best baseline run by no more than the runs' noise (the model's out-of-fold error, else
   the runs' spread), that baseline is the answer. The best of 16 noisy runs is mostly the
   luckiest: in small real searches it lost to uniform in 2 of 3 seeds (issue 11).

The best run's own value is a minimum over noisy runs (optimistic), so gains are
measured against the model's prediction at the best run's mixture, and the answer's
`predicted` value is that prediction, not the lucky observation. Its ± is the model's
(calibrated) std there, but never more than the runs' own spread: the out-of-fold error
that calibrates the std is the error at runs the model has not seen, and a weak model's
can exceed the runs' spread, while this mixture was run (benchmarks/README.md,
"Fresh-seed coverage").
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from search.backends.base import Model, Recommendation, near, to_mixture
from search.history import History
from search.quality import FitQuality, GuardConfig, weak_model_reason


def guard(model: Model, target_fidelity: str | None, cfg: GuardConfig = GuardConfig(),
          baselines: dict[str, np.ndarray] | None = None) -> Recommendation:
    """The recommendation to give from a fitted model (values in minimise orientation), with
    `rule`, `quality` and, where a model was consulted, `predicted_gain` in its evidence.
    `baselines`: name -> mixture [D] the answer is compared with."""
    rec, history = model.recommend(), model.history
    at_target = history.at_fidelity(target_fidelity)
    evidence = dict(rec.evidence)
    if rec.predicted is None or not len(at_target):
        evidence["rule"] = "no-model" if rec.predicted is None else "model:no-target-run"
        return replace(rec, evidence=evidence)
    quality = model.quality()
    best = int(np.argmin(at_target.y))
    best_x = at_target.X[best]
    (at_best,), (at_best_std,) = model.predict(best_x[None, :])
    evidence.update(quality=quality.as_dict(), best_run=at_target.run_ids[best],
                    best_observed=float(at_target.y[best]), predicted_at_best_run=float(at_best),
                    model_pick={"mixture": rec.mixture.as_dict(), "predicted": rec.predicted,
                                "predicted_std": rec.predicted_std},
                    predicted_gain=float(at_best - rec.predicted))
    reason = weak_model_reason(quality, cfg)
    if reason is None and at_best - rec.predicted > rec.predicted_std:
        evidence["rule"] = "model"
        return replace(rec, evidence=evidence)
    evidence["rule"] = "best-run:weak-model" if reason else "best-run:no-predicted-gain"
    evidence["reason"] = reason or (f"the model's pick is not predicted better than the best run by more than its "
                                    f"std (predicted gain {at_best - rec.predicted:.4f}, std {rec.predicted_std:.4f})")
    noise = float((quality.cv_rmse if quality.cv_rmse is not None else quality.runs_std) or 0.0)
    noise_source = ("the model's out-of-fold error: what it cannot tell from noise" if quality.cv_rmse is not None
                    else "the runs' spread: too few runs to cross-validate")
    kept = _baseline_run(at_target, best, baselines or {}, noise)
    if kept is None:
        return Recommendation(to_mixture(history.domains, best_x), float(at_best),
                              _measured_std(at_best_std, quality), evidence)
    name, row = kept
    (at_row,), (at_row_std,) = model.predict(at_target.X[row][None, :])
    evidence.update(rule="baseline:no-clear-gain", model_weak=reason is not None, baseline=name,
                    best_run=at_target.run_ids[row], best_observed=float(at_target.y[row]),
                    predicted_at_best_run=float(at_row), predicted_gain=float(at_row - rec.predicted),
                    baseline_reason=f"the best run {at_target.run_ids[best]} beat the {name} run by "
                                    f"{at_target.y[row] - at_target.y[best]:.4f}, not more than the runs' noise "
                                    f"{noise:.4f} ({noise_source})")
    return Recommendation(to_mixture(history.domains, at_target.X[row]), float(at_row),
                          _measured_std(at_row_std, quality), evidence)


def _measured_std(model_std: float, quality: FitQuality) -> float:
    """The ± of the model's value at a mixture that was run: its std, at most the runs' spread."""
    return float(min(model_std, quality.runs_std)) if quality.runs_std else float(model_std)


def _baseline_run(at_target: History, best: int, baselines: dict[str, np.ndarray], noise: float
                  ) -> tuple[str, int] | None:
    """(name, row) of the best baseline run when the best run is not a baseline and beats it
    by no more than `noise`; None otherwise (no baseline was run, or the best run is clear)."""
    runs = [(float(at_target.y[i]), name, i) for name, x in baselines.items() for i in np.flatnonzero(near(at_target.X, x))]
    if not runs or any(i == best for _, _, i in runs):
        return None
    value, name, row = min(runs)
    return (name, int(row)) if value - float(at_target.y[best]) <= noise else None
