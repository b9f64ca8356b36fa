"""The search space a backend proposes in: domains, the prior, the sampler and, in pool
mode, the finite set of (mixture, fidelity) entries that may be chosen."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from mixer.bounds import WeightBounds
from mixer.sampling import SamplerConfig, draw_within_bounds
from search.fidelity import Fidelities


@dataclass
class Pool:
    """keys: table run ids; X: float [P, D]; fidelity: label of each entry."""

    keys: list[str]
    X: np.ndarray
    fidelity: list[str | None]


@dataclass
class SearchSpace:
    domains: list[str]
    prior: np.ndarray                       # [D] centre of the candidate distribution
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    pool: Pool | None = None
    fidelity: Fidelities = field(default_factory=lambda: Fidelities.single(None))
    bounds: WeightBounds | None = None      # weight bounds: repetition caps, --min/--max/--fix (None: the simplex)
    seed: int = 0                           # the search's seed (what fixed designs derive from)
    budget_runs: int | None = None          # the search's run budget (backends that plan rounds over it)
    baselines: dict[str, np.ndarray] = field(default_factory=dict)  # name -> [D]: what the answer is
                                            # compared with (uniform, token-share); designs start with them

    @property
    def target_fidelity(self) -> str | None:
        return self.fidelity.target

    def within(self, X: np.ndarray) -> np.ndarray:
        """bool [n]: which mixtures of X [n, D] respect the space's weight bounds."""
        X = np.atleast_2d(X)
        return self.bounds.contains(X) if self.bounds is not None else np.ones(len(X), dtype=bool)

    def onto_bounds(self, X: np.ndarray) -> np.ndarray:
        """X [n, D] projected onto the weight bounds (unchanged where it respects them)."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if self.bounds is None:
            return X
        return np.where(self.within(X)[:, None], X, self.bounds.project(X))

    def candidates(self, n: int, rng: np.random.Generator, centre: np.ndarray | None = None,
                   strength: tuple[float, float] | None = None) -> np.ndarray:
        """n mixtures [n, D] within the weight bounds: around the prior, or around `centre`
        [D], with Dirichlet concentration D x s, s log-uniform in `strength`."""
        prior = self.prior if centre is None else centre
        sampler = self.sampler if strength is None else replace(self.sampler, min_strength=strength[0],
                                                                  max_strength=strength[1])
        return draw_within_bounds(prior, n, rng, sampler, self.bounds)
