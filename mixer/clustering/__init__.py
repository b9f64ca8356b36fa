"""CLIMB-style clustering of an unlabeled corpus into domains (`mixer corpus cluster`)."""

from mixer.clustering.build import ClusteringResult, ClusterRequest, cluster_corpus
from mixer.clustering.embedders import EMBEDDER_KINDS, make_embedder
from mixer.clustering.model import ClusterConfig, ClusterModel, fit_clusters

__all__ = ["EMBEDDER_KINDS", "ClusterConfig", "ClusterModel", "ClusterRequest", "ClusteringResult", "cluster_corpus",
           "fit_clusters", "make_embedder"]
