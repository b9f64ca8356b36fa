"""Evaluators turn queued runs into results.

- `ProxyEvaluator`: trains a proxy per run on Ray (proxies.runner) and measures every domain.
- `TableEvaluator`: answers from the runs of an imported search (`mixer runs import`), in
  pool mode: each proposal names a table entry, evaluated at most once. This is how
  search is benchmarked against published run tables.

Both follow `search.evaluation.Evaluator`: they yield (run, RunResult) as runs finish.
"""

from __future__ import annotations

import fnmatch

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from mixer.bounds import WeightBounds, WeightConstraints
from mixer.domain import DomainMeta, eval_only_sets, refuse_eval_only, training_domains
from mixer.errors import MixerError
from mixer.hierarchy import lies_under, nodes_at_level
from mixer.mixture import Mixture
from mixer.names import check_name
from mixer.sampling import SamplerConfig, prior_from_tokens, repetition_caps
from mixer.workspace import Workspace
from search.backends.base import FidelityUse
from search.evaluation import Evaluator, RunResult, RunStatus
from search.fidelity import Fidelities, proxy_fidelities, split_proxy_label, table_fidelities
from search.groups import Groups, coordinates, expand, group_caps, refuse_grouped, totals
from search.groups import checked as checked_groups
from search.runs import domains_of, weight_matrix
from search.space import Pool, SearchSpace
from search.spec import EvaluatorKind, ProxySpec, SearchSpec
from store import RunRecord, run_costs, search_runs
from store.reads import get_search


class ProxyEvaluator:
    """Trains each run's proxy (its preset, tokens and seed; the rest from the spec) on Ray."""

    instant = False

    def __init__(self, ws: Workspace, proxy: ProxySpec, parallel: int, domains: list[str], eval_sets: list[str]):
        from proxies.runner import ProxyRunner

        self.proxy, self.parallel, self.domains, self.eval_sets = proxy, parallel, domains, eval_sets
        self.runner = ProxyRunner(ws.domains_dir, proxy.runner)
        self.check_domains(ws)

    def check_domains(self, ws: Workspace) -> None:
        """Every domain and eval-only set opens and matches its hash (sizes and sampled
        blocks of every file, as the loader checks): a broken one fails the search at once
        instead of failing each of its runs."""
        from mixer.domain import Domain

        for name in self.domains + self.eval_sets:
            Domain.open(ws.domain_dir(name))

    def start(self) -> None:
        """Connect to Ray and check the run's resources before any run is marked running;
        keep no more runs in flight than the cluster executes at once."""
        self.runner.start()
        self.parallel = min(self.parallel, self.runner.capacity())

    def evaluate(self, runs: list[RunRecord]) -> Iterator[tuple[RunRecord, RunResult]]:
        from proxies.runner import ProxyJob

        by_id = {r.id: r for r in runs}
        threads = max(1, int(self.proxy.runner.cpus_per_run))
        jobs = [ProxyJob(r.id, replace(self.proxy.train, preset=r.preset, tokens=r.tokens, seed=r.seed,
                                       init_seed=r.init_seed, threads=threads),
                         Mixture(expand(r.mixture, self.proxy.groups)), self.domains, eval_sets=self.eval_sets)
                for r in runs]
        for job, result in self.runner.run(jobs, parallel=self.parallel):
            yield by_id[job.run_id], RunResult.from_proxy(result)


class TableEvaluator:
    """Answers a run with the final values of the table entry it names (its pool key)."""

    instant = True

    def __init__(self, table: pd.DataFrame):
        self.finals = {row.run_id: row.final_values for row in table.itertuples()}
        self.parallel = len(self.finals)

    def start(self) -> None:
        """Nothing to connect: the table is in the store."""

    def evaluate(self, runs: list[RunRecord]) -> Iterator[tuple[RunRecord, RunResult]]:
        for run in runs:
            if run.pool_key not in self.finals:
                yield run, RunResult.failed(f"table has no run '{run.pool_key}'")
            else:
                yield run, RunResult(RunStatus.done, values=dict(self.finals[run.pool_key]))


@dataclass
class BuiltSpace:
    space: SearchSpace
    measured: list[str]            # names a run reports (targets are checked against these)
    averaged: list[str]            # what `--target avg` averages: the domains whose held-out split measures
    eval_sets: list[str]           # eval-only sets every run measures (proxy searches)
    leaves: list[str] = field(default_factory=list)  # the domains a run trains on (a group's, expanded)


