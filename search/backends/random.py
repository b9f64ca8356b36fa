"""`random`: Dirichlet samples around the prior (the data plane's sampler); the baseline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from search.backends.base import (FidelityUse, OneCallShorthands, Proposal, Recommendation, at_random,
                                  pool_proposals, to_mixture)
from search.backends.regmix import RegMixBackend, RegMixConfig
from search.history import History
from search.quality import FitQuality
from search.space import SearchSpace


@dataclass
class RandomConfig:
    """No options: every proposal is an independent draw."""


class RandomBackend(OneCallShorthands):
    name: ClassVar[str] = "random"
    fidelities: ClassVar[FidelityUse] = FidelityUse.target
    worst_case: ClassVar[str] = "ignores the target's form: draws from the prior"

    def __init__(self, config: RandomConfig, space: SearchSpace):
        self.config, self.space = config, space

    def fit(self, history: History) -> "RandomFit":
        return RandomFit(self.space, history)


class RandomFit:
    """Random search has no model of its own: it proposes prior draws and answers its best
    run; RegMix's default regressor answers predictions and quality."""

    def __init__(self, space: SearchSpace, history: History):
        self.space, self.history = space, history
        self.regmix = RegMixBackend(RegMixConfig(), space).fit(history)

    def propose(self, n: int, rng: np.random.Generator) -> list[Proposal]:
        if self.space.pool is not None:
            return pool_proposals(self.space, self.history, n, at_random(rng))
        return [Proposal(to_mixture(self.space.domains, x), self.space.target_fidelity)
                for x in self.space.candidates(n, rng)[:n]]

    def recommend(self) -> Recommendation:
        """The best run observed."""
        history = self.history
        best = int(np.argmin(history.y))
        return Recommendation(to_mixture(history.domains, history.X[best]), None, None,
                              {"runs": len(history), "best_run": history.run_ids[best],
                               "best_observed": float(history.y[best])})

    def quality(self) -> FitQuality:
        return self.regmix.quality()

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.regmix.predict(X)
