"""Plain records that cross the store's boundary (no ORM: SQL does the rest)."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from enum import Enum

RUN_STATUSES = ("queued", "running", "done", "failed")
SEARCH_STATUSES = ("created", "running", "done", "cancelled", "failed")


class RunRole(str, Enum):
    """Why a run was made: the one place that says which runs are a search's own.

    search: proposed by the search's backend (its budget, its model's history);
    baseline: a reference mixture (uniform, token share, DoReMi's reference run);
    validation: the recommendation trained again; replicate: a best run with a fresh seed;
    transfer: `mixer transfer` at either scale; imported: `mixer runs import`;
    online: an online run; train: `mixer proxy train`."""

    search = "search"
    baseline = "baseline"
    validation = "validation"
    replicate = "replicate"
    transfer = "transfer"
    imported = "imported"
    online = "online"
    train = "train"


class SearchKind(str, Enum):
    """What a `searches` row holds: a search mixer drives, imported runs, an online run,
    or the one run of `mixer proxy train`."""

    search = "search"
    imported = "import"
    online = "online"
    proxy_train = "proxy-train"


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
    kind: SearchKind = SearchKind.search

    def __post_init__(self):
        self.kind = SearchKind(self.kind)

    @property
    def drivable(self) -> bool:
        """A search the driver runs (not imported runs, an online run or a proxy-train run)."""
        return self.kind is SearchKind.search


@dataclass
class RunRecord:
    id: str
    search_id: str
    mixture: dict[str, float]
    status: str = "queued"
    role: RunRole = RunRole.search
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
