"""The search driver: create, run, resume, cancel.

Loop: propose -> record as queued -> evaluate up to `parallel` at a time -> record each
result as it arrives -> until the run budget (or cost budget) is spent -> recommend ->
optionally validate the recommendation with one more real run.

Everything the loop needs is in the store: the spec (searches.config) and the runs. The
proposal RNG is seeded by (seed, runs so far), so a resumed search proposes what the
uninterrupted one would have; each run's training seed (its data order) is derived from
(seed, run index) and stored with it, and all of a search's own runs share one model
initialisation (`init_seed`: the search's seed). On the shared five-domain corpus the
initialisation accounts for most of a tiny proxy's seed noise (held-out loss std 0.045
across initialisations against 0.019 across data orders, 4 runs each): holding it fixed
compares mixtures, not initialisations. Extra runs (validation, baselines, replicates)
vary both. On resume, queued or running runs (a crash, Ctrl-C or `kill -9` left
them) are evaluated again under the same ids; finished ones are reused.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
import pandas as pd

from mixer.errors import MixerError
from mixer.workspace import Workspace
from mixer.mixture import Mixture
from search.backends import Backend, Proposal, Recommendation, make_backend, typed_options
from search.backends.base import TooFewRuns, to_mixture, unused_pool
from search.evaluation import Evaluator, RunResult, RunStatus
from search.evaluators import SearchContext, build_context
from search.fidelity import split_proxy_label
from search import lease
from search.guard import guard
from search.history import History
from search.novelty import novel_proposals
from search.recording import finished_run, result_metrics
from search.spec import Budget, EvaluatorKind, ProxySpec, SearchSpec
from store import (RunRecord, SearchRecord, create_search, get_search, new_id, next_search_name,
                   proposed_run_ids, record_proposals, requeue_running, run_costs, search_runs, set_search_status,
                   write_recommendation, write_runs)
from store.db import WRITER_WAIT_S
from store.writes import NameTakenError


@dataclass
class Progress:
    finished: int
    budget: int
    best: float | None


ProgressCallback = Callable[[Progress], None]


class SearchSession:
    """One search's spec, target, space, backend and evaluator, rebuilt from the store."""

    def __init__(self, ws: Workspace, search: SearchRecord):
        if search.backend == "import":
            raise MixerError(f"search '{search.name}' holds imported runs, not a search; search over them with "
                             f"`mixer search start --evaluator table --table {search.name}`")
        if search.evaluator == "online":
            raise MixerError(f"'{search.name}' is an online {search.backend} run, not a search; start another with "
                             "`mixer online start`")
        self.ws, self.search = ws, search
        self.spec = SearchSpec.from_json(search.config)
        self.target = self.spec.target
        self.context: SearchContext = build_context(ws, self.spec)
        self.target.check(self.context.measured)
        self.backend: Backend = make_backend(self.spec.backend, self.spec.options, self.context.space)
        self.lease: lease.Lease | None = None       # held while a driver runs the search

    def runs(self):
        return search_runs(self.ws.db_path, self.search.id)

    def costs(self) -> dict[str | None, float]:
        """Cost of one run at each fidelity (see search.fidelity), measured times as they come in."""
        fidelity = self.context.space.fidelity
        if not fidelity.multi:
            return fidelity.cost_table()
        table = self.spec.table.search if self.spec.table is not None else None
        source = get_search(self.ws.db_path, table).id if table else None  # a table's own costs only
        return fidelity.cost_table(run_costs(self.ws.db_path, [f for f in fidelity.labels if f], source))

    def history(self, runs: pd.DataFrame | None = None) -> History:
        """The search's own runs (`<name>/NNNN`): extra runs (validation, baselines,
        replicates, transfer checks) use other seeds and scales, and never feed the model."""
        runs = self.runs() if runs is None else runs
        runs = runs[runs.run_id.str.fullmatch(rf"{re.escape(self.search.name)}/\d{{4}}")]
        return History.from_runs(self.context.space.domains, runs, self.target, self.costs())

    def target_value(self, finals: dict) -> float:
        measured = [d for d in self.context.space.domains if d in finals] or None
        return self.target.value(finals, measured)


