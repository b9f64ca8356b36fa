"""Do a search's cheap fidelities predict its target? Learned from the runs, every round.

The multi-fidelity GP (`search.gp`) assumes that cheaper runs are smoothly informative about
the target. When they mislead (a small model or a short budget ranks mixtures unlike the
target does), a search that trusts them spends most of its budget on them and recommends
what they like. So `bayesopt` measures it: every target-fidelity run is shadowed by a run of
the same mixture at each cheap fidelity (a tenth of its cost at 1:10), and a cheap fidelity
informs the model while its Spearman correlation with the target over these pairs is at
least `MIN_RANK_CORRELATION`. Before `MIN_PAIRS` pairs there is no evidence against it. A
fidelity that fails is dropped from the model, the acquisition, the proposals and the
shadow runs: it is not bought again in this search. With every cheap fidelity dropped, the
search is single-fidelity BO at the target.

Why pairs and not the multi-fidelity GP's own estimate: its linear-truncated kernel has no
parameter for "uninformative", and an ICM kernel (BoTorch's `MultiTaskGP`) took the whole
20 s fit limit at 34 runs here with its correlation still near its prior.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import spearmanr

from search.history import same_mixture

MIN_PAIRS = 4
MIN_RANK_CORRELATION = 0.5


@dataclass
class FidelityGate:
    """per fidelity label: its Spearman correlation with the target over paired runs (None
    before MIN_PAIRS), the pairs, and whether it informs the model."""

    correlation: dict[str, float | None] = field(default_factory=dict)
    pairs: dict[str, int] = field(default_factory=dict)
    used: dict[str, bool] = field(default_factory=dict)

    def kept(self, labels: list[str | None], target: str | None) -> list[str | None]:
        """The labels the model uses: the target and every cheap fidelity that passes."""
        return [label for label in labels if label == target or self.used.get(str(label), True)]

    def evidence(self) -> dict:
        return {"rank_correlation_with_target": self.correlation, "pairs": self.pairs, "used": self.used}


def paired(X: np.ndarray, y: np.ndarray, fidelity: list[str | None], label: str | None, target: str | None
           ) -> tuple[np.ndarray, np.ndarray]:
    """(values at `label`, values at the target) [k] of the mixtures run at both."""
    cheap_rows = np.array([i for i, f in enumerate(fidelity) if f == label], dtype=np.int64)
    pairs = []
    for t in (i for i, f in enumerate(fidelity) if f == target):
        match = cheap_rows[same_mixture(X[cheap_rows], X[t])]
        if len(match):
            pairs.append((y[match[0]], y[t]))
    values = np.asarray(pairs, dtype=np.float64).reshape(-1, 2)
    return values[:, 0], values[:, 1]


def check_fidelities(X: np.ndarray, y: np.ndarray, fidelity: list[str | None], labels: list[str | None],
                     target: str | None) -> FidelityGate:
    """The gate for runs X [n, D], y [n] at `fidelity` [n] of a search over `labels`."""
    gate = FidelityGate()
    for label in labels:
        if label == target:
            continue
        cheap, at_target = paired(X, y, fidelity, label, target)
        enough = len(cheap) >= MIN_PAIRS and np.ptp(cheap) > 0 and np.ptp(at_target) > 0
        r = float(spearmanr(cheap, at_target)[0]) if enough else None
        gate.correlation[str(label)], gate.pairs[str(label)] = r, len(cheap)
        gate.used[str(label)] = r is None or r >= MIN_RANK_CORRELATION
    return gate