def build_space(ws: Workspace, spec: SearchSpec) -> BuiltSpace:
    """The space a search proposes in, from its spec and the workspace (the read side)."""
    return _table_space(ws, spec) if spec.evaluator is EvaluatorKind.table else _proxy_space(ws, spec)


def build_evaluator(ws: Workspace, spec: SearchSpec, space: SearchSpace) -> Evaluator:
    """What runs a search's proposals (the write side: only commands that train build one)."""
    if spec.evaluator is EvaluatorKind.table:
        return TableEvaluator(_table_runs(ws, spec.table.search))
    return ProxyEvaluator(ws, spec.proxy, spec.budget.parallel, list(search_domains(ws, spec.proxy.domains)),
                          chosen_eval_sets(ws, spec.proxy.eval_sets))


def _fidelity_use(backend: str) -> FidelityUse:
    from search.backends import BACKENDS, backend_classes

    if backend not in BACKENDS:
        return FidelityUse.any   # an unknown name fails elsewhere, in its own words
    return backend_classes(backend)[0].fidelities


def _check_backend_fidelities(backend: str, fidelity: Fidelities, table: bool) -> None:
    """Before costs are asked for: a single-fidelity backend cannot use several fidelities,
    nor a ladder backend (each mixture at every cheaper fidelity) a table's."""
    use = _fidelity_use(backend)
    if fidelity.multi and (use is FidelityUse.target or (table and use is FidelityUse.ladder)):
        runs = "runs one fidelity of a table" if use is FidelityUse.ladder else "searches one fidelity"
        others = "bayesopt" if table else "bayesopt or mixing_law"
        raise MixerError(f"backend {backend} {runs}, this search has {len(fidelity.labels)} "
                         f"({', '.join(map(str, fidelity.labels))}); use --backend {others} or one fidelity")


def search_domains(ws: Workspace, requested: list[str] | None) -> dict[str, DomainMeta]:
    """The domains a proxy search mixes (default: every training domain of the workspace,
    each a leaf: mixer.hierarchy); naming an eval-only set is refused."""
    metas = {m.name: m for m in training_domains(ws.domains_dir)}
    if not metas:
        raise MixerError(f"no domains in workspace {ws.root}; add some with `mixer corpus add` "
                         "or run `mixer demo`")
    if requested:
        refuse_eval_only([r for r in requested if r not in metas], [m.name for m in eval_only_sets(ws.domains_dir)],
                         "a search's --domains")
    names = expand_domain_patterns(requested, sorted(metas)) if requested else sorted(metas)
    return {n: metas[n] for n in names}


def chosen_eval_sets(ws: Workspace, requested: list[str] | None) -> list[str]:
    """The eval-only sets a proxy run measures: `--eval` names (each must be one), or every
    one of the workspace."""
    known = sorted(m.name for m in eval_only_sets(ws.domains_dir))
    if requested is None:
        return known
    unknown = [n for n in requested if n not in known]
    if unknown:
        raise MixerError(f"--eval names {', '.join(unknown)}, not an eval-only set of the workspace "
                         f"(known: {', '.join(known) or 'none; add one with `mixer corpus add NAME ... --eval-only`'})")
    return list(requested)


def token_share_groups(ws: Workspace, proxy: ProxySpec) -> Groups:
    """`--group NAME=PATTERN`: each group's domains (of the search's, by shell pattern) at
    their token shares, the mixture their parent source has: a search over sources, not
    their clusters."""
    metas = search_domains(ws, proxy.domains)
    groups = {}
    for name, pattern in proxy.group_by.items():
        check_name(name, "group")
        members = expand_domain_patterns([pattern], list(metas))
        if len(members) < 2:
            raise MixerError(f"--group {name}={pattern} holds {len(members)} domain; a group needs at least 2")
        groups[name] = at_token_shares(metas, members)
    return checked_groups(groups, list(metas))


def level_groups(ws: Workspace, proxy: ProxySpec) -> Groups:
    """`--level N`: each node at depth N over the search's domains (mixer.hierarchy) as one
    coordinate: a node holding several leaves is a group of them at their token shares (the
    mixture the node's own corpus has), a node holding one leaf is that leaf."""
    metas = search_domains(ws, proxy.domains)
    groups = {node: at_token_shares(metas, members)
              for node, members in nodes_at_level(list(metas), proxy.level).items() if len(members) > 1}
    return checked_groups(groups, list(metas))