def create(ws: Workspace, spec: SearchSpec, min_domains: int = 2) -> SearchRecord:
    """Validate everything (backend options, target, evaluator inputs) and store the search;
    without a name it is called BACKEND-N (the first N not taken)."""
    spec.options = typed_options(spec.backend, spec.options)
    context = build_context(ws, spec)
    if len(context.space.domains) < min_domains:
        raise MixerError(f"a mixture search needs at least {min_domains} domains, has "
                         f"{len(context.space.domains)}")
    spec.target.check(context.measured)
    make_backend(spec.backend, spec.options, context.space)   # options that need the space (a prior's domains)
    _check_domains(ws, spec, context)
    if spec.evaluator is EvaluatorKind.proxy:   # patterns expanded, default "all" fixed: a resume mixes the same
        spec.proxy = replace(spec.proxy, domains=list(context.space.domains))
    _start(context.evaluator)

    def record_named(name: str) -> SearchRecord:
        spec.name = name
        return SearchRecord(id=new_id("s"), name=name, backend=spec.backend, evaluator=spec.evaluator.value,
                            config=spec.to_json(), target=spec.target.spec, direction=spec.target.direction)

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
    search = get_search(ws.db_path, search_ref)
    check_resumable(search)
    session = SearchSession(ws, search)
    _check_domains(ws, session.spec, session.context)
    session.lease = lease.acquire(ws, search.id, search.name)
    try:
        _start(session.context.evaluator)
        if evaluator is not None:
            session.context.evaluator = evaluator(session.context.evaluator)
        return _drive(session, progress, retry_failed)
    finally:
        lease.release(session.lease)


def check_resumable(search: SearchRecord) -> None:
    """A finished, cancelled or online search cannot be driven again: one line says why."""
    if search.evaluator == "online":
        raise MixerError(f"'{search.name}' is an online {search.backend} run, not a search: it cannot be resumed; "
                         "start another with `mixer online start`")
    if search.status == "done":
        raise MixerError(f"search '{search.name}' is already finished; see `mixer best {search.name}`")
    if search.status == "cancelled":
        raise MixerError(f"search '{search.name}' was cancelled; start a new one (runs can be imported)")


def _drive(session: SearchSession, progress: ProgressCallback | None, retry_failed: bool) -> Recommendation | None:
    db, search_id = session.ws.db_path, session.search.id
    set_search_status(db, search_id, "running", wait_s=WRITER_WAIT_S)
    try:
        _rerun_unfinished(session, progress, retry_failed)
        while not _budget_spent(session) and not _cancelled(session):
            if not _one_round(session, progress):
                break
        if _cancelled(session):  # also when `search cancel` came during the last round
            return None
        if session.spec.budget.replicates:
            _replicate(session)
        recommendation = _recommend(session)
    except BaseException:
        if get_search(db, search_id).status == "running":
            set_search_status(db, search_id, "created", wait_s=WRITER_WAIT_S)  # resumable
        requeue_running(db, search_id, wait_s=WRITER_WAIT_S)  # nothing runs them now
        raise
    set_search_status(db, search_id, "done", wait_s=WRITER_WAIT_S)
    return recommendation


def _cancelled(session: SearchSession) -> bool:
    return get_search(session.ws.db_path, session.search.id).status == "cancelled"


def _check_domains(ws: Workspace, spec: SearchSpec, context: SearchContext) -> None:
    """Every domain a proxy search trains on opens and matches its hash (sizes and sampled
    blocks of every file, as the loader checks): a broken domain fails the search at once
    instead of failing each of its runs."""
    from mixer.domain import Domain

    if spec.evaluator is EvaluatorKind.proxy:
        for name in context.space.domains:
            Domain.open(ws.domain_dir(name))


def _start(evaluator: Evaluator) -> None:
    """Connect an evaluator that needs it (Ray): an unreachable cluster or a resource
    request no node can hold fails here, before a search is stored or a run marked."""
    start = getattr(evaluator, "start", None)
    if start is not None:
        start()


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
    budget = session.spec.budget
    return n >= budget.runs or (budget.max_cost is not None and cost >= budget.max_cost)


def run_seed(search_seed: int, index: int) -> int:
    """The training seed of a search's run `index`: distinct per run, reproducible."""
    return int(np.random.SeedSequence([search_seed, index]).generate_state(1)[0] % 2**31)


def _one_round(session: SearchSession, progress: ProgressCallback | None) -> bool:
    spec = session.spec
    n_so_far, _ = _spent(session)
    n = min(spec.budget.parallel, spec.budget.runs - n_so_far)
    space = session.context.space
    if space.pool is not None and len(unused_pool(space, session.history())) == 0:
        return False  # every entry of the table has been run
    proposals = _affordable(session, _novel_batch(session, n, n_so_far))
    if not proposals:
        return False  # pool exhausted, or nothing new left to propose
    records = [_proposed_run(session, n_so_far + i, p) for i, p in enumerate(proposals)]
    record_proposals(session.ws.db_path, session.search.id, spec.backend, n_so_far, records, wait_s=WRITER_WAIT_S)
    _evaluate(session, records, progress)
    return True


