"""The backend interface: propose the next runs, recommend a mixture.

Backends are rebuilt from the search's stored config every time they are used and see
only the History, so a search resumes anywhere and runs of one search can warm-start
another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import numpy as np

from mixer.mixture import Mixture
from search.history import History
from search.space import SearchSpace


@dataclass
class Proposal:
    mixture: Mixture
    fidelity: str | None = None
    pool_key: str | None = None     # the table entry to evaluate (pool mode)


@dataclass
class Recommendation:
    mixture: Mixture
    predicted: float | None          # target in the user's orientation
    predicted_std: float | None
    evidence: dict = field(default_factory=dict)


class Backend(Protocol):
    name: ClassVar[str]
    multi_fidelity: ClassVar[bool]    # proposes runs at several fidelities (else the target only)

    def propose(self, history: History, n: int, rng: np.random.Generator) -> list[Proposal]: ...

    def recommend(self, history: History) -> Recommendation: ...

    def predict(self, history: History, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std [m] of the target (minimise orientation) at mixtures X [m, D]."""
        ...


def to_mixture(domains: list[str], x: np.ndarray) -> Mixture:
    return Mixture.normalized(dict(zip(domains, np.maximum(x, 0.0))))


def pool_proposals(space: SearchSpace, history: History, order: np.ndarray, n: int) -> list[Proposal]:
    """The first n unused pool entries in `order` (indices into the available entries)."""
    used = set(k for k in history.pool_keys if k) | set(k for k in history.pending_keys if k)
    available = space.pool.available(used)
    chosen = available[order[:n]] if len(order) else available[:0]
    return [Proposal(to_mixture(space.domains, space.pool.X[i]), space.pool.fidelity[i], space.pool.keys[i])
            for i in chosen]


def unused_pool(space: SearchSpace, history: History) -> np.ndarray:
    used = set(k for k in history.pool_keys if k) | set(k for k in history.pending_keys if k)
    return space.pool.available(used)