def at_token_shares(metas: dict[str, DomainMeta], members: list[str]) -> dict[str, float]:
    """Domains at their token shares: the mixture the corpus they came from has."""
    total = sum(metas[m].n_tokens for m in members)
    return {m: metas[m].n_tokens / total for m in members}


def expand_domain_patterns(requested: list[str], known: list[str]) -> list[str]:
    """Names and shell-style patterns (`web-*`, a clustering's domains) -> known names, in
    the order given (a pattern's matches sorted), each once; anything unmatched is refused."""
    names: list[str] = []
    for item in requested:
        is_pattern = any(ch in item for ch in "*?[")
        matches = sorted(fnmatch.filter(known, item)) if is_pattern else [item] if item in known else []
        if not matches and any(lies_under(k, item) for k in known):
            raise MixerError(f"'{item}' is a parent, not a domain: --domains '{item}/*' takes its leaves "
                             f"(--level 0 searches it as one)")
        if not matches:
            raise MixerError(f"unknown domain{' pattern' if is_pattern else ''} '{item}' "
                             f"(known: {', '.join(known)})")
        names += [m for m in matches if m not in names]
    return names


def _proxy_space(ws: Workspace, spec: SearchSpec) -> BuiltSpace:
    from proxies.presets import preset_config

    metas = search_domains(ws, spec.proxy.domains)
    leaves = list(metas)
    groups = checked_groups(spec.proxy.groups, leaves)
    names = coordinates(leaves, groups)
    vocab_size = metas[leaves[0]].vocab_size
    for label in spec.proxy_fidelities:
        preset_config(split_proxy_label(label)[0], vocab_size)  # unknown presets fail here
    leaf_tokens = np.array([metas[n].n_tokens for n in leaves], dtype=np.float64)
    tokens = totals(leaves, leaf_tokens, groups)
    max_epochs, sampler = spec.proxy.max_epochs, SamplerConfig()
    caps = (group_caps(leaves, repetition_caps(leaf_tokens, spec.proxy.train.tokens, max_epochs), groups)
            if max_epochs else None)
    _check_backend_fidelities(spec.backend, Fidelities(spec.proxy_fidelities, spec.fidelity_label), table=False)
    fidelity = proxy_fidelities(spec.proxy_fidelities, spec.fidelity_label, vocab_size, spec.fidelity.costs)
    prior = prior_from_tokens(dict(zip(names, tokens)), sampler.temperature)
    eval_sets = chosen_eval_sets(ws, spec.proxy.eval_sets)
    refuse_eval_only(sorted(spec.constraints.names()), eval_sets, "--min/--max/--fix")
    refuse_grouped(sorted(spec.constraints.names()), groups)
    bounds = searchable_bounds(names, spec.constraints, caps)
    baselines = baselines_within(bounds, tokens, spec.constraints) if spec.standard_baselines else {}
    if spec.previous_answer:   # first: the design runs the baselines in order
        previous = Mixture(spec.previous_answer).vector(names)
        baselines = {"previous": previous if bounds.contains(previous)[0] else bounds.project(previous[None])[0],
                     **baselines}
    space = SearchSpace(domains=names, prior=np.array(list(prior.values())), sampler=sampler, fidelity=fidelity,
                        seed=spec.seed, bounds=bounds, budget_runs=spec.budget.runs, baselines=baselines)
    averaged = [n for n in leaves if metas[n].measurable] or leaves
    return BuiltSpace(space, leaves + eval_sets, averaged, eval_sets, leaves)


def searchable_bounds(domains: list[str], constraints: WeightConstraints, caps: np.ndarray | None = None
                      ) -> WeightBounds:
    """The weight bounds of a search, refused in one line when they leave nothing to search."""
    if len(domains) < 2:
        raise MixerError(f"a mixture search needs at least 2 domains, has {len(domains)} ({', '.join(domains)})")
    bounds = WeightBounds.of(domains, constraints, caps)
    if bounds.single_mixture:
        raise MixerError("the --min/--max/--fix bounds leave one mixture only: nothing to search")
    return bounds


def baselines_within(bounds: WeightBounds, tokens: np.ndarray, constraints: WeightConstraints
                     ) -> dict[str, np.ndarray]:
    """What an answer is compared with: uniform and token share [D]; under the user's
    constraints, each projected onto them and named so (`uniform-projected`): a baseline
    the user ruled out is no comparison."""
    plain = {"uniform": np.full(len(tokens), 1.0 / len(tokens)), "token-share": tokens / tokens.sum()}
    if not constraints:
        return plain
    return {name if bounds.contains(x)[0] else f"{name}-projected": bounds.project(x)[0] for name, x in plain.items()}


