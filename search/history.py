"""History: a search's finished runs as arrays, the only input backends get."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from search.runs import finished_runs, weight_matrix
from search.targets import Target


SAME_MIXTURE_L1 = 1e-9  # runs of one mixture at two fidelities (a shadow and its target run)


def same_mixture(X: np.ndarray, x: np.ndarray) -> np.ndarray:
    """bool [n]: which mixtures of X [n, D] are the mixture x [D] (the same weights, not
    merely near: novelty's MIN_DISTANCE is the rule for near)."""
    return np.abs(np.asarray(X).reshape(-1, len(x)) - x).sum(axis=1) < SAME_MIXTURE_L1


@dataclass(frozen=True)
class MetricValues:
    """values [n, M] of the metrics a target combines; terms [M]: the target is
    values @ terms, or with `worst` max(values * terms) (minimise orientation)."""

    values: np.ndarray
    metrics: list[str]
    terms: np.ndarray
    worst: bool

    def combine(self, per_metric: np.ndarray) -> np.ndarray:
        return combine(per_metric, self.terms, self.worst)

    def rows(self, keep: np.ndarray) -> "MetricValues":
        return MetricValues(self.values[keep], self.metrics, self.terms, self.worst)


def combine(per_metric: np.ndarray, terms: np.ndarray, worst: bool) -> np.ndarray:
    """The target from predictions of each metric [..., M, n] -> [..., n]: the weighted sum
    by terms [M], or the largest (worst case)."""
    return per_metric.max(axis=-2) if worst else np.einsum("m,...mn->...n", terms, per_metric)


@dataclass
class History:
    """domains: names of the columns of X; X: float [n, D] mixtures; y: float [n] the target
    in minimise orientation; fidelity: label of each run; run_ids; pool_keys: the table
    entry each run evaluated (pool mode), else None; pending_keys: pool entries queued or
    running; costs: cost of one run at each fidelity label, as known now (empty: the search
    space's prior costs); metrics, values: float [n, M] each run's final value of each
    metric the target uses (NaN: not measured), raw orientation; terms: the target as a
    weighted sum of those metrics in minimise orientation, y = values @ terms (empty when
    runs carry no per-metric values, e.g. a replayed table); worst: the target is instead
    the largest of those values, y = max(values * terms)."""

    domains: list[str]
    X: np.ndarray
    y: np.ndarray
    fidelity: list[str | None] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    pool_keys: list[str | None] = field(default_factory=list)
    pending_keys: list[str | None] = field(default_factory=list)
    costs: dict[str | None, float] = field(default_factory=dict)
    metrics: list[str] = field(default_factory=list)
    values: np.ndarray | None = None
    terms: np.ndarray | None = None
    worst: bool = False

    def __len__(self) -> int:
        return len(self.y)

    @classmethod
    def empty(cls, domains: list[str]) -> "History":
        return cls(domains, np.zeros((0, len(domains))), np.zeros(0))

    @classmethod
    def from_runs(cls, domains: list[str], runs: pd.DataFrame, target: Target = Target(),
                  costs: dict[str | None, float] | None = None, averaged: list[str] | None = None) -> "History":
        """From `store.search_runs`: done runs with a target become rows, y in the
        minimise orientation (`target.loss`); `averaged`: the domains `avg` and `worst`
        cover (default: all)."""
        done = finished_runs(runs)
        X = weight_matrix(done.mixture, domains)
        y = done.target_value.to_numpy(dtype=np.float64)
        pending = runs[runs.status.isin(["queued", "running"])]
        finals = [dict(f) if isinstance(f, (dict, list)) else {} for f in done.get("final_values", [None] * len(done))]
        terms = target.terms(domains if averaged is None else averaged, finals)
        values = np.array([[f.get(m, np.nan) for m in terms] for f in finals], dtype=np.float64)
        values = values.reshape(len(finals), len(terms))
        return cls(domains, X, target.loss(y), list(done.fidelity), list(done.run_id),
                   list(done.pool_key) if "pool_key" in done else [None] * len(done),
                   list(pending.pool_key) if "pool_key" in pending else [], dict(costs or {}),
                   list(terms), values, np.array(list(terms.values()), dtype=np.float64), target.is_worst)

    def per_metric(self) -> "MetricValues | None":
        """The values a model of each metric fits, when the target combines more than one
        and every run carries them (they reproduce its target); else None. A domain's loss
        is modelled as measured (a model of a loss); any other metric in the target's
        orientation (a model of what the target minimises)."""
        if self.values is None or self.terms is None or len(self.metrics) < 2:
            return None
        combined = self.values.max(axis=1) if self.worst else self.values @ self.terms
        if not (np.isfinite(self.values).all() and np.allclose(combined, self.y, atol=1e-6)):
            return None
        sign = np.where(np.isin(self.metrics, self.domains), 1.0, np.sign(self.terms))
        return MetricValues(self.values * sign, list(self.metrics), self.terms * sign, self.worst)

    def at_fidelity(self, label: str | None) -> "History":
        return self.rows([i for i, f in enumerate(self.fidelity) if f == label])

    def rows(self, keep: list[int]) -> "History":
        """The runs at positions `keep`, in that order."""
        return History(self.domains, self.X[keep], self.y[keep], [self.fidelity[i] for i in keep],
                       [self.run_ids[i] for i in keep], [self.pool_keys[i] for i in keep], self.pending_keys,
                       self.costs, self.metrics, None if self.values is None else self.values[keep], self.terms,
                       self.worst)

    def append(self, x: np.ndarray, y: float, fidelity: str | None, run_id: str, pool_key: str | None = None
               ) -> "History":
        """A new History with one more finished run (x: float [D]); it drops per-metric values."""
        return History(self.domains, np.vstack([self.X, x]), np.append(self.y, y), self.fidelity + [fidelity],
                       self.run_ids + [run_id], self.pool_keys + [pool_key], self.pending_keys, self.costs)
