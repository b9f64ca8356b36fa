"""`regmix`: regression from mixture to target, as RegMix (Liu et al., 2025).

Fit: an ensemble of `n_models` LightGBM regressors (different seeds, row and column
subsampling), bootstrapped Bayesian ridge regressions on the weights and their squares
(`ridge`), or a linear regression. Trees cannot learn from a handful of points, a linear
model can, and the squares let it place an optimum inside the simplex. The default `auto`
fits ridge below 2 x domains runs, and from there whichever of ridge and LightGBM has the
lower out-of-fold error on this search's own runs (the evidence says which).

A target that combines several losses (`avg`, weights, `worst`): one model per loss,
combined as the target combines them, is a candidate beside the model of the target, and
the lower out-of-fold error chooses (`per_metric`).

Uncertainty: the ensemble's spread combined with the out-of-fold error of the chosen
regressor (`search.quality.calibrated_std`); the spread alone is far too narrow.
Simulate: `n_candidates` mixtures from the prior's Dirichlet sampler (1e6 by default). The
first ensemble member screens all of them, the whole ensemble re-scores the best
`screen_top`, and the recommendation is the mean of the `top_k` best (RegMix averages its
top 100). The LightGBM defaults are chosen by protocol, on RegMix's training runs only
(benchmarks/regression_protocol.py); `--option preset=regmix-paper` is RegMix's own
notebook setting.

Propose: the first `n_initial` runs (default max(4, domains / 4)) are a space-filling design
(`search.backends.base.initial_design`); then each batch is the best predicted candidates
not yet run (in pool mode, the best predicted unused pool entries): RegMix's recommendation
made sequential. A proxy search (not a table) differs in two ways (benchmarks/README.md
has the small real searches behind both):
- while the model has not earned trust (`search.quality.weak_model_reason`) it keeps to its
  space-filling design, sized to the budget (at most `DESIGN_CAP`): RegMix's own way, many
  spread runs and then one fit, rather than chasing a noisy fit;
- the model's candidates, for proposals and the recommendation alike, lie within
  `trust_radius` (L1) of one of the best measured runs
  (`search.backends.base.trust_region_candidates`): a fit on a few runs is linear far from
  them, and its optimum over the whole simplex is a corner.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from typing import ClassVar, NamedTuple

import numpy as np

from mixer.errors import MixerError
from search.backends.base import (MODELS_THE_WORST_LOSS, FidelityUse, OneCallShorthands,
                                  Proposal, Recommendation, TooFewRuns, by_prediction, initial_design,
                                  pool_proposals, to_mixture, trust_region_candidates)
from search.history import History, MetricValues
from search.quality import (MIN_RUNS_TO_CHECK, FitQuality, calibrated_std, fit_quality, lowest_error,
                            out_of_fold, weak_model_reason)
from search.space import SearchSpace


DESIGN_CAP = 64       # largest space-filling design (k-means over 64 draws per point, every proposal)
TRUST_CENTRES = 64    # best runs whose neighbourhoods hold the model's candidates (bounds the distance work)
MIN_RUNS_TO_FIT = 3   # finished runs a fit needs


class Preset(str, Enum):
    mixer = "mixer"                # the fields below as given
    regmix_paper = "regmix-paper"  # RegMix's notebook: one LightGBM, 1000 trees at lr 0.01, 31 leaves,
                                   # no subsampling, early stopping (3 rounds) on 1/8 of the runs


class Regressor(str, Enum):
    auto = "auto"          # ridge on few runs, then the lower out-of-fold error of ridge and LightGBM
    lightgbm = "lightgbm"
    ridge = "ridge"        # bootstrapped Bayesian ridge on weights and their squares
    linear = "linear"


@dataclass
class RegMixConfig:
    preset: Preset = Preset.mixer  # regmix-paper overrides the LightGBM fields and the regressor
    regressor: Regressor = Regressor.auto
    n_models: int = 5
    n_estimators: int = 200
    learning_rate: float = 0.05
    num_leaves: int = 7
    min_child_samples: int = 5     # at most; a quarter of the runs on small searches
    subsample: float = 0.8         # rows and columns per tree; the ensemble's members differ by them
    early_stopping: int = 0        # rounds without gain on 1/8 held-out runs before stopping (0: off)
    n_candidates: int = 1_000_000
    screen_top: int = 2_000
    top_k: int = 100
    n_initial: int = 0             # 0: max(4, domains / 4) space-filling runs before the first fit
    trust_radius: float = 0.5      # L1 reach of the model's candidates from the best runs (0: anywhere)
    per_metric: bool = True        # a target over several losses: one model per loss, combined, where out of
                                   # fold it beats a model of the target
    seed: int = 0

    def __post_init__(self):
        self.preset, self.regressor = Preset(self.preset), Regressor(self.regressor)
        if self.preset is Preset.regmix_paper:
            self.regressor, self.n_models, self.n_estimators, self.learning_rate = Regressor.lightgbm, 1, 1000, 0.01
            self.num_leaves, self.min_child_samples, self.subsample, self.early_stopping = 31, 20, 1.0, 3
        if not 0 < self.subsample <= 1:
            raise MixerError(f"regmix subsample must be in (0, 1], got {self.subsample}")
        if self.top_k < 1 or self.n_models < 1 or self.n_candidates < self.top_k:
            raise MixerError("regmix needs top_k >= 1, n_models >= 1 and n_candidates >= top_k")
        if self.trust_radius < 0:
            raise MixerError(f"regmix trust_radius must be >= 0 (0: no trust region), got {self.trust_radius}")


def _with_squares(X: np.ndarray) -> np.ndarray:
    """[w, w^2]: lets a linear model place an optimum inside the simplex."""
    return np.hstack([X, X * X])


def auto_regressors(n_runs: int, n_domains: int) -> list[Regressor]:
    """The regressors `auto` chooses between at this many runs."""
    return [Regressor.ridge] if n_runs < 2 * n_domains else [Regressor.ridge, Regressor.lightgbm]


class RegMixModel:
    """fit(X [n, D], y [n]) then predict(X [m, D]) -> (mean [m], ensemble std [m])."""

    def __init__(self, cfg: RegMixConfig, regressor: Regressor):
        self.cfg, self.regressor = cfg, regressor
        self.models: list = []

    def fit(self, X: np.ndarray, y: np.ndarray) -> "RegMixModel":
        if len(y) < MIN_RUNS_TO_FIT:
            raise TooFewRuns(f"regmix needs at least {MIN_RUNS_TO_FIT} finished runs to fit, has {len(y)}")
        if self.regressor is Regressor.linear:
            from sklearn.linear_model import LinearRegression

            self.models = [LinearRegression().fit(X, y)]
        elif self.regressor is Regressor.ridge:
            from sklearn.linear_model import BayesianRidge
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import FunctionTransformer

            rng = np.random.default_rng(self.cfg.seed)
            samples = [np.arange(len(y))] + [rng.integers(0, len(y), len(y)) for _ in range(self.cfg.n_models - 1)]
            self.models = [make_pipeline(FunctionTransformer(_with_squares), BayesianRidge()).fit(X[i], y[i])
                           for i in samples]
        else:
            self.models = [self._lightgbm(X, y, self.cfg.seed + i) for i in range(self.cfg.n_models)]
        return self

    def _lightgbm(self, X: np.ndarray, y: np.ndarray, seed: int):
        import lightgbm as lgb

        cfg = self.cfg
        model = lgb.LGBMRegressor(
            n_estimators=cfg.n_estimators, learning_rate=cfg.learning_rate, num_leaves=cfg.num_leaves,
            min_child_samples=min(cfg.min_child_samples, max(1, len(y) // 4)), subsample=cfg.subsample,
            subsample_freq=1 if cfg.subsample < 1 else 0, colsample_bytree=cfg.subsample, random_state=seed,
            verbosity=-1, n_jobs=1)   # one thread: on a few hundred runs OpenMP costs 3-12x what it saves
        if not cfg.early_stopping or len(y) < 16:
            return model.fit(X, y)
        held = np.random.default_rng(seed).permutation(len(y))[: len(y) // 8]
        train = np.setdiff1d(np.arange(len(y)), held)
        return model.fit(X[train], y[train], eval_X=(X[held],), eval_y=(y[held],),
                         callbacks=[lgb.early_stopping(cfg.early_stopping, verbose=False)])

    def predict_first(self, X: np.ndarray) -> np.ndarray:
        return self.models[0].predict(X)

    def members(self, X: np.ndarray) -> np.ndarray:
        """Each ensemble member's prediction [members, m] at X [m, D]."""
        return np.stack([m.predict(X) for m in self.models])

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        preds = self.members(X)
        return preds.mean(axis=0), preds.std(axis=0)


