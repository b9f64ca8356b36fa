"""Plain records that cross the store's boundary (no ORM: SQL does the rest)."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field

RUN_STATUSES = ("queued", "running", "done", "failed")
SEARCH_STATUSES = ("created", "running", "done", "cancelled", "failed")


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def config_hash(config: dict) -> str:
    """Stable hash of a JSON-able config (sorted keys), to spot identical runs."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class SearchRecord:
    id: str
    name: str
    backend: str
    evaluator: str
    config: dict = field(default_factory=dict)
    target: str | None = None
    direction: str = "minimize"
    status: str = "created"


@dataclass
class RunRecord:
    id: str
    search_id: str
    mixture: dict[str, float]
    status: str = "queued"
    fidelity: str | None = None
    preset: str | None = None
    n_params: int | None = None
    tokens: int | None = None
    seed: int | None = None
    init_seed: int | None = None      # model initialisation seed when not `seed`
    error: str | None = None
    target: float | None = None
    schedule: dict | None = None
    config_hash: str | None = None
    pool_key: str | None = None


@dataclass(frozen=True)
class MetricRow:
    """One measured value. `split` is 'val' for final/periodic per-domain validation losses,
    'train' for the training curve, 'eval' for extra evaluation sets, 'moe' for routing
    statistics, 'perf' for throughput and timings."""

    run_id: str
    step: int
    split: str
    name: str
    value: float
    tokens: int | None = None


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
