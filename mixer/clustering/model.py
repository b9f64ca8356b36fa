"""CLIMB's clustering, fitted on a sample of embeddings and applied to any number of them.

fit:    k-means with many more initial clusters -> prune the ones with fewer than
        `min_cluster_docs` sample documents (their documents go to the nearest kept
        centroid) -> merge the kept clusters down to `clusters` by the links between their
        documents in the sample's nearest-neighbour graph (`merge_by_links`).
assign: nearest kept initial centroid -> the final cluster it was merged into.

Assigning through the kept initial centroids (not the merged means) is what CLIMB does: a
final cluster keeps the shape of the many small clusters it is made of. Merging by links
rather than by centroids (CLIMB and this module before: Ward) keeps small sources: on the
shared corpus, a document's 10 nearest neighbours come from its own source 99% of the
time for every source, while the centroids of two small prose sources sit closer to a
large one's than that source's own far-apart parts do; Ward merged the small sources into
the large one and split another in three.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mixer.errors import MixerError


@dataclass
class ClusterConfig:
    clusters: int = 16                   # final clusters: the domains
    initial_clusters: int | None = None  # k-means clusters before pruning and merging (None: see requested_initial_clusters)
    min_cluster_docs: int = 8            # initial clusters with fewer sample documents are pruned
    sample: int = 50_000                 # documents the clustering is fitted on (a uniform sample)
    neighbors: int = 10                  # nearest neighbours per sample document in the merge's graph
    seed: int = 0

    def __post_init__(self):
        if self.clusters < 2:
            raise MixerError(f"--clusters must be at least 2, got {self.clusters}")
        if self.initial_clusters is not None and self.initial_clusters < self.clusters:
            raise MixerError(f"--clusters {self.clusters} is more than --initial-clusters {self.initial_clusters}")
        if self.neighbors < 1:
            raise MixerError(f"neighbors must be at least 1, got {self.neighbors}")
        if self.min_cluster_docs < 1:
            raise MixerError(f"--min-cluster-docs must be at least 1, got {self.min_cluster_docs}")
        if self.sample < 2 * self.clusters:
            raise MixerError(f"--sample {self.sample} is too small for {self.clusters} clusters "
                             f"(at least {2 * self.clusters})")

    @property
    def requested_initial_clusters(self) -> int:
        """`initial_clusters`, by default 256 (16 per final cluster beyond 16): fine enough
        that a small source owns initial clusters of its own (with 40 for 5 final clusters,
        a source of 0.7% of the documents owned none), while the merge by links joins a
        large source's many parts."""
        return self.initial_clusters or max(256, 16 * self.clusters)

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
    from sklearn.cluster import KMeans
    from sklearn.metrics import pairwise_distances_argmin

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
        member = pairwise_distances_argmin(x, centroids)   # pruned clusters' documents: the nearest kept
        merged = merge_by_links(link_counts(x, member, len(kept), cfg.neighbors), np.bincount(member, minlength=len(kept)),
                                centroids, cfg.clusters)
    return ClusterModel(centroids=centroids, merged=np.asarray(merged, dtype=np.int64), kept_ids=kept, n_initial=k0)


def link_counts(x: np.ndarray, member: np.ndarray, k: int, neighbors: int) -> np.ndarray:
    """float [k, k]: links between the clusters of the documents x [n, dim] (`member` [n]
    their cluster): for every document and each of its `neighbors` nearest documents, a
    link between their clusters, counted both ways."""
    from sklearn.neighbors import NearestNeighbors

    neighbors = min(neighbors, len(x) - 1)
    _, nearest = NearestNeighbors(n_neighbors=neighbors + 1).fit(x).kneighbors(x)
    links = np.zeros((k, k))
    np.add.at(links, (np.repeat(member, neighbors), member[nearest[:, 1:]].ravel()), 1.0)
    return links + links.T


def merge_by_links(links: np.ndarray, sizes: np.ndarray, centroids: np.ndarray, clusters: int) -> np.ndarray:
    """int [k]: the final cluster of each of k clusters, merged greedily until `clusters`
    remain: each time the pair with the most links per document of the smaller one (a
    small source with no links to a large one stays apart; a large source's parts, linked
    along their borders, join). Pairs without links go by their centroids' cosine."""
    k = len(sizes)
    links, sizes = links.astype(np.float64).copy(), sizes.astype(np.float64).copy()
    unit = centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    sums = unit * sizes[:, None]                          # size-weighted sums of the unit centroids
    group, active = np.arange(k), np.ones(k, dtype=bool)
    for _ in range(k - clusters):
        ids = np.flatnonzero(active)
        smaller = np.minimum(sizes[ids][:, None], sizes[ids][None, :])
        directions = sums[ids] / np.maximum(np.linalg.norm(sums[ids], axis=1, keepdims=True), 1e-12)
        score = links[np.ix_(ids, ids)] / np.maximum(smaller, 1.0) + 1e-6 * (directions @ directions.T)
        np.fill_diagonal(score, -np.inf)
        i, j = np.unravel_index(np.argmax(score), score.shape)
        a, b = ids[i], ids[j]
        links[a] += links[b]
        links[:, a] += links[:, b]
        sizes[a] += sizes[b]
        sums[a] += sums[b]
        active[b] = False
        group[group == b] = a
    return np.unique(group, return_inverse=True)[1]
