"""CLIMB-style clustering of an unlabeled corpus into domains (`mixer corpus cluster`).

Names are imported on first use, so that the store can import the plain records
(mixer.clustering.records) without the clustering's own dependencies."""

from importlib import import_module

_WHERE = {"ClusteringResult": "build", "ClusterRequest": "build", "cluster_corpus": "build",
          "EMBEDDER_KINDS": "embedders", "make_embedder": "embedders",
          "ClusterConfig": "model", "ClusterModel": "model", "fit_clusters": "model"}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'mixer.clustering' has no attribute '{name}'")
    return getattr(import_module(f"mixer.clustering.{_WHERE[name]}"), name)
