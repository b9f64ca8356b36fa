"""The search driver: create, run, resume, cancel.

Loop: load the state -> propose (search.proposing) -> record as queued -> evaluate up to
`parallel` at a time, recording each result as it arrives (search.session) -> until the
run budget (or cost budget) is spent -> replicates -> recommend (search.recommend) ->
optionally validate the recommendation with one more run (search.extra_runs).

Everything the loop needs is in the store: the spec (searches.config) and the runs, each
with its role. On resume, queued or running runs (a crash, Ctrl-C or `kill -9` left them)
are evaluated again under the same ids; finished ones are reused, and the proposals that
follow are the uninterrupted search's (search.proposing seeds them by runs so far).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pandas as pd

from mixer.domain import training_domains
from mixer.errors import MixerError
from mixer.workspace import Workspace
from search import lease
from search.backends import Recommendation, make_backend, typed_options
from search.corpus_diff import Change, corpus_diff
from search.evaluation import Evaluator
from search.evaluators import (build_evaluator, build_space, check_table_direction, level_groups,
                               token_share_groups)
from search.extra_runs import evaluate_extra, replicate_best, seed_noise
from search.proposing import next_runs, refuse_unaffordable
from search.recommend import gains_over_baselines, recommend_from
from search.reuse import reuse_spec
from search.session import Progress, ProgressCallback, SearchSession
from search.spec import EvaluatorKind, SearchSpec
from search.state import SearchState
from store import (RunRecord, SearchRecord, create_search, get_search, new_id, next_search_name, record_proposals,
                   requeue_running, set_search_status, write_recommendation)
from store.db import WRITER_WAIT_S
from store.records import RunRole, SearchKind
from store.writes import NameTakenError

__all__ = ["Progress", "ProgressCallback", "SearchSession", "cancel", "check_resumable", "create", "run",
           "store_named"]


def create(ws: Workspace, spec: SearchSpec, min_domains: int = 2, kind: SearchKind = SearchKind.search
           ) -> SearchRecord:
    """Validate everything (backend options, target, evaluator inputs) and store the search;
    without a name it is called BACKEND-N (the first N not taken)."""
    spec.options = typed_options(spec.backend, spec.options)
    if spec.reuse is not None:
        spec = reuse_spec(ws, spec)
    elif spec.proxy is not None and spec.proxy.group_by:
        spec = replace(spec, proxy=replace(spec.proxy, groups=token_share_groups(ws, spec.proxy)))
    elif spec.proxy is not None and spec.proxy.level is not None:
        spec = replace(spec, proxy=replace(spec.proxy, groups=level_groups(ws, spec.proxy)))
    built = build_space(ws, spec)
    if len(built.space.domains) < min_domains:
        raise MixerError(f"a mixture search needs at least {min_domains} domains, has "
                         f"{len(built.space.domains)}")
    spec.target.check(built.measured)
    if spec.table is not None:
        check_table_direction(ws, spec, built)
    refuse_unaffordable(spec.budget, built.space)
    make_backend(spec.backend, spec.options, built.space)   # options that need the space (a prior's domains)
    build_evaluator(ws, spec, built.space).start()          # broken domains, an unreachable cluster: now
    if spec.evaluator is EvaluatorKind.proxy:   # patterns expanded, defaults fixed: a resume mixes and measures the same
        spec.proxy = replace(spec.proxy, domains=built.leaves, eval_sets=built.eval_sets,
                             corpus_hashes={m.name: m.content_hash for m in training_domains(ws.domains_dir)})

    def record_named(name: str) -> SearchRecord:
        spec.name = name
        return SearchRecord(id=new_id("s"), name=name, kind=kind, backend=spec.backend,
                            evaluator=spec.evaluator.value, config=spec.to_json(), target=spec.target.spec,
                            direction=spec.target.direction)

    return store_named(ws, spec.name, spec.backend, record_named)


def store_named(ws: Workspace, name: str | None, prefix: str, record_named: Callable[[str], SearchRecord]
                ) -> SearchRecord:
    """Store the search `record_named(name)`; without a name, `PREFIX-N` with the first N
    free (another `start` may take one a moment before us: then the next)."""
    for _ in range(20):
        record = record_named(name or next_search_name(ws.db_path, prefix))
        try:
            create_search(ws.db_path, record)
            return record
        except NameTakenError:
            if name is not None:
                raise
    raise MixerError(f"no free default name for a {prefix} search; give one with --name")


def run(ws: Workspace, search_ref: str, progress: ProgressCallback | None = None,
        evaluator: Callable[[Evaluator], Evaluator] | None = None, retry_failed: bool = False
        ) -> Recommendation | None:
    """Run (or resume) a search to its budget and recommend; None if it was cancelled
    while running. `evaluator` may wrap the search's own evaluator; `retry_failed` trains
    failed runs again (after their data was fixed, say). One driver per search
    (search.lease): a second one is refused, a dead one's lease taken over."""
    record = get_search(ws.db_path, search_ref)
    check_resumable(record)
    refuse_changed_corpus(ws, record)
    session = SearchSession(ws, record)
    session.lease = lease.acquire(ws, record.id, record.name)
    try:
        session.evaluator.start()
        if evaluator is not None:
            session.evaluator = evaluator(session.evaluator)
        return _drive(session, progress, retry_failed)
    finally:
        lease.release(session.lease)