class MetricModels:
    """A target that combines several metrics, as the combination of one RegMixModel per
    metric (History.per_metric); predict(X [m, D]) -> (mean [m], std over the ensemble's
    members [m]), member k of every metric's model combined. `screen`, a model of the
    target itself, scores many candidates cheaply (one model, not one per metric)."""

    def __init__(self, models: list[RegMixModel], combination: MetricValues, screen: RegMixModel | None = None):
        self.models, self.combination, self.screen = models, combination, screen
        self.regressor = models[0].regressor

    def members(self, X: np.ndarray) -> np.ndarray:
        per_metric = np.broadcast_arrays(*[model.members(X) for model in self.models])     # M x [members, m]
        return self.combination.combine(np.stack(per_metric, axis=1))                     # [members, m]

    def predict_first(self, X: np.ndarray) -> np.ndarray:
        if self.screen is not None:
            return self.screen.predict_first(X)
        return self.combination.combine(np.stack([model.predict_first(X) for model in self.models]))

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        preds = self.members(X)
        return preds.mean(axis=0), preds.std(axis=0)


class FittedRegMix(NamedTuple):
    model: RegMixModel | MetricModels
    quality: FitQuality      # with each run's prediction by a model fitted without it


def _fit(cfg: RegMixConfig, regressor: Regressor, X: np.ndarray, y: np.ndarray, metrics: MetricValues | None,
         screen: bool = False) -> RegMixModel | MetricModels:
    """A model of y [n] at X [n, D]: of the target itself, or (`metrics`) one per metric."""
    if metrics is None:
        return RegMixModel(cfg, regressor).fit(X, y)
    models = [RegMixModel(cfg, regressor).fit(X, values) for values in metrics.values.T]
    return MetricModels(models, metrics, RegMixModel(cfg, regressor).fit(X, y) if screen else None)


