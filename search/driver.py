"""The search driver: create, run, resume, cancel.

Loop: propose -> record as queued -> evaluate up to `parallel` at a time -> record each
result as it arrives -> until the run budget (or cost budget) is spent -> recommend ->
optionally validate the recommendation with one more real run.

Everything the loop needs is in the store: the spec (searches.config) and the runs. The
proposal RNG is seeded by (seed, runs so far), so a resumed search proposes what the
uninterrupted one would have. On resume, queued or running runs (a crash, Ctrl-C or
`kill -9` left them) are evaluated again under the same ids; finished ones are reused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mixer.errors import MixerError
from mixer.workspace import Workspace
from search.backends import Backend, Proposal, Recommendation, backend_config, make_backend
from search.evaluators import SearchContext, build_context
from search.fidelity import split_proxy_label
from search.history import History
from search.recording import finished_run, result_metrics
from search.spec import EvaluatorKind, SearchSpec
from search.targets import Target
from mixer.mixture import Mixture
from store import (RunRecord, SearchRecord, create_search, get_search, new_id, proposed_run_ids,
                   record_proposals, run_seconds, search_runs, set_search_status, write_recommendation,
                   write_runs)


@dataclass
class Progress:
    finished: int
    budget: int
    best: float | None


ProgressCallback = Callable[[Progress], None]


class SearchSession:
    """One search's spec, target, space, backend and evaluator, rebuilt from the store."""

    def __init__(self, ws: Workspace, search: SearchRecord):
        self.ws, self.search = ws, search
        self.spec = SearchSpec.from_json(search.config)
        self.target = Target(self.spec.target, self.spec.maximize)
        self.context: SearchContext = build_context(ws, self.spec)
        self.target.check(self.context.measured)
        self.backend: Backend = make_backend(self.spec.backend, self.spec.options, self.context.space)

    def runs(self):
        return search_runs(self.ws.db_path, self.search.id)

    def costs(self) -> dict[str | None, float]:
        """Cost of one run at each fidelity (see search.fidelity), measured times as they come in."""
        fidelity = self.context.space.fidelity
        if not fidelity.multi:
            return fidelity.cost_table()
        return fidelity.cost_table(run_seconds(self.ws.db_path, [f for f in fidelity.labels if f]))

    def history(self, runs: pd.DataFrame | None = None) -> History:
        runs = self.runs() if runs is None else runs
        return History.from_runs(self.context.space.domains, runs, self.spec.maximize, self.costs())

    def target_value(self, finals: dict) -> float:
        measured = [d for d in self.context.space.domains if d in finals] or None
        return self.target.value(finals, measured)


def create(ws: Workspace, spec: SearchSpec) -> SearchRecord:
    """Validate everything (backend options, target, evaluator inputs) and store the search."""
    backend_config(spec.backend, spec.options)
    context = build_context(ws, spec)
    Target(spec.target, spec.maximize).check(context.measured)
    record = SearchRecord(id=new_id("s"), name=spec.name, backend=spec.backend, evaluator=spec.evaluator.value,
                          config=spec.to_json(), target=spec.target,
                          direction="maximize" if spec.maximize else "minimize")
    create_search(ws.db_path, record)
    return record


def run(ws: Workspace, search_ref: str, progress: ProgressCallback | None = None) -> Recommendation | None:
    """Run (or resume) a search to its budget and recommend; None if it was cancelled
    while running."""
    search = get_search(ws.db_path, search_ref)
    if search.status == "done":
        raise MixerError(f"search '{search.name}' is already finished; see `mixer best {search.name}`")
    if search.status == "cancelled":
        raise MixerError(f"search '{search.name}' was cancelled; start a new one (runs can be imported)")
    session = SearchSession(ws, search)
    set_search_status(ws.db_path, search.id, "running")
    try:
        _rerun_unfinished(session, progress)
        while not _budget_spent(session):
            if get_search(ws.db_path, search.id).status == "cancelled":
                return None
            if not _one_round(session, progress):
                break
        recommendation = _recommend(session)
    except BaseException:
        if get_search(ws.db_path, search.id).status == "running":
            set_search_status(ws.db_path, search.id, "created")  # resumable
        raise
    set_search_status(ws.db_path, search.id, "done")
    return recommendation


def cancel(ws: Workspace, search_ref: str) -> SearchRecord:
    search = get_search(ws.db_path, search_ref)
    if search.status in ("done", "cancelled"):
        raise MixerError(f"search '{search.name}' is already {search.status}")
    set_search_status(ws.db_path, search.id, "cancelled")
    return search


