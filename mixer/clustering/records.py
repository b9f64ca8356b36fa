"""What a clustering of an unlabeled corpus is, as `mixer corpus cluster` makes it and the
store keeps it (store.writes.write_clustering): plain data, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ClusterRecord:
    """One final cluster of a clustering: the domain it became and what it holds."""

    cluster: int
    domain: str
    n_docs: int
    n_tokens: int
    centroid_norm: float
    top_terms: list[str] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)   # the initial k-means clusters merged into it


@dataclass
class ClusteringRecord:
    """How an unlabeled corpus was cut into domains (`mixer corpus cluster`)."""

    name: str
    embedder: str
    n_docs: int
    n_sample: int
    config: dict = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    clusters: list[ClusterRecord] = field(default_factory=list)