def _table_runs(ws: Workspace, name: str) -> pd.DataFrame:
    """The finished runs of table `name` (an imported search)."""
    source = get_search(ws.db_path, name)
    table = search_runs(ws.db_path, source.id)
    table = table[(table.status == "done") & table.final_values.notna()]
    if table.empty:
        raise MixerError(f"search '{name}' has no finished runs to answer from")
    return table.assign(table_id=source.id)


def check_table_direction(ws: Workspace, spec: SearchSpec, built: BuiltSpace) -> None:
    """A table search goes the way its values do, else it answers the worst entry as the
    best. `--maximize` at import says every metric of the table is a score: it is
    maximised. In a table imported without it, the losses (its --target, and a metric
    named as a domain: a domain's loss, which `avg` and `worst` cover) are minimised,
    while another metric (an accuracy beside the losses) may be maximised."""
    table = get_search(ws.db_path, spec.table.search)
    name, target = table.name, spec.target
    if table.direction == "maximize" and not target.maximize:
        scores = "; --target worst is a largest loss" if target.is_worst else ": search it with --maximize"
        raise MixerError(f"table '{name}' holds scores, higher is better (imported with --maximize){scores} (import "
                         "its losses under another --search name to minimise them)")
    domains = built.space.domains
    losses = [n for n in target.names(domains) if n in built.measured and (n in domains or n == table.target)]
    if table.direction == "minimize" and target.maximize and losses:
        raise MixerError(f"table '{name}' holds {', '.join(losses)} as losses, lower is better (imported without "
                         "--maximize): search them without --maximize")


def _table_space(ws: Workspace, spec: SearchSpec) -> BuiltSpace:
    table = _table_runs(ws, spec.table.search)
    fidelity = _table_fidelities(ws, spec, table, table.table_id.iloc[0])
    table = table[table.fidelity.isin(fidelity.labels) | (table.fidelity.isna() & (None in fidelity.labels))]
    domains = domains_of(table.mixture)
    bounds = searchable_bounds(domains, spec.constraints)
    within = bounds.contains(weight_matrix(table.mixture, domains))
    if not within.any():
        raise MixerError(f"no run of table '{spec.table.search}' meets the --min/--max/--fix constraints")
    table = table[within]
    X = weight_matrix(table.mixture, domains)
    pool = Pool(keys=list(table.run_id), X=X, fidelity=[None if pd.isna(f) else f for f in table.fidelity])
    space = SearchSpace(domains=domains, prior=X.mean(axis=0), pool=pool, fidelity=fidelity, seed=spec.seed,
                        bounds=bounds if spec.constraints else None, budget_runs=spec.budget.runs)
    return BuiltSpace(space, sorted({k for f in table.final_values for k in f}), domains, [])


def _table_fidelities(ws: Workspace, spec: SearchSpec, table: pd.DataFrame, table_id: str) -> Fidelities:
    """The table's labels the search uses (all, or --fidelities), and its target: the one
    label, or --target-fidelity. A single-fidelity backend uses the target alone."""
    fid, name = spec.fidelity, spec.table.search
    present = sorted({f for f in table.fidelity if isinstance(f, str)})
    if not present:
        if fid.labels or fid.target:
            raise MixerError(f"the runs of table '{name}' have no fidelity labels")
        return Fidelities.single(None)
    unknown = [f for f in (fid.labels or []) + [fid.target or present[0]] if f not in present]
    if unknown:
        raise MixerError(f"table '{name}' has no runs at fidelity {', '.join(unknown)} "
                         f"(it has {', '.join(present)})")
    labels = fid.labels or present
    target = fid.target or (labels[0] if len(labels) == 1 else None)
    if target is None:
        raise MixerError(f"table '{name}' has fidelities {', '.join(labels)}: choose one with fidelity.target")
    if not fid.labels and _fidelity_use(spec.backend) is not FidelityUse.any:
        labels = [target]
    _check_backend_fidelities(spec.backend, Fidelities(labels, target), table=True)  # before asking for costs
    strangers = sorted(set(fid.costs) - set(present))
    if strangers:
        raise MixerError(f"--fidelity-cost names {', '.join(strangers)}, not a fidelity of table '{name}' "
                         f"({', '.join(present)})")
    costs = {label: cost for label, cost in fid.costs.items() if label in labels}  # the table's others: unused here
    return table_fidelities(labels, target, costs, run_costs(ws.db_path, labels, table_id))
