"""Evaluators turn queued runs into results.

- `ProxyEvaluator`: trains a proxy per run on Ray (proxies.runner) and measures every domain.
- `TableEvaluator`: answers from the runs of an imported search (`mixer runs import`), in
  pool mode: each proposal names a table entry, evaluated at most once. This is how
  search is benchmarked against published run tables.

Both yield (run, result) pairs as runs finish; a result has `status`, `val_loss` (the final
values) and, for proxies, everything `train_proxy` measured.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mixer.domain import list_domains
from mixer.errors import MixerError
from mixer.mixture import Mixture
from mixer.sampling import prior_from_tokens
from mixer.workspace import Workspace
from search.fidelity import Fidelities, proxy_fidelities, split_proxy_label, table_fidelities
from search.space import Pool, SearchSpace
from search.spec import EvaluatorKind, SearchSpec
from store import RunRecord, run_seconds, search_runs
from store.reads import get_search


class ProxyEvaluator:
    def __init__(self, ws: Workspace, spec: SearchSpec, domains: list[str]):
        from proxies.runner import ProxyRunner, RunnerConfig

        self.spec, self.domains = spec, domains
        self.runner = ProxyRunner(ws.domains_dir, RunnerConfig(
            address=spec.ray_address, cpus_per_run=spec.cpus_per_run, gpus_per_run=spec.gpus_per_run))

    def evaluate(self, runs: list[RunRecord]) -> Iterator[tuple[RunRecord, dict]]:
        from proxies.runner import ProxyJob
        from proxies.train import TrainConfig

        by_id = {r.id: r for r in runs}
        jobs = [ProxyJob(r.id, TrainConfig(preset=r.preset, tokens=r.tokens, seq_len=self.spec.seq_len,
                                           batch_size=self.spec.batch_size, lr=self.spec.lr, seed=r.seed,
                                           threads=max(1, int(self.spec.cpus_per_run))),
                         Mixture(r.mixture), self.domains) for r in runs]
        for job, result in self.runner.run(jobs, parallel=self.spec.parallel):
            yield by_id[job.run_id], result


class TableEvaluator:
    def __init__(self, table: pd.DataFrame):
        self.finals = {row.run_id: row.final_values for row in table.itertuples()}

    def evaluate(self, runs: list[RunRecord]) -> Iterator[tuple[RunRecord, dict]]:
        for run in runs:
            if run.pool_key not in self.finals:
                yield run, {"status": "failed", "error": f"table has no run '{run.pool_key}'"}
            else:
                yield run, {"status": "done", "val_loss": dict(self.finals[run.pool_key])}


@dataclass
class SearchContext:
    space: SearchSpace
    evaluator: ProxyEvaluator | TableEvaluator
    measured: list[str]            # names a run reports (targets are checked against these)


def build_context(ws: Workspace, spec: SearchSpec) -> SearchContext:
    return _table_context(ws, spec) if spec.evaluator is EvaluatorKind.table else _proxy_context(ws, spec)


def _multi_fidelity_backend(backend: str) -> bool:
    from search.backends import REGISTRY

    return backend not in REGISTRY or REGISTRY[backend][0].multi_fidelity  # unknown names fail elsewhere


def _check_backend_fidelities(backend: str, fidelity: Fidelities) -> None:
    """Before costs are asked for: a single-fidelity backend cannot use several fidelities."""
    if fidelity.multi and not _multi_fidelity_backend(backend):
        raise MixerError(f"backend {backend} searches one fidelity, this search has {len(fidelity.labels)} "
                         f"({', '.join(map(str, fidelity.labels))}); use --backend bayesopt or one fidelity")


def _proxy_context(ws: Workspace, spec: SearchSpec) -> SearchContext:
    from proxies.presets import preset_config

    metas = {m.name: m for m in list_domains(ws.domains_dir)}
    if not metas:
        raise MixerError(f"no domains in workspace {ws.root}; add some with `mixer corpus add` "
                         "or run `mixer demo`")
    names = spec.domains or sorted(metas)
    unknown = [n for n in names if n not in metas]
    if unknown:
        raise MixerError(f"unknown domain(s): {', '.join(unknown)} (known: {', '.join(sorted(metas))})")
    if len(names) < 2:
        raise MixerError("a mixture search needs at least 2 domains")
    from mixer.sampling import SamplerConfig

    tokens = {n: metas[n].n_tokens for n in names}
    if spec.max_epochs * sum(tokens.values()) < spec.tokens:
        raise MixerError(f"--tokens {spec.tokens} would repeat these domains ({sum(tokens.values())} tokens) "
                         f"more than --max-epochs {spec.max_epochs:g} times whatever the mixture")
    vocab_size = metas[names[0]].vocab_size
    for label in spec.proxy_fidelities:
        preset_config(split_proxy_label(label)[0], vocab_size)  # unknown presets fail here
    _check_backend_fidelities(spec.backend, Fidelities(spec.proxy_fidelities, spec.fidelity_label))
    fidelity = proxy_fidelities(spec.proxy_fidelities, spec.fidelity_label, vocab_size, spec.fidelity_costs)
    sampler = SamplerConfig(token_budget=spec.tokens, max_epochs=spec.max_epochs)
    space = SearchSpace(domains=names, prior=np.array(list(prior_from_tokens(tokens, sampler.temperature).values())),
                        sampler=sampler, fidelity=fidelity,
                        caps=np.array([spec.max_epochs * tokens[n] / spec.tokens for n in names]))
    return SearchContext(space, ProxyEvaluator(ws, spec, names), names)


def _table_context(ws: Workspace, spec: SearchSpec) -> SearchContext:
    source = get_search(ws.db_path, spec.table)
    table = search_runs(ws.db_path, source.id)
    table = table[(table.status == "done") & table.final_values.notna()]
    if table.empty:
        raise MixerError(f"search '{spec.table}' has no finished runs to answer from")
    fidelity = _table_fidelities(ws, spec, table)
    table = table[table.fidelity.isin(fidelity.labels) | (table.fidelity.isna() & (None in fidelity.labels))]
    domains = sorted({d for m in table.mixture for d in m})
    X = np.array([[m.get(d, 0.0) for d in domains] for m in table.mixture])
    pool = Pool(keys=list(table.run_id), X=X, fidelity=[None if pd.isna(f) else f for f in table.fidelity])
    space = SearchSpace(domains=domains, prior=X.mean(axis=0), pool=pool, fidelity=fidelity)
    measured = sorted({k for f in table.final_values for k in f})
    return SearchContext(space, TableEvaluator(table), measured)


def _table_fidelities(ws: Workspace, spec: SearchSpec, table: pd.DataFrame) -> Fidelities:
    """The table's labels the search uses (all, or --fidelities), and its target: the one
    label, or --target-fidelity. A single-fidelity backend uses the target alone."""
    present = sorted({f for f in table.fidelity if isinstance(f, str)})
    if not present:
        if spec.fidelities or spec.target_fidelity:
            raise MixerError(f"the runs of table '{spec.table}' have no fidelity labels")
        return Fidelities.single(None)
    unknown = [f for f in (spec.fidelities or []) + [spec.target_fidelity or present[0]] if f not in present]
    if unknown:
        raise MixerError(f"table '{spec.table}' has no runs at fidelity {', '.join(unknown)} "
                         f"(it has {', '.join(present)})")
    labels = spec.fidelities or present
    target = spec.target_fidelity or (labels[0] if len(labels) == 1 else None)
    if target is None:
        raise MixerError(f"table '{spec.table}' has fidelities {', '.join(labels)}: choose one with --target-fidelity")
    if not spec.fidelities and not _multi_fidelity_backend(spec.backend):
        labels = [target]
    _check_backend_fidelities(spec.backend, Fidelities(labels, target))  # before asking for costs
    return table_fidelities(labels, target, spec.fidelity_costs, run_seconds(ws.db_path, labels))
