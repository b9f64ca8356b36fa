"""The write side of one search: its setup (search.state) with the backend that proposes
and the evaluator that runs proposals, and the one path by which a run's result reaches
the store. Only commands that train or run searches build one; readers use SearchSetup.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mixer.workspace import Workspace
from search import lease
from search.backends import Backend, make_backend
from search.evaluation import Evaluator, RunResult
from search.evaluators import build_evaluator
from search.recording import finished_run, result_metrics
from search.spec import SearchSpec
from search.state import SearchSetup, SearchState
from store import RunRecord, write_runs
from store.db import WRITER_WAIT_S
from store.records import SearchRecord


@dataclass
class Progress:
    finished: int
    budget: int
    best: float | None


ProgressCallback = Callable[[Progress], None]


class SearchSession:
    """setup: the search (search.state); backend: its model, built from the stored spec;
    evaluator: what runs its proposals; lease: held while a driver runs it."""

    def __init__(self, ws: Workspace, record: SearchRecord):
        self.ws = ws
        self.setup = SearchSetup.of(ws, record)
        spec = self.setup.spec
        self.backend: Backend = make_backend(spec.backend, spec.options, self.setup.space)
        self.evaluator: Evaluator = build_evaluator(ws, spec, self.setup.space)
        self.lease: lease.Lease | None = None

    @property
    def record(self) -> SearchRecord:
        return self.setup.record

    @property
    def spec(self) -> SearchSpec:
        return self.setup.spec

    def load(self) -> SearchState:
        return self.setup.load(self.ws)

    def evaluate(self, records: list[RunRecord], progress: ProgressCallback | None = None
                 ) -> dict[str, RunResult]:
        """Evaluate runs, recording each result as it arrives (an instant evaluator's, the
        whole batch in one transaction); returns run id -> result. As many runs are marked
        running as the evaluator keeps in flight (its `parallel`, capped by what the cluster
        holds); the others stay queued until a slot frees."""
        db = self.ws.db_path
        slots = max(1, self.evaluator.parallel)
        for i, run in enumerate(records):
            run.status = "running" if i < slots else "queued"
        write_runs(db, records, wait_s=WRITER_WAIT_S)
        waiting = records[slots:]
        results: dict[str, RunResult] = {}
        arrived: list[tuple[RunRecord, RunResult]] = []
        for run, result in self.evaluator.evaluate(records):
            results[run.id] = result
            arrived.append((run, result))
            if self.evaluator.instant:
                continue
            self._record(arrived, progress)
            arrived = []
            waiting = [r for r in waiting if r.id not in results]
            if waiting:  # a slot freed: the next run starts
                waiting[0].status = "running"
                write_runs(db, [waiting.pop(0)], wait_s=WRITER_WAIT_S)
        if arrived:
            self._record(arrived, progress)
        return results

    def _record(self, arrived: list[tuple[RunRecord, RunResult]], progress: ProgressCallback | None) -> None:
        if self.lease is not None:
            lease.heartbeat(self.lease)
        runs, metrics = [], []
        for run, result in arrived:
            target = self.setup.target_value(result.values) if result.done else None
            runs.append(finished_run(run, result, target))
            metrics += result_metrics(run.id, result)
        write_runs(self.ws.db_path, runs, metrics, wait_s=WRITER_WAIT_S)
        if progress:
            state = self.load()
            best = state.best()
            progress(Progress(state.finished_count(), self.spec.budget.runs, best[0] if best else None))
