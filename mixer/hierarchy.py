"""Domains within domains: a domain's name is its path (`web/news` lies under `web`).

A parent is any proper prefix of a domain's path (`web` for `web/news`); `corpus cluster
web ...` writes `web/00`, `web/01`, ... under `web`. A parent is a name, never a domain with
documents (`refuse_tree_clash`), so every domain is a leaf and a parent's weight is its
leaves'. A nested mixture (a parent's weight, and each child's share within its parent)
flattens to leaf weights, each the product of the shares along its path, so the loader's
exact-blend guarantee holds at the leaves. A parent cannot be its own descendant (names are
paths), so cycles cannot be written down.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mixer.errors import MixerError

SEPARATOR = "/"
SHARE_TOLERANCE = 1e-6


def depth(name: str) -> int:
    """0 for a top-level name, 1 for `web/news`, ..."""
    return name.count(SEPARATOR)


def lies_under(name: str, node: str) -> bool:
    """Whether `name` is a strict descendant of `node`."""
    return name.startswith(node + SEPARATOR)


def ancestor_at(name: str, level: int) -> str:
    """The node at depth `level` on `name`'s path (`name` itself when it is shallower)."""
    return SEPARATOR.join(name.split(SEPARATOR)[:level + 1])


def leaves(names: Iterable[str]) -> list[str]:
    """The names no other name lies under, in the order given."""
    names = list(names)
    return [n for n in names if not any(lies_under(m, n) for m in names)]


def refuse_tree_clash(new: Iterable[str], existing: Iterable[str]) -> None:
    """A parent is a name, never a domain with documents of its own: one line when a new
    domain would lie under an existing one, or an existing one under it (its documents
    would be neither a leaf's nor its children's)."""
    new = list(new)
    existing = [e for e in existing if e not in set(new)]
    for name in new:
        for other in existing:
            if lies_under(name, other):
                raise MixerError(f"domain '{other}' holds documents, so '{name}' cannot lie under it: a parent is a "
                                 f"name, not a domain (remove '{other}' and add its documents as '{other}/main')")
            if lies_under(other, name):
                raise MixerError(f"'{name}' is the parent of domain '{other}', and a parent is a name, not a domain: "
                                 f"add these documents as a leaf of their own (e.g. '{name}/main')")


def nodes_at_level(names: Iterable[str], level: int) -> dict[str, list[str]]:
    """The leaves among `names` grouped by their node at depth `level` (a leaf shallower
    than `level` is its own node), nodes in order of first appearance."""
    if level < 0:
        raise MixerError(f"--level must be 0 or more, got {level}")
    names = list(names)
    deepest = max((depth(n) for n in names), default=0)
    if level > deepest:
        raise MixerError(f"no domains at level {level}: the deepest of the search's domains is at level {deepest}")
    nodes: dict[str, list[str]] = {}
    for leaf in leaves(names):
        nodes.setdefault(ancestor_at(leaf, level), []).append(leaf)
    return nodes


def flatten(shares: Mapping[str, float]) -> dict[str, float]:
    """A nested mixture as leaf weights. `shares` maps each node to its weight within its
    parent (the nearest ancestor it names; the top nodes' weights sum to 1, as do each
    parent's children's); a leaf's weight is the product along its path. A mapping without
    parents is returned as it is. A parent whose children's shares do not sum to 1 is
    refused: a mixture names leaves, or nests shares under parents, not a mix of both.

        {"web": 0.6, "web/news": 0.5, "web/blogs": 0.5, "code": 0.4}
        -> {"web/news": 0.3, "web/blogs": 0.3, "code": 0.4}
    """
    names = list(shares)
    leaf_names = leaves(names)
    if leaf_names == names:
        return dict(shares)
    for name, value in shares.items():
        if not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
            raise MixerError(f"share of '{name}' in a nested mixture is not a finite non-negative number: {value!r}")
    parent_of = {n: max((p for p in names if lies_under(n, p)), key=len, default=None) for n in names}
    for parent in [p for p in names if p not in leaf_names]:
        total = sum(float(shares[n]) for n in names if parent_of[n] == parent)
        if abs(total - 1.0) > SHARE_TOLERANCE:
            raise MixerError(f"the shares under '{parent}' sum to {total:.6g}, not 1: a nested mixture gives each "
                             f"parent's children shares of it (or name leaves only, without '{parent}')")
    flat: dict[str, float] = {}
    for leaf in leaf_names:
        weight, node = float(shares[leaf]), parent_of[leaf]
        while node is not None:
            weight *= float(shares[node])
            node = parent_of[node]
        flat[leaf] = weight
    return flat