def _default_fidelity(session: SearchSession) -> str | None:
    """The fidelity of a proposal that names none."""
    return session.spec.fidelity_label if session.spec.proxy is not None else session.context.space.target_fidelity


def _affordable(session: SearchSession, proposals: list[Proposal]) -> list[Proposal]:
    """The proposals, in order, that the cost budget can still pay for (all without one):
    a run the budget cannot pay for is never started."""
    budget = session.spec.budget
    if budget.max_cost is None:
        return proposals
    costs = session.costs()
    default = _default_fidelity(session)
    left = budget.max_cost - _spent(session)[1]
    kept = []
    for p in proposals:
        cost = costs.get(p.fidelity or default, 1.0)
        if cost <= left + 1e-9:
            kept.append(p)
            left -= cost
    return kept


def _novel_batch(session: SearchSession, n: int, n_so_far: int, attempts: int = 4) -> list[Proposal]:
    """Up to n proposals, none a near-duplicate of a live run (search.novelty): the backend
    is asked again, then the prior sampler fills what is still missing."""
    from search.backends.random import RandomBackend, RandomConfig

    space, runs = session.context.space, session.runs()
    history = session.history(runs)
    default = _default_fidelity(session)
    if space.pool is not None:  # table entries are distinct runs by construction
        return session.backend.propose(history, n, np.random.default_rng([session.spec.seed, n_so_far]))
    kept: list[Proposal] = []
    for attempt in range(attempts + 1):
        rng = np.random.default_rng([session.spec.seed, n_so_far] + ([attempt] if attempt else []))
        source = session.backend if attempt < attempts else RandomBackend(RandomConfig(), space)
        kept = novel_proposals(kept + source.propose(history, n + attempt * n, rng), runs, space.domains, default)
        if len(kept) >= n:
            break
    return kept[:n]


def _proposed_run(session: SearchSession, index: int, proposal: Proposal) -> RunRecord:
    spec = session.spec
    record = RunRecord(id=f"{session.search.name}/{index:04d}", search_id=session.search.id,
                       mixture=proposal.mixture.as_dict(), status="queued", fidelity=proposal.fidelity,
                       seed=run_seed(spec.seed, index), init_seed=spec.seed, pool_key=proposal.pool_key)
    if spec.evaluator is EvaluatorKind.proxy:
        record.fidelity = proposal.fidelity or spec.fidelity_label
        record.preset, record.tokens = split_proxy_label(record.fidelity)
    return record


def _rerun_unfinished(session: SearchSession, progress: ProgressCallback | None, retry_failed: bool = False) -> None:
    runs = session.runs()
    unfinished = runs[runs.status.isin(["queued", "running"] + (["failed"] if retry_failed else []))]
    records = [RunRecord(id=r.run_id, search_id=session.search.id, mixture=dict(r.mixture), status="queued",
                         fidelity=r.fidelity, preset=r.preset, tokens=_optional_int(r.tokens),
                         seed=_optional_int(r.seed), init_seed=_optional_int(r.init_seed), pool_key=r.pool_key)
               for r in unfinished.itertuples()]
    if records:
        _evaluate(session, records, progress)


def _optional_int(value) -> int | None:
    return None if pd.isna(value) else int(value)


def _evaluate(session: SearchSession, records: list[RunRecord], progress: ProgressCallback | None
              ) -> dict[str, RunResult]:
    """Evaluate runs, recording each result as it arrives; returns run id -> result. As
    many runs are marked running as the evaluator keeps in flight (its `parallel`, capped
    by what the cluster holds); the others stay queued until a slot frees."""
    db = session.ws.db_path
    for run in records:
        run.status = "queued"
    slots = max(1, getattr(session.context.evaluator, "parallel", len(records)))
    for run in records[:slots]:
        run.status = "running"
    write_runs(db, records, wait_s=WRITER_WAIT_S)
    queued = records[slots:]
    results = {}
    for run, result in session.context.evaluator.evaluate(records):
        _record_result(session, run, result)
        results[run.id] = result
        queued = [r for r in queued if r.id not in results]
        if queued:  # a slot freed: the next run starts
            queued[0].status = "running"
            write_runs(db, [queued.pop(0)], wait_s=WRITER_WAIT_S)
        if progress:
            runs = session.runs()
            history = session.history(runs).at_fidelity(session.context.space.target_fidelity)
            best = session.target.value_of(float(history.y.min())) if len(history) else None
            proposed = set(proposed_run_ids(db, session.search.id))
            finished = int((runs.run_id.isin(proposed) & runs.status.isin(["done", "failed"])).sum())
            progress(Progress(finished, session.spec.budget.runs, best))
    return results


