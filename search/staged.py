"""`search start --hierarchical`: a search over a tree of domains (mixer.hierarchy) in stages.

Stage 1 (`NAME.1`) mixes the parents: each top-level node of the search's domains is one
coordinate, a node holding several leaves a group of them at their token shares (as
`--level 0`). Then one stage per parent, heaviest first (`NAME.2`, ...): that parent's
leaves are free and every other top-level coordinate is fixed at its weight so far, so the
parent keeps its weight and only its split is searched; the answer so far is the stage's one
baseline (`previous`), which its answer must beat beyond the noise (search.guard). The last
stage is named NAME: its answer, expanded (search.groups), is the hierarchical search's, over
every leaf; `best`, `export` and `plot NAME` read it as any search's.

Budget: `--runs` proposed runs in all; half to stage 1 and the rest to the parents in
proportion to their stage-1 weights (a parent given fewer than MIN_STAGE_RUNS keeps its
leaves at token shares). `--validate` and `--replicates` run in the last stage. Each stage
is an ordinary search in the store, and the later stages follow from the earlier answers
alone, so `search resume NAME` carries on from the first unfinished stage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from mixer.bounds import WeightConstraints
from mixer.errors import MixerError
from mixer.workspace import Workspace
from search import driver
from search.backends import Recommendation
from search.evaluators import level_groups, search_domains
from search.groups import Groups, coordinates
from search.spec import SearchSpec, StageSpec
from store import SearchKind, SearchRecord, get_search, latest_recommendation, next_search_name, search_exists

MIN_STAGE_RUNS = 2
RunStage = Callable[[SearchRecord], "Recommendation | None"]   # runs one stage's search to its end
Answer = tuple[str, Recommendation]   # the search holding the hierarchical search's answer, and the answer


@dataclass(frozen=True)
class Stage:
    """A stage after the first: `parent`'s leaves searched with `runs` proposed runs."""

    index: int
    name: str
    parent: str
    runs: int


def start(ws: Workspace, spec: SearchSpec, run_stage: RunStage, say: Callable[[str], None]) -> Answer | None:
    """Create stage 1 of a hierarchical search from the user's `spec` and run every stage;
    the answer (None when a stage was cancelled)."""
    refuse_unstageable(spec)
    name = spec.name or default_name(ws, spec)
    for taken in (name, stage_name(name, 1)):
        if search_exists(ws.db_path, taken):
            raise MixerError(f"a search named '{taken}' exists; choose another --name")
    stage = StageSpec(of=name, runs=spec.budget.runs, validate=spec.validate, replicates=spec.budget.replicates)
    groups = level_groups(ws, replace(spec.proxy, level=0))   # the parents: `--level 0`, resolved once
    first = replace(spec, name=stage_name(name, 1), validate=False, stage=stage,
                    budget=replace(spec.budget, runs=first_stage_runs(spec.budget.runs), replicates=0),
                    proxy=replace(spec.proxy, groups=groups))
    parents = coordinates(list(search_domains(ws, spec.proxy.domains)), groups)
    if not groups:
        raise MixerError("--hierarchical mixes parents, then each parent's leaves, and no parent holds 2 or more of "
                         "the search's domains: it needs domains under parents (web/news, web/blogs), as `corpus "
                         "cluster` writes them")
    if len(parents) < 2:
        raise MixerError(f"the search's domains all lie under '{parents[0]}', so stage 1 has nothing to mix: search "
                         "them without --hierarchical")
    record = driver.create(ws, first)
    say(f"hierarchical search '{name}': stage 1 '{record.name}' mixes {', '.join(parents)}")
    return carry_on(ws, name, run_stage, say)


def refuse_unstageable(spec: SearchSpec) -> None:
    """What a hierarchical search cannot be, in one line each."""
    if spec.proxy is None:
        raise MixerError("--hierarchical searches a tree of domains on proxies; a table search replays its table")
    for given, flag in ((spec.reuse is not None, "--reuse"), (bool(spec.proxy.group_by), "--group"),
                        (spec.proxy.level is not None, "--level")):
        if given:
            raise MixerError(f"--hierarchical chooses its own coordinates at each stage; drop {flag}")
    if spec.budget.max_cost is not None:
        raise MixerError("--hierarchical splits --runs across its stages; drop --max-cost")
    if spec.budget.runs < 2 * MIN_STAGE_RUNS:
        raise MixerError(f"--hierarchical needs --runs {2 * MIN_STAGE_RUNS} or more (half for the parents, "
                         "the rest for their leaves)")