def fit_checked(cfg: RegMixConfig, X: np.ndarray, y: np.ndarray, metrics: MetricValues | None = None
                ) -> FittedRegMix:
    """The model of the configured regressor (for `auto`, the candidate with the lowest
    out-of-fold RMSE) fitted on every run, with its out-of-fold quality. With `metrics`
    (values [n, M] the target y combines), one model per metric combined is a candidate
    beside the model of y, and the lower out-of-fold RMSE of the two chooses as well."""
    choices = auto_regressors(len(y), X.shape[1]) if cfg.regressor is Regressor.auto else [cfg.regressor]
    forms = [None] if metrics is None else [None, metrics]
    checked = []
    for regressor, form in ((r, f) for r in choices for f in forms):
        def fold_fit(train: np.ndarray, test: np.ndarray, regressor=regressor, form=form):
            if len(train) < 3:
                return np.full(len(test), y[train].mean() if len(train) else 0.0), np.zeros(len(test))
            rows = None if form is None else form.rows(train)
            return _fit(cfg, regressor, X[train], y[train], rows).predict(X[test])

        oof = out_of_fold(fold_fit, np.arange(len(y))) if len(y) >= MIN_RUNS_TO_CHECK else (None, None)
        checked.append((regressor, form, fit_quality(y, *oof, X.shape[1])))
    regressor, form, quality = lowest_error(checked, lambda c: c[2])
    return FittedRegMix(_fit(cfg, regressor, X, y, form, screen=True), quality)


