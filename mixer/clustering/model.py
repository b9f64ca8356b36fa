"""CLIMB's clustering, fitted on a sample of embeddings and applied to any number of them.

fit:    k-means with several times more initial clusters -> prune the ones with fewer than
        `min_cluster_docs` sample documents (their documents go to the nearest kept
        centroid) -> merge the kept centroids (Ward agglomeration) down to `clusters`.
assign: nearest kept initial centroid -> the final cluster it was merged into.

Assigning through the kept initial centroids (not the merged means) is what CLIMB does: a
final cluster keeps the shape of the many small clusters it is made of.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mixer.errors import MixerError


@dataclass
class ClusterConfig:
    clusters: int = 16                   # final clusters: the domains
    initial_clusters: int | None = None  # k-means clusters before pruning and merging (None: 8 x clusters)
    min_cluster_docs: int = 8            # initial clusters with fewer sample documents are pruned
    sample: int = 50_000                 # documents the clustering is fitted on (a uniform sample)
    seed: int = 0

    def __post_init__(self):
        if self.clusters < 2:
            raise MixerError(f"--clusters must be at least 2, got {self.clusters}")
        if self.initial_clusters is not None and self.initial_clusters < self.clusters:
            raise MixerError(f"--clusters {self.clusters} is more than --initial-clusters {self.initial_clusters}")
        if self.min_cluster_docs < 1:
            raise MixerError(f"--min-cluster-docs must be at least 1, got {self.min_cluster_docs}")
        if self.sample < 2 * self.clusters:
            raise MixerError(f"--sample {self.sample} is too small for {self.clusters} clusters "
                             f"(at least {2 * self.clusters})")

    @property
    def requested_initial_clusters(self) -> int:
        """`initial_clusters`, by default 8 per final cluster: on the built-in domains (4
        seeds) 2x gave ARI 0.33, 4x 0.43, 8x 0.58 and 15x 0.51; more initial clusters than
        that split the large domains before the merge can join them."""
        return self.initial_clusters or 8 * self.clusters

    def effective_initial_clusters(self, n_sample: int) -> int:
        """As many initial clusters as the sample fills: on average 4 x min_cluster_docs
        documents each, never fewer than the final clusters."""
        return max(self.clusters, min(self.requested_initial_clusters, n_sample // (4 * self.min_cluster_docs)))


@dataclass
class ClusterModel:
    """centroids: float32 [kept, dim] (the kept initial centroids, unit-normalised space);
    merged: int [kept] -> final cluster of each kept centroid, 0..clusters-1."""

    centroids: np.ndarray
    merged: np.ndarray
    kept_ids: np.ndarray       # the initial k-means cluster each kept centroid was
    n_initial: int

    @property
    def n_clusters(self) -> int:
        return int(self.merged.max()) + 1

    def assign(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x [n, dim] -> (final cluster [n] int, distance to the nearest kept centroid [n])."""
        from sklearn.metrics import pairwise_distances_argmin_min

        nearest, distance = pairwise_distances_argmin_min(x, self.centroids)
        return self.merged[nearest], distance.astype(np.float32)

    def final_centroids(self) -> np.ndarray:
        """[clusters, dim]: each final cluster's mean of the kept centroids merged into it."""
        out = np.zeros((self.n_clusters, self.centroids.shape[1]), dtype=np.float64)
        np.add.at(out, self.merged, self.centroids)
        return (out / np.bincount(self.merged, minlength=self.n_clusters)[:, None]).astype(np.float32)

    def parents(self) -> list[list[int]]:
        """The initial clusters each final cluster was merged from."""
        return [sorted(int(i) for i in self.kept_ids[self.merged == c]) for c in range(self.n_clusters)]


def fit_clusters(x: np.ndarray, cfg: ClusterConfig) -> ClusterModel:
    """Fit on the sample's embeddings x [n, dim] (module docstring)."""
    from sklearn.cluster import AgglomerativeClustering, KMeans

    n = len(x)
    if n < 2 * cfg.clusters:
        raise MixerError(f"{n} documents are too few for {cfg.clusters} clusters (each domain needs at least 2 "
                         "documents: one is held out)")
    distinct = len(np.unique(x, axis=0))
    if distinct < cfg.clusters:
        raise MixerError(f"the documents have {distinct} distinct embeddings, fewer than --clusters {cfg.clusters}")
    k0 = min(cfg.effective_initial_clusters(n), distinct)
    kmeans = KMeans(n_clusters=k0, n_init=1, max_iter=100, random_state=cfg.seed).fit(x)
    sizes = np.bincount(kmeans.labels_, minlength=k0)
    by_size = np.argsort(-sizes, kind="stable")
    kept = np.sort(np.union1d(np.flatnonzero(sizes >= cfg.min_cluster_docs), by_size[:cfg.clusters]))
    centroids = kmeans.cluster_centers_[kept].astype(np.float32)
    if len(kept) == cfg.clusters:
        merged = np.arange(cfg.clusters)
    else:
        merged = AgglomerativeClustering(n_clusters=cfg.clusters, linkage="ward").fit(centroids).labels_
    return ClusterModel(centroids=centroids, merged=np.asarray(merged, dtype=np.int64), kept_ids=kept, n_initial=k0)