def first_stage_runs(runs: int) -> int:
    return max(MIN_STAGE_RUNS, runs // 2)


def stage_name(name: str, index: int) -> str:
    return f"{name}.{index}"


def default_name(ws: Workspace, spec: SearchSpec) -> str:
    """`BACKEND-hier-N`, the first N whose name and whose first stage's are both free."""
    prefix = f"{spec.backend}-hier"
    name = next_search_name(ws.db_path, prefix)
    while search_exists(ws.db_path, stage_name(name, 1)):
        name = f"{prefix}-{int(name.rsplit('-', 1)[1]) + 1}"
    return name


def hierarchy_of(ws: Workspace, ref: str) -> str | None:
    """The hierarchical search `ref` names or is a stage of; None for any other search."""
    if search_exists(ws.db_path, ref):
        record = get_search(ws.db_path, ref)
        stage = SearchSpec.from_json(record.config).stage if record.kind is SearchKind.search else None
        return stage.of if stage is not None else None
    return ref if search_exists(ws.db_path, stage_name(ref, 1)) else None


def refuse_unfinished_hierarchy(ws: Workspace, name: str) -> None:
    """When `name` is a hierarchical search whose last stage has not started: one line
    naming the stage it is at (its answer comes with the last stage, named `name`)."""
    if not search_exists(ws.db_path, stage_name(name, 1)):
        return
    index = 1
    while search_exists(ws.db_path, stage_name(name, index + 1)):
        index += 1
    raise MixerError(f"hierarchical search '{name}' is at stage {index}, '{stage_name(name, index)}' (`mixer search "
                     f"status {stage_name(name, index)}`); its answer comes with its last stage, '{name}' "
                     f"(`mixer search resume {name}` carries on)")


def carry_on(ws: Workspace, name: str, run_stage: RunStage, say: Callable[[str], None]) -> Answer | None:
    """Run hierarchical search `name` from its first unfinished stage to its last; the
    answer (None when a stage was cancelled). A finished one is refused, as any search is."""
    first_record = get_search(ws.db_path, stage_name(name, 1))
    driver.refuse_changed_corpus(ws, first_record)   # later stages build on stage 1's answer
    first = SearchSpec.from_json(first_record.config)
    answer = finished_answer(ws, first_record, run_stage)
    if answer is None:
        return None
    weights, shares = answer[0], dict(first.proxy.groups)
    stages = plan_stages(name, weights, shares, first.stage.runs - first.budget.runs)
    kept = [p for p in shares if p not in {s.parent for s in stages}]
    if kept and stages:
        say(f"the leaves of {', '.join(kept)} keep their token shares (too little weight for a stage of "
            f"{MIN_STAGE_RUNS} runs or more)")
    if not stages:
        say(f"stage 1 gave no weight to a parent with several leaves: its answer ('{first_record.name}') is the answer")
        return ran(first_record.name, answer[1])
    for stage in stages:
        spec = stage_spec(first, stage, weights, shares, last=stage is stages[-1])
        if search_exists(ws.db_path, stage.name):
            record = get_search(ws.db_path, stage.name)
        else:
            record = driver.create(ws, spec)
            say(f"stage {stage.index} '{stage.name}': the leaves of {stage.parent} (weight "
                f"{weights[stage.parent]:.3g}), {stage.runs} runs")
        answer = finished_answer(ws, record, run_stage)
        if answer is None:
            return None
        shares[stage.parent] = split_of(answer[0], shares[stage.parent])
    return ran(stages[-1].name, answer[1])


def ran(name: str, rec: Recommendation | None) -> Answer:
    if rec is None:
        raise MixerError(f"hierarchical search '{name}' is already finished; see `mixer best {name}`")
    return name, rec


def finished_answer(ws: Workspace, record: SearchRecord, run_stage: RunStage
                    ) -> tuple[dict[str, float], Recommendation | None] | None:
    """A stage's answer (its coordinates' weights, and the recommendation when it ran now):
    run to its end unless it is done; None when it was cancelled."""
    if record.status != "done":
        rec = run_stage(record)
        return None if rec is None else (rec.mixture.as_dict(), rec)
    stored = latest_recommendation(ws.db_path, record.id)
    if stored is None:
        raise MixerError(f"stage '{record.name}' ended without an answer (no finished runs): start the hierarchical "
                         "search again under another --name")
    return dict(stored["mixture"]), None


def plan_stages(name: str, weights: dict[str, float], groups: Groups, runs: int) -> list[Stage]:
    """The stages after the first: each parent (a group of stage 1) with weight, heaviest
    first, its share of `runs` in proportion to its weight (largest remainders); parents
    given fewer than MIN_STAGE_RUNS are left out, unless that leaves none (then the heaviest
    takes them all). The last stage is named `name`."""
    parents = sorted((p for p in groups if weights.get(p, 0.0) > 0), key=lambda p: (-weights[p], p))
    if not parents:
        return []
    exact = np.array([weights[p] for p in parents]) / sum(weights[p] for p in parents) * runs
    counts = np.floor(exact).astype(int)
    counts[np.argsort(-(exact - counts), kind="stable")[:runs - counts.sum()]] += 1
    kept = [(p, int(c)) for p, c in zip(parents, counts) if c >= MIN_STAGE_RUNS] or [(parents[0], runs)]
    return [Stage(index=i + 2, name=name if i == len(kept) - 1 else stage_name(name, i + 2), parent=p, runs=c)
            for i, (p, c) in enumerate(kept)]


def stage_spec(first: SearchSpec, stage: Stage, weights: dict[str, float], shares: Groups, last: bool
               ) -> SearchSpec:
    """The search of `stage.parent`'s leaves: every other stage-1 coordinate fixed at its
    weight (other parents as groups at their shares so far), the answer so far its baseline."""
    parent = stage.parent
    fixed = {c: float(w) for c, w in weights.items() if c != parent}
    previous = fixed | {leaf: float(weights[parent]) * s for leaf, s in shares[parent].items()}
    replicates = min(first.stage.replicates, stage.runs) if last else 0
    return replace(first, name=stage.name, validate=first.stage.validate and last,
                   constraints=WeightConstraints(fixed=fixed),
                   budget=replace(first.budget, runs=stage.runs, replicates=replicates),
                   proxy=replace(first.proxy, groups={p: s for p, s in shares.items() if p != parent}),
                   stage=replace(first.stage, index=stage.index, parent=parent, previous=previous))


def split_of(weights: dict[str, float], leaves: dict[str, float]) -> dict[str, float]:
    """A parent's leaves' shares in a stage's answer (their weights over their sum)."""
    total = sum(weights.get(leaf, 0.0) for leaf in leaves)
    return {leaf: weights.get(leaf, 0.0) / total for leaf in leaves} if total > 0 else dict(leaves)
