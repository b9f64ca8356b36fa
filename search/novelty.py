"""No wasted runs: a proposal closer than `MIN_DISTANCE` (L1) to a run already finished,
queued or running at the same fidelity, or to an earlier proposal of the same batch, is
dropped. Two runs of one search on (nearly) the same mixture teach a model nothing the
first did not (each run has its own seed, so seed noise is measured by replicates, on
purpose, not by accident). Pool mode (a table) is exempt: its entries are distinct runs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from search.backends import Proposal
from search.backends.base import MIN_DISTANCE, nearest_distance
from search.runs import optional_label, weight_matrix


def novel_proposals(proposals: list[Proposal], runs: pd.DataFrame, domains: list[str],
                    default_fidelity: str | None = None, min_distance: float = MIN_DISTANCE) -> list[Proposal]:
    """The proposals that are at least `min_distance` from every live run and each other
    (a proposal without a fidelity runs at `default_fidelity`)."""
    live = runs[runs.status.isin(["done", "queued", "running"])]
    taken: dict[str | None, list[np.ndarray]] = {}
    for x, fidelity in zip(weight_matrix(live.mixture, domains), live.fidelity):
        taken.setdefault(optional_label(fidelity), []).append(x)
    kept = []
    for p in proposals:
        x = p.mixture.vector(domains)
        same_fidelity = taken.setdefault(p.fidelity or default_fidelity, [])
        if nearest_distance(x[None, :], same_fidelity)[0] < min_distance:
            continue
        same_fidelity.append(x)
        kept.append(p)
    return kept
