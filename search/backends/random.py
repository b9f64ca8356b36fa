"""`random`: Dirichlet samples around the prior (the data plane's sampler); the baseline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from search.backends.base import Proposal, Recommendation, pool_proposals, to_mixture, unused_pool
from search.backends.regmix import RegMixBackend, RegMixConfig
from search.history import History
from search.quality import FitQuality
from search.space import SearchSpace


@dataclass
class RandomConfig:
    """No options: every proposal is an independent draw."""


class RandomBackend:
    name: ClassVar[str] = "random"
    multi_fidelity: ClassVar[bool] = False

    def __init__(self, config: RandomConfig, space: SearchSpace):
        self.config, self.space = config, space

    def propose(self, history: History, n: int, rng: np.random.Generator) -> list[Proposal]:
        if self.space.pool is not None:
            return pool_proposals(self.space, history, rng.permutation(len(unused_pool(self.space, history))), n)
        return [Proposal(to_mixture(self.space.domains, x), self.space.target_fidelity)
                for x in self.space.candidates(n, rng)[:n]]

    def recommend(self, history: History) -> Recommendation:
        """The best run observed (random search has no model)."""
        best = int(np.argmin(history.y))
        return Recommendation(to_mixture(history.domains, history.X[best]), None, None,
                              {"runs": len(history), "best_run": history.run_ids[best],
                               "best_observed": float(history.y[best])})

    def quality(self, history: History) -> FitQuality:
        return self._model().quality(history)

    def predict(self, history: History, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._model().predict(history, X)

    def _model(self) -> RegMixBackend:
        """Random search has no model of its own: RegMix's default regressor answers."""
        return RegMixBackend(RegMixConfig(), self.space)