def _record_result(session: SearchSession, run: RunRecord, result: RunResult) -> None:
    if session.lease is not None:
        lease.heartbeat(session.lease)
    target = session.target_value(result.values) if result.done else None
    write_runs(session.ws.db_path, [finished_run(run, result, target)], result_metrics(run.id, result),
               wait_s=WRITER_WAIT_S)


class ExtraRun(NamedTuple):
    run_id: str
    result: RunResult


def replicate_seed(search_seed: int, replicate: int) -> int:
    """Training seed of an extra run's replicate: shared by every mixture compared (paired
    seeds), and apart from the search's own run seeds (`run_seed`), so the best run is
    measured again, not replayed."""
    return int(np.random.SeedSequence([search_seed, 2**32 - 1, replicate]).generate_state(1)[0] % 2**31)


def evaluate_extra(session: SearchSession, mixtures: dict[str, Mixture], seeds: int = 1,
                   fidelity: str | None = None, first_seed: int = 0) -> dict[str, ExtraRun]:
    """Train extra mixtures (a validation, baselines, replicates, a transfer check) outside
    the search's budget, at its fidelity or at `fidelity` (PRESET:TOKENS), each with `seeds`
    replicate seeds; returns label -> run, where a label is the mixture's (id
    `<search>/<label>`, seed: the search's) or, with several seeds or a `first_seed`,
    `<label>/seed-<k>` (seed `replicate_seed(seed, k)`, k from `first_seed`). Finished ones
    are reused, so an interrupted call resumes."""
    spec = session.spec
    label_of_fidelity = fidelity or spec.fidelity_label
    preset, tokens = split_proxy_label(label_of_fidelity)
    replicas = range(first_seed, first_seed + seeds)
    plan = ({label: (m, spec.seed) for label, m in mixtures.items()} if seeds == 1 and first_seed == 0 else
            {f"{label}/seed-{k}": (m, replicate_seed(spec.seed, k)) for label, m in mixtures.items() for k in replicas})
    done = session.runs()
    done = done[done.status == "done"].set_index("run_id")
    init_seed = spec.proxy.train.init_seed if spec.proxy is not None else None  # `proxy train --init-seed`
    records, reused = [], {}
    for label, (mixture, seed) in plan.items():
        run_id = f"{session.search.name}/{label}"
        if run_id in done.index and done.loc[run_id].mixture == mixture.as_dict():
            reused[label] = ExtraRun(run_id, RunResult(RunStatus.done, values=dict(done.loc[run_id].final_values)))
            continue
        records.append(RunRecord(id=run_id, search_id=session.search.id, mixture=mixture.as_dict(),
                                 status="queued", fidelity=label_of_fidelity, preset=preset, tokens=tokens, seed=seed,
                                 init_seed=init_seed))
    results = _evaluate(session, records, None)
    by_id = {r.id: ExtraRun(r.id, results[r.id]) for r in records}
    return {label: reused.get(label) or by_id[f"{session.search.name}/{label}"] for label in plan}


def _replicate(session: SearchSession) -> None:
    """The `budget.replicates` best runs at the target fidelity, trained again with a fresh
    seed (initialisation and data order): `<search>/replicate/<run>/seed-1`."""
    history = session.history().at_fidelity(session.context.space.target_fidelity)
    proposed = re.compile(rf"{re.escape(session.search.name)}/\d{{4}}")
    own = [i for i in np.argsort(history.y) if proposed.fullmatch(history.run_ids[i])]
    chosen = {f"replicate/{history.run_ids[i].rsplit('/', 1)[-1]}": to_mixture(history.domains, history.X[i])
              for i in own[:session.spec.budget.replicates]}
    evaluate_extra(session, chosen, seeds=1, first_seed=1)


def seed_noise(session: SearchSession) -> dict | None:
    """The seed noise from the replicate pairs: the std of one run's target,
    sqrt(mean(d^2) / 2) over the pairs' differences d; None without replicates."""
    runs = session.runs()
    done = runs[(runs.status == "done") & runs.target_value.notna()].set_index("run_id")
    name = session.search.name
    pairs = []
    for run_id, row in done.iterrows():
        if run_id.startswith(f"{name}/replicate/"):
            original = f"{name}/{run_id.split('/')[2]}"
            if original in done.index:
                pairs.append((float(done.loc[original].target_value), float(row.target_value)))
    if not pairs:
        return None
    d = np.array([a - b for a, b in pairs])
    return {"std": float(np.sqrt(np.mean(d ** 2) / 2)), "pairs": len(pairs)}


