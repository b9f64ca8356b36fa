"""`mixer online start`: one proxy run whose mixture an online controller (mixer.online)
changes as it trains, on Ray like any run, recorded in DuckDB.

The job is stored as a search (evaluator `online`, backend = the method) so that `best`,
`export`, `plot`, `status` and `sql` work on it: its run `<name>/online` carries the
time-averaged mixture, the stages it trained on (`runs.schedule`), the weight trajectory
(metrics split `weight`, one row per domain and stage) and the losses the controller was
told (split `online`). DoReMi first trains its reference run `<name>/reference` (or uses
`reference_run`). The recommendation is the time-averaged mixture; its evidence holds the
schedule, which `mixer export --schedule` writes. A job stopped midway is not resumed: a
proxy run restarts whole (start the job again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from mixer.config import build, to_data
from mixer.errors import MixerError
from mixer.mixture import Mixture, Schedule
from mixer.online import DoReMiConfig, make_controller, method_config
from mixer.workspace import Workspace
from search.evaluation import RunResult
from search.recording import finished_run, result_metrics
from search.spec import Budget, ProxySpec, SearchSpec
from search.targets import Target
from store import (MetricRow, RunRecord, RunRole, SearchKind, SearchRecord, new_id, run_summary, set_search_status, write_recommendation,
                   write_runs)
from store.db import WRITER_WAIT_S

EVALUATOR = "online"


@dataclass
class OnlineRequest:
    method: str
    options: dict[str, str]
    proxy: ProxySpec
    seed: int = 0
    name: str | None = None
    target: Target = field(default_factory=Target)   # what Aioli steers toward (an eval-only set, weights)
    compare: bool = True     # also train the uniform mixture (same seed and budget) and judge the run against it


@dataclass
class OnlineOutcome:
    search: SearchRecord
    run_id: str
    result: RunResult
    average: Mixture
    schedule: Schedule
    reference_run: str | None = None
    versus: dict | None = None          # the online run's target against the uniform run's (evidence `versus`)


def start(ws: Workspace, request: OnlineRequest, say: Callable[[str], None] = lambda _: None) -> OnlineOutcome:
    """Validate everything, then train (DoReMi: the reference first) and record the job."""
    from proxies.runner import ProxyRunner
    from search.evaluators import chosen_eval_sets, search_domains

    config = build(method_config(request.method), request.options, f"online {request.method}")
    if {"reference", "reference_run"} <= set(request.options):
        raise MixerError("doremi takes reference (a mixture to train the reference run on) or reference_run "
                         "(a finished run), not both")
    names = list(search_domains(ws, request.proxy.domains))
    eval_sets = chosen_eval_sets(ws, request.proxy.eval_sets)
    objective = _objective(request.target, names, eval_sets)
    train = replace(request.proxy.train, seed=request.seed, init_seed=None,
                    threads=max(1, int(request.proxy.runner.cpus_per_run)))
    tokens_per_step = train.batch_size * train.seq_len
    make_controller(request.method, config, names, train.steps, tokens_per_step, {n: 0.0 for n in names}, objective)
    reference_losses = (_reference_run_losses(ws, config, names, f"{train.preset}:{train.tokens}")
                        if isinstance(config, DoReMiConfig) else None)
    reference_mixture = (_reference_mixture(config, names)
                         if isinstance(config, DoReMiConfig) and reference_losses is None else None)
    runner = ProxyRunner(ws.domains_dir, request.proxy.runner)
    runner.start()
    search = _create(ws, request, names, eval_sets, config)
    job = _Job(ws, search, runner, names, eval_sets, train, request.target)
    reference_result = None
    try:
        reference_run = getattr(config, "reference_run", "") or None
        if reference_mixture is not None:
            say(f"training the reference run on {_short(reference_mixture)}")
            reference_run, reference_result = job.run("reference", reference_mixture)
            if not reference_result.done:
                raise MixerError(f"the doremi reference run {reference_run} failed: {reference_result.error}")
            reference_losses = dict(reference_result.proxy.val_loss)   # the domains' only: DoReMi's excess losses
        say(f"training with {request.method} on {train.tokens:,} tokens")
        online = {"method": request.method, "config": to_data(config), "reference": reference_losses,
                  "objective": objective}
        run_id, result = job.run("online", Mixture.uniform(names), online)
        if not result.done:
            raise MixerError(f"online run {run_id} failed: {result.error}")
        versus = None
        if request.compare:
            uniform_reference = reference_mixture is not None and reference_mixture == Mixture.uniform(names)
            say("training the uniform mixture with the same seed and budget, to judge the online run against"
                if not uniform_reference else "judging the online run against its uniform reference run")
            versus = (job.versus(reference_run, reference_result, result) if uniform_reference else
                      job.versus(*job.run("uniform", Mixture.uniform(names)), result))
    except BaseException:
        set_search_status(ws.db_path, search.id, "failed", wait_s=WRITER_WAIT_S)
        raise
    report = result.proxy.online
    average, schedule = Mixture(report["average"]), Schedule.from_dict(report["schedule"])
    evidence = {"rule": "online", "method": request.method, "run": run_id, "reference_run": reference_run,
                "schedule": decisions_schedule(report), "schedule_with_probes": _schedule_with_tokens(report),
                "stages": len(report["stages"]), "versus": versus}
    write_recommendation(ws.db_path, search.id, average.as_dict(), None, None, evidence, wait_s=WRITER_WAIT_S)
    set_search_status(ws.db_path, search.id, "done", wait_s=WRITER_WAIT_S)
    return OnlineOutcome(search, run_id, result, average, schedule, reference_run, versus)


def _short(mixture: Mixture) -> str:
    return ", ".join(f"{n}={w:.2f}" for n, w in mixture.as_dict().items())


def _reference_mixture(config: DoReMiConfig, names: list[str]) -> Mixture:
    if config.reference == "uniform":
        return Mixture.uniform(names)
    try:
        return Mixture.parse(config.reference, known_domains=names)
    except MixerError as error:
        raise MixerError(f"doremi reference '{config.reference}': {error} (or use uniform)") from None


def _reference_run_losses(ws: Workspace, config: DoReMiConfig, names: list[str], fidelity: str
                          ) -> dict[str, float] | None:
    """The per-domain final losses of `reference_run`, checked: it finished, on these
    domains, with this job's preset and token budget (DoReMi's reference is the same model
    trained on the reference mixture)."""
    if not config.reference_run:
        return None
    row = run_summary(ws.db_path, config.reference_run)
    if row is None:
        raise MixerError(f"doremi reference_run '{config.reference_run}': no such run (see `mixer runs list`)")
    if row["status"] != "done":
        raise MixerError(f"doremi reference_run '{config.reference_run}' {row['status']}"
                         + (f": {row['error']}" if row.get("error") else "") + "; it needs a finished run")
    trained = f"{row['preset']}:{row['tokens']}" if row.get("preset") else "an imported run"
    if trained != fidelity:
        raise MixerError(f"doremi reference_run '{config.reference_run}' was trained as {trained}, not as this "
                         f"job's {fidelity}")
    finals = dict(row["final_values"] or {})
    if any(n not in finals for n in names):
        raise MixerError(f"doremi reference_run '{config.reference_run}' was measured on "
                         f"{', '.join(sorted(finals)) or 'no domains'}, not on this job's {', '.join(names)}")
    return {n: float(finals[n]) for n in names}


def _objective(target: Target, names: list[str], eval_sets: list[str]) -> dict[str, float] | None:
    """What the controller steers by: None for `avg` (each method's own objective), else the
    target's coefficients over the domains' and eval-only sets' losses."""
    target.check(names + eval_sets)
    if target.spec == "avg":
        return None
    if target.is_worst:
        raise MixerError("online methods steer by a weighted target; --target worst is not one (doremi's own "
                         "objective is group-robust already: use --method doremi without --target)")
    return target.terms(names, [{n: 0.0 for n in names + eval_sets}])


def _create(ws: Workspace, request: OnlineRequest, names: list[str], eval_sets: list[str], config) -> SearchRecord:
    from search.driver import store_named

    typed = {key: to_data(getattr(config, key)) for key in request.options}

    def record_named(name: str) -> SearchRecord:
        spec = SearchSpec(name=name, backend=request.method, options=typed, seed=request.seed, target=request.target,
                          budget=Budget(runs=1, parallel=1),
                          proxy=replace(request.proxy, domains=names, eval_sets=eval_sets, max_epochs=None))
        return SearchRecord(id=new_id("s"), name=name, kind=SearchKind.online, backend=request.method,
                            evaluator=EVALUATOR, config=spec.to_json(), target=request.target.spec, status="running")

    return store_named(ws, request.name, request.method, record_named)


def decisions_schedule(report: dict) -> dict:
    """The schedule of the method's own decisions, as `Schedule` reads it (each stage also
    with the tokens it starts at): Aioli's LearnParams probes are left out, the decision
    before a probe staying in force through it. What a larger run should follow: a probe
    measures the proxy, it is not a mixture the method chose."""
    total, names = report["total_steps"], report["names"]
    decided = {s["step"]: s for s in report["stages"] if s["phase"] != "probe" and s["step"] < total}
    return {"schedule": [{"start": step / total, "tokens": stage["tokens"],
                          "mixture": Mixture.normalized(dict(zip(names, stage["weights"]))).as_dict()}
                         for step, stage in sorted(decided.items())]}


def _schedule_with_tokens(report: dict) -> dict:
    """Every stage the run trained on (probes included) as `Schedule` reads them, each also
    with the tokens it starts at."""
    pieces = report["schedule"]["schedule"]
    starts = {round(stage["step"] / report["total_steps"], 12): stage["tokens"] for stage in report["stages"]}
    return {"schedule": [{**piece, "tokens": starts.get(round(piece["start"], 12))} for piece in pieces]}


class _Job:
    """Trains one run of the job on Ray and records it (status, metrics, trajectory)."""

    def __init__(self, ws: Workspace, search: SearchRecord, runner, names: list[str], eval_sets: list[str], train,
                 target: Target):
        self.ws, self.search, self.runner, self.names, self.train = ws, search, runner, names, train
        self.eval_sets, self.target = eval_sets, target

    def run(self, label: str, mixture: Mixture, online: dict | None = None) -> tuple[str, RunResult]:
        from proxies.runner import ProxyJob

        role = RunRole.online if online is not None else RunRole.baseline   # DoReMi's reference run
        run = RunRecord(id=f"{self.search.name}/{label}", search_id=self.search.id, mixture=mixture.as_dict(),
                        status="running", role=role, fidelity=f"{self.train.preset}:{self.train.tokens}",
                        preset=self.train.preset, tokens=self.train.tokens, seed=self.train.seed)
        write_runs(self.ws.db_path, [run], wait_s=WRITER_WAIT_S)
        job = ProxyJob(run.id, self.train, mixture, self.names, online, eval_sets=self.eval_sets)
        try:
            (_, proxy_result), = list(self.runner.run([job], parallel=1))
        except BaseException:
            run.status, run.error = "failed", "interrupted"
            write_runs(self.ws.db_path, [run], wait_s=WRITER_WAIT_S)
            raise
        result = RunResult.from_proxy(proxy_result)
        metrics = result_metrics(run.id, result)
        if result.done and online is not None:
            report = proxy_result.online
            run.mixture, run.schedule = report["average"], report["schedule"]
            metrics += trajectory_metrics(run.id, report)
        write_runs(self.ws.db_path, [finished_run(run, result, self.target_of(result))], metrics, wait_s=WRITER_WAIT_S)
        return run.id, result

    def target_of(self, result: RunResult) -> float | None:
        return self.target.value(result.values, self.names) if result.done else None

    def versus(self, static_run: str, static: RunResult, online: RunResult) -> dict:
        """The online run's target against a static uniform run's (same seed and budget)."""
        if not static.done:
            raise MixerError(f"the uniform run {static_run} failed: {static.error}")
        return {"run": static_run, "mixture": "uniform", "target": self.target.spec,
                "static": self.target_of(static), "online": self.target_of(online)}


def trajectory_metrics(run_id: str, report: dict) -> list[MetricRow]:
    """The controller's stages (split `weight`: each domain's weight from that step on) and
    the losses it was told (split `online`)."""
    names = report["names"]
    rows = [MetricRow(run_id, stage["step"], "weight", n, float(w), stage["tokens"])
            for stage in _last_per_step(report["stages"]) for n, w in zip(names, stage["weights"])]
    rows += [MetricRow(run_id, m["step"], "online", n, float(v), m["tokens"])
             for m in report["measurements"] for n, v in zip(report.get("measured", names), m["losses"])]
    return rows


def _last_per_step(stages: list[dict]) -> list[dict]:
    """Two stages set at one step (a prior replaced at step 0): the later one trained."""
    by_step = {}
    for stage in stages:
        by_step[stage["step"]] = stage
    return list(by_step.values())