class RegMixBackend(OneCallShorthands):
    name: ClassVar[str] = "regmix"
    fidelities: ClassVar[FidelityUse] = FidelityUse.target
    worst_case: ClassVar[str] = MODELS_THE_WORST_LOSS

    def __init__(self, config: RegMixConfig, space: SearchSpace):
        self.config, self.space = config, space

    def fit(self, history: History) -> "RegMixFit":
        return RegMixFit(self, history)

    def n_initial(self) -> int:
        return self.config.n_initial or max(4, len(self.space.domains) // 4)

    def design_size(self) -> int:
        """The space-filling design's size: the run budget (at most `DESIGN_CAP`), at least
        `n_initial`."""
        return max(self.n_initial(), min(self.space.budget_runs or 0, DESIGN_CAP))


class RegMixFit:
    """RegMix's model of one History: the regressor, fitted on the target-fidelity runs on
    first use (every run in pool mode)."""

    def __init__(self, backend: RegMixBackend, history: History):
        self.config, self.space, self.history = backend.config, backend.space, history
        self.backend = backend

    @cached_property
    def fitted(self) -> FittedRegMix:
        history = self.history
        target = history.at_fidelity(self.space.target_fidelity) if self.space.pool is None else history
        return fit_checked(self.config, target.X, target.y, target.per_metric() if self.config.per_metric else None)

    def _weak(self) -> bool:
        return weak_model_reason(self.fitted.quality) is not None

    def _candidates(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
        """Up to n mixtures [<= n, D] to score, and whether a trust region bounds them: in a
        proxy search, those within `trust_radius` of one of the `TRUST_CENTRES` best runs; in a
        table search (or with no radius), the prior's draws."""
        if not self.config.trust_radius or self.space.pool is not None:
            return self.space.candidates(n, rng), False
        measured = self.history.at_fidelity(self.space.target_fidelity)
        best = np.argsort(measured.y)[:TRUST_CENTRES]
        return trust_region_candidates(self.space, measured.X[best], measured.y[best], n, rng,
                                       self.config.trust_radius), True

    def propose(self, n: int, rng: np.random.Generator) -> list[Proposal]:
        history, n_initial = self.history, self.backend.n_initial()
        exploring = self.space.pool is None and len(history) >= n_initial and self._weak()
        if len(history) < n_initial or exploring:
            return initial_design(self.space, history, n, rng, self.backend.design_size(), self.config.seed)
        model = self.fitted.model
        if self.space.pool is not None:
            return pool_proposals(self.space, history, n, by_prediction(model))
        candidates, _ = self._candidates(max(self.config.n_candidates // 10, 10 * n), rng)
        best = candidates[np.argsort(model.predict_first(candidates))[: self.config.screen_top]]
        mean, _ = model.predict(best)
        return [Proposal(to_mixture(self.space.domains, x), self.space.target_fidelity)
                for x in best[np.argsort(mean)[:n]]]

    def recommend(self) -> Recommendation:
        fitted = self.fitted
        rng = np.random.default_rng(self.config.seed)
        candidates, bounded = self._candidates(self.config.n_candidates, rng)
        screened = candidates[np.argsort(fitted.model.predict_first(candidates))[: self.config.screen_top]]
        mean, _ = fitted.model.predict(screened)
        top = screened[np.argsort(mean)[: self.config.top_k]]
        choice = top.mean(axis=0)
        predicted, std = self.predict(choice[None, :])
        evidence = {"runs": len(self.history), "regressor": fitted.model.regressor.value, "top_k": len(top),
                    "candidates": len(candidates)}
        if isinstance(fitted.model, MetricModels):
            evidence["models"] = fitted.model.combination.metrics
        if bounded:
            evidence["trust_radius"] = self.config.trust_radius
        return Recommendation(to_mixture(self.space.domains, choice), float(predicted[0]), float(std[0]), evidence)

    def quality(self) -> FitQuality:
        return self.fitted.quality

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, spread = self.fitted.model.predict(X)
        return mean, calibrated_std(spread, self.fitted.quality)