def check_resumable(record: SearchRecord) -> None:
    """Only a created or interrupted search mixer drives can be run: one line says why not."""
    if record.kind is SearchKind.online:
        raise MixerError(f"'{record.name}' is an online {record.backend} run, not a search: it cannot be resumed; "
                         "start another with `mixer online start`")
    if record.kind is SearchKind.imported:
        raise MixerError(f"search '{record.name}' holds imported runs, not a search; search over them with "
                         f"`mixer search start --evaluator table --table {record.name}`")
    if record.kind is SearchKind.proxy_train:
        raise MixerError(f"'{record.name}' is the run of a `mixer proxy train`, not a search: train it again with "
                         "`mixer proxy train`")
    if record.status == "done":
        raise MixerError(f"search '{record.name}' is already finished; see `mixer best {record.name}`")
    if record.status == "cancelled":
        raise MixerError(f"search '{record.name}' was cancelled; start a new one (runs can be imported)")


def refuse_changed_corpus(ws: Workspace, record: SearchRecord) -> None:
    """A search whose domains changed since it started would mix two versions of them in
    one model: one line, naming them, before any run."""
    if not record.config.get("proxy"):
        return
    changed = [r.domain for r in corpus_diff(ws, record.name) if r.change in (Change.changed, Change.removed)]
    if changed:
        raise MixerError(f"domain {', '.join(changed)} changed since search '{record.name}' started (`mixer corpus "
                         f"diff {record.name}`): its runs would mix two versions; start a new search, or "
                         f"`--reuse {record.name}` once it has an answer")


def cancel(ws: Workspace, search_ref: str) -> SearchRecord:
    record = get_search(ws.db_path, search_ref)
    if record.status in ("done", "cancelled"):
        raise MixerError(f"search '{record.name}' is already {record.status}")
    set_search_status(ws.db_path, record.id, "cancelled")
    return record


def _drive(session: SearchSession, progress: ProgressCallback | None, retry_failed: bool) -> Recommendation | None:
    db, search_id = session.ws.db_path, session.record.id
    set_search_status(db, search_id, "running", wait_s=WRITER_WAIT_S)
    try:
        _rerun_unfinished(session, progress, retry_failed)
        while not _cancelled(session):
            state = session.load()   # once per round
            if _budget_spent(state) or not _one_round(session, state, progress):
                break
        if _cancelled(session):  # also when `search cancel` came during the last round
            return None
        if session.spec.budget.replicates:
            replicate_best(session, session.load())
        recommendation = _recommend(session)
    except BaseException:
        if get_search(db, search_id).status == "running":
            set_search_status(db, search_id, "created", wait_s=WRITER_WAIT_S)  # resumable
        requeue_running(db, search_id, wait_s=WRITER_WAIT_S)  # nothing runs them now
        raise
    set_search_status(db, search_id, "done", wait_s=WRITER_WAIT_S)
    return recommendation


def _cancelled(session: SearchSession) -> bool:
    return get_search(session.ws.db_path, session.record.id).status == "cancelled"


def _budget_spent(state: SearchState) -> bool:
    n, cost = state.spent()
    budget = state.setup.spec.budget
    return n >= budget.runs or (budget.max_cost is not None and cost >= budget.max_cost)


def _one_round(session: SearchSession, state: SearchState, progress: ProgressCallback | None) -> bool:
    """Propose, record and evaluate one batch; False when nothing new was left to propose."""
    budget = session.spec.budget
    so_far, _ = state.spent()
    records = next_runs(session.backend, state, min(budget.parallel, budget.runs - so_far))
    if not records:
        return False  # pool exhausted, or nothing new left to propose
    record_proposals(session.ws.db_path, session.record.id, session.spec.backend, so_far, records,
                     wait_s=WRITER_WAIT_S)
    session.evaluate(records, progress)
    return True


def _rerun_unfinished(session: SearchSession, progress: ProgressCallback | None, retry_failed: bool) -> None:
    runs = session.load().runs
    unfinished = runs[runs.status.isin(["queued", "running"] + (["failed"] if retry_failed else []))]
    records = [RunRecord(id=r.run_id, search_id=session.record.id, role=RunRole(r.role), mixture=dict(r.mixture),
                         status="queued", fidelity=r.fidelity, preset=r.preset, tokens=_optional_int(r.tokens),
                         seed=_optional_int(r.seed), init_seed=_optional_int(r.init_seed), pool_key=r.pool_key)
               for r in unfinished.itertuples()]
    if records:
        session.evaluate(records, progress)


def _optional_int(value) -> int | None:
    return None if pd.isna(value) else int(value)


def _recommend(session: SearchSession) -> Recommendation:
    """The answer from the search's own runs, with the seed noise its replicates measured
    and a validation run when asked; stored as the search's recommendation."""
    state = session.load()
    model = session.backend.fit(state.history)
    rec = recommend_from(state.setup, model)
    noise = seed_noise(state)
    if noise is not None:
        rec.evidence["seed_noise"] = noise
        if rec.predicted is not None and session.spec.proxy is not None:
            rec.evidence["predicted_gain_over"] = gains_over_baselines(state.setup, model, rec)
    validation_id = None
    if session.spec.validate:
        validation_id = evaluate_extra(session, {"validation": rec.mixture}, RunRole.validation)["validation"].run_id
        rec.evidence["validation_run"] = validation_id
    write_recommendation(session.ws.db_path, session.record.id, rec.mixture.as_dict(), rec.predicted,
                         rec.predicted_std, rec.evidence, validation_id, wait_s=WRITER_WAIT_S)
    return rec