def _spent(session: SearchSession) -> tuple[int, float]:
    """Runs proposed so far, and their cost (the sum of their fidelities' costs)."""
    proposed = set(proposed_run_ids(session.ws.db_path, session.search.id))
    runs = session.runs()
    costs = session.costs()
    fidelities = runs.fidelity[runs.run_id.isin(proposed)]
    return len(proposed), float(sum(costs.get(None if pd.isna(f) else f, 1.0) for f in fidelities))


def _budget_spent(session: SearchSession) -> bool:
    n, cost = _spent(session)
    return n >= session.spec.runs or (session.spec.max_cost is not None and cost >= session.spec.max_cost)


def _one_round(session: SearchSession, progress: ProgressCallback | None) -> bool:
    spec = session.spec
    n_so_far, _ = _spent(session)
    n = min(spec.parallel, spec.runs - n_so_far)
    rng = np.random.default_rng([spec.seed, n_so_far])
    proposals = session.backend.propose(session.history(), n, rng)
    if not proposals:
        return False  # pool exhausted
    records = [_proposed_run(session, f"{session.search.name}/{n_so_far + i:04d}", p)
               for i, p in enumerate(proposals)]
    record_proposals(session.ws.db_path, session.search.id, spec.backend, n_so_far, records)
    _evaluate(session, records, progress)
    return True


def _proposed_run(session: SearchSession, run_id: str, proposal: Proposal) -> RunRecord:
    spec = session.spec
    record = RunRecord(id=run_id, search_id=session.search.id, mixture=proposal.mixture.as_dict(), status="queued",
                       fidelity=proposal.fidelity, seed=spec.seed, pool_key=proposal.pool_key)
    if spec.evaluator is EvaluatorKind.proxy:
        record.fidelity = proposal.fidelity or spec.fidelity_label
        record.preset, record.tokens = split_proxy_label(record.fidelity)
    return record


def _rerun_unfinished(session: SearchSession, progress: ProgressCallback | None) -> None:
    runs = session.runs()
    unfinished = runs[runs.status.isin(["queued", "running"])]
    records = [RunRecord(id=r.run_id, search_id=session.search.id, mixture=dict(r.mixture), status="queued",
                         fidelity=r.fidelity, preset=r.preset, tokens=_optional_int(r.tokens),
                         seed=_optional_int(r.seed), pool_key=r.pool_key)
               for r in unfinished.itertuples()]
    if records:
        _evaluate(session, records, progress)


def _optional_int(value) -> int | None:
    return None if pd.isna(value) else int(value)


def _evaluate(session: SearchSession, records: list[RunRecord], progress: ProgressCallback | None) -> None:
    db = session.ws.db_path
    for run in records:
        run.status = "running"
    write_runs(db, records)
    for run, result in session.context.evaluator.evaluate(records):
        finals = result.get("val_loss") or {}
        target = session.target_value(finals) if result.get("status") == "done" else None
        write_runs(db, [finished_run(run, result, target)], result_metrics(run.id, result))
        if progress:
            history = session.history().at_fidelity(session.context.space.target_fidelity)
            best = None if not len(history) else float(-history.y.max() if session.spec.maximize else history.y.min())
            progress(Progress(_spent(session)[0], session.spec.runs, best))


def evaluate_extra(session: SearchSession, mixtures: dict[str, Mixture]) -> dict[str, str]:
    """Train extra mixtures (a validation, baselines) at the search's fidelity, outside its
    budget; returns label -> run id (`<search>/<label>`)."""
    spec = session.spec
    records = [RunRecord(id=f"{session.search.name}/{label}", search_id=session.search.id, mixture=m.as_dict(),
                         status="queued", fidelity=spec.fidelity_label, preset=spec.preset, tokens=spec.tokens,
                         seed=spec.seed) for label, m in mixtures.items()]
    _evaluate(session, records, None)
    return {label: r.id for label, r in zip(mixtures, records)}


def _recommend(session: SearchSession) -> Recommendation:
    history = session.history()
    if len(history) == 0:
        raise MixerError(f"search '{session.search.name}' has no finished runs to recommend from")
    rec = session.backend.recommend(history)
    if session.spec.maximize and rec.predicted is not None:
        rec.predicted = -rec.predicted
    validation_id = None
    if session.spec.validate:
        validation_id = evaluate_extra(session, {"validation": rec.mixture})["validation"]
        rec.evidence["validation_run"] = validation_id
    write_recommendation(session.ws.db_path, session.search.id, rec.mixture.as_dict(), rec.predicted,
                         rec.predicted_std, rec.evidence, validation_id)
    return rec
