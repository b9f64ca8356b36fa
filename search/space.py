"""The search space a backend proposes in: domains, the prior, the sampler and, in pool
mode, the finite set of (mixture, fidelity) entries that may be chosen."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from mixer.sampling import SamplerConfig, draw_within_caps
from search.fidelity import Fidelities


@dataclass
class Pool:
    """keys: table run ids; X: float [P, D]; fidelity: label of each entry."""

    keys: list[str]
    X: np.ndarray
    fidelity: list[str | None]

    def available(self, used: set[str]) -> np.ndarray:
        return np.array([i for i, k in enumerate(self.keys) if k not in used], dtype=np.int64)


@dataclass
class SearchSpace:
    domains: list[str]
    prior: np.ndarray                       # [D] centre of the candidate distribution
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    pool: Pool | None = None
    fidelity: Fidelities = field(default_factory=lambda: Fidelities.single(None))
    caps: np.ndarray | None = None          # [D] largest weight per domain (repetition caps)
    seed: int = 0                           # the search's seed (what fixed designs derive from)
    budget_runs: int | None = None          # the search's run budget (backends that plan rounds over it)
    baselines: dict[str, np.ndarray] = field(default_factory=dict)  # name -> [D]: what the answer is
                                            # compared with (uniform, token-share); designs start with them

    @property
    def target_fidelity(self) -> str | None:
        return self.fidelity.target

    def candidates(self, n: int, rng: np.random.Generator, centre: np.ndarray | None = None,
                   strength: tuple[float, float] | None = None) -> np.ndarray:
        """n mixtures [n, D] within the caps (drawn until there are n): around the prior, or
        around `centre` [D], with Dirichlet concentration D x s, s log-uniform in `strength`."""
        prior = self.prior if centre is None else centre
        sampler = self.sampler if strength is None else replace(self.sampler, min_strength=strength[0],
                                                                  max_strength=strength[1])
        return draw_within_caps(prior, n, rng, sampler, self.caps)
