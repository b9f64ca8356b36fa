"""A search's runs as `store.search_runs` returns them (one row per run, `mixture` a dict
column): which are the search's own, which finished, and their weights as a matrix. Every
reader of runs goes through these, so each rule is written once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from store.records import RunRole

# The runs a search's model learns from and its budget counts: what its backend proposed,
# or every run of an import. Extra runs (baselines, validation, replicates, transfer
# checks) use other seeds and scales and never feed the model.
OWN_ROLES = (RunRole.search.value, RunRole.imported.value)


def own_runs(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs.role.isin(OWN_ROLES)]


def finished_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs that finished with a target value."""
    return runs[(runs.status == "done") & runs.target_value.notna()]


def domains_of(mixtures: Iterable[Mapping[str, float]]) -> list[str]:
    """Every domain any of the mixtures names, sorted."""
    return sorted({d for m in mixtures for d in m})


def weight_matrix(mixtures: Iterable[Mapping[str, float]], domains: list[str]) -> np.ndarray:
    """float [n, D]: the weights of n mixtures in the order `domains` (0 where absent)."""
    rows = [[float(dict(m).get(d, 0.0)) for d in domains] for m in mixtures]
    return np.array(rows, dtype=np.float64).reshape(-1, len(domains))


def optional_label(fidelity) -> str | None:
    """A fidelity cell as a label (None for a missing one)."""
    return None if fidelity is None or (isinstance(fidelity, float) and np.isnan(fidelity)) else str(fidelity)