def _gains_over_baselines(session: SearchSession, history: History, rec: Recommendation) -> dict[str, float]:
    """The model's predicted gain of the recommendation over uniform and token-share
    (positive: the recommendation is predicted better), in target units."""
    space = session.context.space
    predicted, _ = session.backend.predict(history.at_fidelity(space.target_fidelity),
                                           np.array(list(space.baselines.values())))
    rec_loss = session.target.loss(rec.predicted)
    return {name: float(p - rec_loss) for name, p in zip(space.baselines, predicted)}


def recommend_from(session: SearchSession, history: History) -> Recommendation:
    """The guarded recommendation (search.guard) from these runs, in the user's orientation."""
    if len(history) == 0:
        raise MixerError(f"search '{session.search.name}' has no finished runs to recommend from")
    space = session.context.space
    try:
        rec = guard(session.backend.recommend(history), session.backend, history, space.target_fidelity,
                    baselines=space.baselines)
    except TooFewRuns as exc:  # a budget smaller than the model needs: its best run, and why
        rec = _best_run(history.at_fidelity(space.target_fidelity), str(exc))
        if rec is None:
            raise
    value_of = session.target.value_of
    if rec.predicted is not None:
        rec.predicted = float(value_of(rec.predicted))
    for key in ("best_observed", "predicted_at_best_run"):
        if key in rec.evidence:
            rec.evidence[key] = float(value_of(rec.evidence[key]))
    if "model_pick" in rec.evidence:
        rec.evidence["model_pick"]["predicted"] = float(value_of(rec.evidence["model_pick"]["predicted"]))
    return rec


def _best_run(at_target: History, reason: str) -> Recommendation | None:
    """The best run at the target fidelity as the answer, without a model (None: no such run)."""
    if not len(at_target):
        return None
    best = int(np.argmin(at_target.y))
    evidence = {"rule": "best-run:too-few-runs", "reason": reason, "best_run": at_target.run_ids[best],
                "best_observed": float(at_target.y[best])}
    return Recommendation(to_mixture(at_target.domains, at_target.X[best]), None, None, evidence)


def _recommend(session: SearchSession) -> Recommendation:
    history = session.history()
    rec = recommend_from(session, history)
    noise = seed_noise(session)
    if noise is not None:
        rec.evidence["seed_noise"] = noise
        if rec.predicted is not None and session.spec.proxy is not None:
            rec.evidence["predicted_gain_over"] = _gains_over_baselines(session, history, rec)
    validation_id = None
    if session.spec.validate:
        validation_id = evaluate_extra(session, {"validation": rec.mixture})["validation"].run_id
        rec.evidence["validation_run"] = validation_id
    write_recommendation(session.ws.db_path, session.search.id, rec.mixture.as_dict(), rec.predicted,
                         rec.predicted_std, rec.evidence, validation_id, wait_s=WRITER_WAIT_S)
    return rec


def train_mixture(ws: Workspace, mixture_text: str, proxy: ProxySpec) -> tuple[str, RunResult]:
    """`mixer proxy train`: a one-run search (`proxy-train-N`) on every domain of the
    workspace; returns the run id and its result."""
    from search.evaluators import search_domains

    names = list(search_domains(ws, proxy.domains))
    mixture = Mixture.parse(mixture_text, known_domains=names)
    _check_local_device(proxy)
    spec = SearchSpec(name=next_search_name(ws.db_path, "proxy-train"), backend="random",
                      budget=Budget(runs=1, parallel=1), seed=proxy.train.seed,
                      proxy=replace(proxy, domains=names, max_epochs=None))
    record = create(ws, spec, min_domains=1)
    session = SearchSession(ws, record)
    set_search_status(ws.db_path, record.id, "running", wait_s=WRITER_WAIT_S)
    status = "failed"
    try:
        extra = evaluate_extra(session, {"run": mixture})["run"]
        status = "done" if extra.result.done else "failed"
    finally:
        set_search_status(ws.db_path, record.id, status, wait_s=WRITER_WAIT_S)
    return extra.run_id, extra.result


def _check_local_device(proxy: ProxySpec) -> None:
    """An embedded Ray cluster trains on this machine, so a CUDA device asked for must be
    here (a cluster's nodes are not known before they run)."""
    if proxy.train.device.startswith("cuda") and proxy.runner.address is None and not os.environ.get("RAY_ADDRESS"):
        import torch

        if not torch.cuda.is_available():
            raise MixerError(f"--device {proxy.train.device}: this machine has no CUDA device, and runs train on "
                             "its embedded Ray cluster (--ray-address joins a cluster that has one)")
