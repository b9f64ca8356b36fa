"""`regmix`: regression from mixture to target, as RegMix (Liu et al., 2025).

Fit: an ensemble of `n_models` LightGBM regressors (different seeds, row and column
subsampling), or a linear regression. The ensemble's spread is the uncertainty. With the
default `auto` regressor a search that has fewer runs than `lightgbm_from` (2 x domains)
fits bootstrapped Bayesian ridge regressions on the weights and their squares instead:
trees cannot learn from a handful of points, a linear model can (RegMix's own linear fit
ranks at Spearman ~90), and the squares let it place an optimum inside the simplex.
Simulate: `n_candidates` mixtures from the prior's Dirichlet sampler (1e6 by default). The
first ensemble member screens all of them (a few seconds for 1e6 on 2 cores), the whole
ensemble re-scores the best `screen_top`, and the recommendation is the mean of the
`top_k` best (RegMix averages its top 100).

Measured on RegMix's published 1M tables (benchmarks/regression.py): the defaults reach
Spearman 99.3 on the 1M test runs and 98.7 on the 60M runs, against RegMix's 98.45 and
98.64; a single default LightGBM model reaches 99.0 / 98.6.

Propose: the first `n_initial` runs (default max(4, domains / 4)) come from the prior;
then each batch is the best predicted candidates not yet run (in pool mode, the best
predicted unused pool entries), which is RegMix's recommendation made sequential. On
RegMix's 512-run pool (benchmarks/search.py) this finds a top-1% run in a median of 5 runs,
against 64 for random search.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

import numpy as np

from mixer.errors import MixerError
from search.backends.base import Proposal, Recommendation, pool_proposals, to_mixture, unused_pool
from search.history import History
from search.space import SearchSpace


class Regressor(str, Enum):
    auto = "auto"          # ridge on few runs, LightGBM from `lightgbm_from` runs on
    lightgbm = "lightgbm"
    linear = "linear"


@dataclass
class RegMixConfig:
    regressor: Regressor = Regressor.auto
    lightgbm_from: int = 0         # auto: switch to LightGBM at this many runs (0: 2 x domains)
    n_models: int = 5
    n_estimators: int = 200
    learning_rate: float = 0.05
    num_leaves: int = 15
    n_candidates: int = 1_000_000
    screen_top: int = 2_000
    top_k: int = 100
    n_initial: int = 0             # 0: max(4, domains / 4) random runs before the first fit
    seed: int = 0

    def __post_init__(self):
        self.regressor = Regressor(self.regressor)
        if self.top_k < 1 or self.n_models < 1 or self.n_candidates < self.top_k:
            raise MixerError("regmix needs top_k >= 1, n_models >= 1 and n_candidates >= top_k")


def _with_squares(X: np.ndarray) -> np.ndarray:
    """[w, w^2]: lets a linear model place an optimum inside the simplex."""
    return np.hstack([X, X * X])


class RegMixModel:
    """fit(X [n, D], y [n]) then predict(X [m, D]) -> (mean [m], std [m])."""

    def __init__(self, cfg: RegMixConfig):
        self.cfg = cfg
        self.models: list = []

    def fit(self, X: np.ndarray, y: np.ndarray) -> "RegMixModel":
        if len(y) < 3:
            raise MixerError(f"regmix needs at least 3 finished runs to fit, has {len(y)}")
        regressor = self.cfg.regressor
        if regressor is Regressor.auto:
            switch = self.cfg.lightgbm_from or 2 * X.shape[1]
            regressor = Regressor.lightgbm if len(y) >= switch else None
        if regressor is Regressor.linear:
            from sklearn.linear_model import LinearRegression

            self.models = [LinearRegression().fit(X, y)]
            return self
        if regressor is None:  # few runs: a Bayesian ridge on weights and their squares, bootstrapped
            from sklearn.linear_model import BayesianRidge
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import FunctionTransformer

            rng = np.random.default_rng(self.cfg.seed)
            samples = [np.arange(len(y))] + [rng.integers(0, len(y), len(y)) for _ in range(self.cfg.n_models - 1)]
            self.models = [make_pipeline(FunctionTransformer(_with_squares), BayesianRidge()).fit(X[i], y[i])
                           for i in samples]
            return self
        import lightgbm as lgb

        self.models = [lgb.LGBMRegressor(
            n_estimators=self.cfg.n_estimators, learning_rate=self.cfg.learning_rate,
            num_leaves=self.cfg.num_leaves, min_child_samples=min(5, max(1, len(y) // 4)),
            subsample=0.8, subsample_freq=1, colsample_bytree=0.8, random_state=self.cfg.seed + i,
            verbosity=-1, n_jobs=-1).fit(X, y) for i in range(self.cfg.n_models)]
        return self

    def predict_first(self, X: np.ndarray) -> np.ndarray:
        return self.models[0].predict(X)

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        preds = np.stack([m.predict(X) for m in self.models])
        return preds.mean(axis=0), preds.std(axis=0)


def cross_validated_spearman(cfg: RegMixConfig, X: np.ndarray, y: np.ndarray, folds: int = 5) -> float | None:
    """Spearman of out-of-fold predictions (fit quality reported with a recommendation)."""
    from scipy.stats import spearmanr

    if len(y) < 2 * folds:
        return None
    order = np.random.default_rng(0).permutation(len(y))
    out = np.empty(len(y))
    for f in range(folds):
        test = order[f::folds]
        train = np.setdiff1d(order, test)
        out[test] = RegMixModel(RegMixConfig(**{**cfg.__dict__, "n_models": 1})).fit(X[train], y[train]).predict(X[test])[0]
    return float(spearmanr(out, y)[0])


class RegMixBackend:
    name: ClassVar[str] = "regmix"
    multi_fidelity: ClassVar[bool] = False

    def __init__(self, config: RegMixConfig, space: SearchSpace):
        self.config, self.space = config, space

    def _n_initial(self) -> int:
        return self.config.n_initial or max(4, len(self.space.domains) // 4)

    def _fit(self, history: History) -> RegMixModel:
        target = history.at_fidelity(self.space.target_fidelity) if self.space.pool is None else history
        return RegMixModel(self.config).fit(target.X, target.y)

    def propose(self, history: History, n: int, rng: np.random.Generator) -> list[Proposal]:
        if len(history) < self._n_initial():
            from search.backends.random import RandomBackend, RandomConfig

            return RandomBackend(RandomConfig(), self.space).propose(history, n, rng)
        model = self._fit(history)
        if self.space.pool is not None:
            available = unused_pool(self.space, history)
            scores = model.predict(self.space.pool.X[available])[0]
            return pool_proposals(self.space, history, np.argsort(scores), n)
        candidates = self.space.candidates(max(self.config.n_candidates // 10, 10 * n), rng)
        best = candidates[np.argsort(model.predict_first(candidates))[: self.config.screen_top]]
        mean, _ = model.predict(best)
        return [Proposal(to_mixture(self.space.domains, x), self.space.target_fidelity)
                for x in best[np.argsort(mean)[:n]]]

    def recommend(self, history: History) -> Recommendation:
        model = self._fit(history)
        rng = np.random.default_rng(self.config.seed)
        candidates = self.space.candidates(self.config.n_candidates, rng)
        screened = candidates[np.argsort(model.predict_first(candidates))[: self.config.screen_top]]
        mean, _ = model.predict(screened)
        top = screened[np.argsort(mean)[: self.config.top_k]]
        choice = top.mean(axis=0)
        predicted, std = model.predict(choice[None, :])
        evidence = {"runs": len(history), "regressor": self.config.regressor.value, "top_k": len(top),
                    "candidates": len(candidates),
                    "cv_spearman": cross_validated_spearman(self.config, history.X, history.y)}
        return Recommendation(to_mixture(self.space.domains, choice), float(predicted[0]), float(std[0]), evidence)

    def predict(self, history: History, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._fit(history).predict(X)
