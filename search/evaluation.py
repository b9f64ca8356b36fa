"""What crosses the seam between the driver and an evaluator: `RunResult`, and the
`Evaluator` protocol that produces them (next to `Backend`, the other seam)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from proxies.config import CurvePoint, ProxyResult
from store import RunRecord


class RunStatus(str, Enum):
    done = "done"
    failed = "failed"


@dataclass
class RunResult:
    """One evaluated run. `values`: the final value per domain or metric (what targets are
    computed from); `curve`: periodic measurements; `wall_s`: seconds the run took where it
    ran (start-up included where known); `proxy`: everything a proxy measured (throughput,
    parameter counts, epochs, MoE routing), None for table answers."""

    status: RunStatus
    error: str | None = None
    values: dict[str, float] = field(default_factory=dict)
    curve: list[CurvePoint] = field(default_factory=list)
    wall_s: float | None = None
    proxy: ProxyResult | None = None

    @property
    def done(self) -> bool:
        return self.status is RunStatus.done

    @classmethod
    def failed(cls, error: str) -> "RunResult":
        return cls(RunStatus.failed, error=error)

    @classmethod
    def from_proxy(cls, result: ProxyResult) -> "RunResult":
        if result.status != "done":
            return cls(RunStatus.failed, error=result.error or "failed", proxy=result)
        wall = (result.finished_at - result.started_at) if result.started_at and result.finished_at else result.wall_s
        return cls(RunStatus.done, values={**result.val_loss, **result.eval_loss}, curve=list(result.curve),
                   wall_s=wall, proxy=result)


class Evaluator(Protocol):
    parallel: int    # runs it keeps in flight at once
    instant: bool    # answers without work (a table lookup): a batch's results are stored together

    def start(self) -> None:
        """Connect what it needs (Ray): an unreachable cluster or a resource request no node
        can hold fails here, before a search is stored or a run marked."""
        ...

    def evaluate(self, runs: list[RunRecord]) -> Iterator[tuple[RunRecord, RunResult]]:
        """Yield (run, result) for each queued run, in the order they finish."""
        ...
