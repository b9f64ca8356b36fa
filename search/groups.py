"""Groups: fixed sub-mixtures a search treats as one domain each ("virtual domains").

A reuse search (`search start --reuse`) keeps the domains that did not change since an
earlier search at that search's ratios, as one group, and searches only the group's total
weight beside the changed and added domains. The search's coordinates are its ungrouped
domains and its groups; its runs, answers and predictions are in those coordinates (a run's
mixture names the group), and a mixture becomes leaf weights only where something is
trained or exported (`expand`): a leaf's weight is its group's weight times its share, so
the loader's exact-blend guarantee holds at the leaves.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mixer.errors import MixerError

Groups = dict[str, dict[str, float]]   # group name -> {leaf domain: share}, shares summing to 1


def checked(groups: Mapping[str, Mapping[str, float]], leaves: list[str]) -> Groups:
    """The groups with shares as floats summing to 1, each leaf a domain of the search in one
    group at most, and no group named as a domain; a one-line error otherwise."""
    out: Groups = {}
    seen: set[str] = set()
    for name, shares in groups.items():
        if name in leaves:
            raise MixerError(f"group '{name}' has the name of a domain of the search")
        unknown = [leaf for leaf in shares if leaf not in leaves]
        if unknown:
            raise MixerError(f"group '{name}' holds {', '.join(unknown)}, not a domain of the search")
        twice = seen & set(shares)
        if twice:
            raise MixerError(f"domain {sorted(twice)[0]} is in two groups")
        seen |= set(shares)
        total = float(sum(shares.values()))
        if not shares or total <= 0 or min(shares.values()) < 0:
            raise MixerError(f"group '{name}' needs non-negative shares with a positive sum")
        out[name] = {leaf: float(w) / total for leaf, w in shares.items()}
    return out


def coordinates(leaves: list[str], groups: Groups) -> list[str]:
    """The search's coordinates: its ungrouped domains (in order), then its groups."""
    grouped = {leaf for shares in groups.values() for leaf in shares}
    return [leaf for leaf in leaves if leaf not in grouped] + list(groups)


def totals(leaves: list[str], values: np.ndarray, groups: Groups) -> np.ndarray:
    """Per-leaf values [L] (token counts) summed into coordinates [C]."""
    by_leaf = dict(zip(leaves, values))
    return np.array([sum(by_leaf[leaf] for leaf in groups[c]) if c in groups else by_leaf[c]
                     for c in coordinates(leaves, groups)], dtype=np.float64)


def group_caps(leaves: list[str], caps: np.ndarray, groups: Groups) -> np.ndarray:
    """Per-leaf weight caps [L] as caps on the coordinates [C]: a group's weight w puts
    w * share on each leaf, so it may reach min(cap / share) over its leaves."""
    by_leaf = dict(zip(leaves, caps))
    return np.array([min(by_leaf[leaf] / share for leaf, share in groups[c].items() if share > 0)
                     if c in groups else by_leaf[c] for c in coordinates(leaves, groups)], dtype=np.float64)


def expand(mixture: Mapping[str, float], groups: Groups) -> dict[str, float]:
    """A mixture over coordinates as leaf weights (a group's weight times each share)."""
    leaves: dict[str, float] = {}
    for name, weight in mixture.items():
        for leaf, share in (groups[name].items() if name in groups else [(name, 1.0)]):
            leaves[leaf] = leaves.get(leaf, 0.0) + float(weight) * share
    return leaves


def refuse_grouped(named: list[str], groups: Groups) -> None:
    """--min/--max/--fix name a search's coordinates: a domain inside a group has its share fixed."""
    for name in named:
        holder = next((g for g, shares in groups.items() if name in shares), None)
        if holder is not None:
            raise MixerError(f"domain {name} is inside group '{holder}' at a fixed share; bound '{holder}' instead")
