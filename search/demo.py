"""`mixer demo`: the whole product on a fresh machine, with nothing set up.

1. Builds domains from the environment's own text (the built-in data: the standard
   library's source, C/C++ headers of installed packages, Python docs, licence files), and
   an eval-only target set no domain is: standard-library modules the `python` domain does
   not read, two parts their docstrings and one part their code (mixer.builtin,
   `stdlib-tail`). A user's question in miniature: "which mix of my sources makes the best
   model of this text I must be good at, and never train on?" Documentation with code in
   it, it is covered partly by `docs` and partly by `python`; neither alone, nor uniform,
   is the answer.
2. Runs a mixing-law search (Data Mixing Laws' log-linear law, olmix's KL-regularised
   optimum) with tiny proxies on the embedded Ray cluster, every run stored in the
   workspace's DuckDB file, minimising the target set's held-out loss. On this target the
   loss is flat along the docs-python edge, and a 16-run regmix search answered from its
   ends (python 0.84, docs 0.80), within noise of the middle; the law's design measures the
   middle, and its answers were real mixtures (docs 0.55 / python 0.40, docs 0.48 /
   python 0.45 in two seeds).
3. Trains the recommendation (search.guard chose it) next to two baselines, the uniform and
   the token-share mixtures, each with 3 replicate seeds (the same seeds for all three) at
   the search's fidelity, and says whether each win is larger than the seed noise of the
   comparison (search.compare).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mixer.builtin import BUILTIN_EVAL_SETS, BUILTINS
from mixer.errors import MixerError
from mixer.mixture import Mixture
from mixer.workspace import Workspace
from proxies.config import TrainConfig
from search import driver
from search.backends import Recommendation, backend_classes
from search.backends.base import near, to_mixture
from search.compare import SeedStats, Verdict, verdict
from search.domains import ensure_builtin_domains
from search.extra_runs import ExtraRun, evaluate_extra
from search.session import SearchSession
from search.spec import Budget, ProxySpec, SearchSpec
from search.targets import Target
from store import next_search_name, run_costs, search_runs
from store.records import RunRole


@dataclass
class DemoConfig:
    runs: int = 16
    parallel: int = 2
    tokens: int = 1_200_000        # per tiny proxy run (600k: seed std 0.058 on uniform; 1.2M: 0.031)
    seq_len: int = 128
    batch_size: int = 16
    builtin_mb: float = 2.0        # text per built-in domain
    eval_tokens: int = 65_536      # of the target set measured at the end of each run
    seeds: int = 3                 # replicate seeds of the recommendation and of each baseline
    seed: int = 0
    backend: str = "mixing_law"    # the search method (search.backends); see the module docstring
    target: str = "stdlib-tail"     # what the search minimises (search.targets): the eval set, a domain, avg, worst

    def __post_init__(self):  # a mistake is refused before minutes of building domains
        Target(self.target).check(BUILTINS + BUILTIN_EVAL_SETS)
        backend_classes(self.backend)
        Budget(runs=self.runs, parallel=self.parallel)
        if self.seeds < 1:
            raise MixerError(f"demo seeds must be at least 1, got {self.seeds}")


@dataclass
class DemoResult:
    search: str
    table: pd.DataFrame            # one row per mixture: the target's mean and std over seeds, per-domain means
                                   # (the search's own runs share one initialisation; these vary it)
    verdicts: list[Verdict]        # the recommendation against each baseline
    recommendation: Recommendation  # as the search gave it (its evidence says how it was chosen)

    @property
    def same_as(self) -> str | None:
        """The baseline the recommendation is, if it is one."""
        return next((v.baseline for v in self.verdicts if v.same_mixture), None)


def run_demo(ws: Workspace, cfg: DemoConfig, progress: driver.ProgressCallback | None = None,
             say: Callable[[str], None] = lambda _: None, name: str | None = None) -> DemoResult:
    """The demo; its search is `name` (default: demo-N, the first N not taken)."""
    say("building domains and the target set from built-in data (stored once per workspace)")
    domains = ensure_builtin_domains(ws, int(cfg.builtin_mb * 1e6))
    ensure_builtin_domains(ws, int(cfg.builtin_mb * 1e6), BUILTIN_EVAL_SETS, eval_only=True)
    train = TrainConfig(preset="tiny", tokens=cfg.tokens, seq_len=cfg.seq_len, batch_size=cfg.batch_size,
                        eval_tokens=cfg.eval_tokens)
    spec = SearchSpec(name=name or next_search_name(ws.db_path, "demo"), backend=cfg.backend, seed=cfg.seed,
                      validate=False,
                      budget=Budget(runs=cfg.runs, parallel=cfg.parallel), target=Target(cfg.target),
                      proxy=ProxySpec(train=train, domains=domains))
    search = driver.create(ws, spec)
    say(f"searching: {cfg.runs} tiny proxy runs on Ray")
    rec = driver.run(ws, search.name, progress)
    session = SearchSession(ws, search)
    space = session.setup.space
    same_as = next((b for b, x in space.baselines.items() if near(x, rec.mixture.vector(space.domains))[0]), None)
    baselines = {b: to_mixture(space.domains, x) for b, x in space.baselines.items()}
    mixtures = baselines if same_as else {"recommended": rec.mixture, **baselines}  # a baseline is measured once
    say(f"measuring {'the recommendation and ' if not same_as else ''}both baselines with {cfg.seeds} seeds each "
        f"({cfg.seeds * len(mixtures)} runs{_estimate(ws, search, cfg.seeds * len(mixtures), cfg.parallel)})")
    roles = {label: RunRole.validation if label == "recommended" else RunRole.baseline for label in mixtures}
    extra = evaluate_extra(session, mixtures, roles, seeds=cfg.seeds,
                           progress=lambda done, total: say(f"measured {done}/{total} runs"))
    table, stats = _comparison(ws, search, domains + list(BUILTIN_EVAL_SETS), mixtures, extra)
    if same_as:
        stats["recommended"] = stats[same_as]
        row = table[table.mixture == same_as].assign(mixture=f"recommended = {same_as}")
        table = pd.concat([row, table], ignore_index=True)
    verdicts = [verdict(stats["recommended"], stats[b], session.setup.target, same_mixture=b == same_as)
                for b in baselines]
    return DemoResult(search.name, table, verdicts, rec)


def _estimate(ws: Workspace, search, runs: int, parallel: int) -> str:
    """', about N min' at the pace of the search's own runs (empty before any finished)."""
    fidelities = [f for f in search_runs(ws.db_path, search.id).fidelity.dropna().unique()]
    seconds = run_costs(ws.db_path, fidelities)
    if not seconds:
        return ""
    return f", about {max(1, round(max(seconds.values()) * runs / max(1, parallel) / 60))} min"


def _comparison(ws: Workspace, search, domains: list[str], mixtures: dict[str, Mixture],
                extra: dict[str, ExtraRun]) -> tuple[pd.DataFrame, dict[str, SeedStats]]:
    runs = search_runs(ws.db_path, search.id).set_index("run_id")
    rows, stats = [], {}
    for label in mixtures:
        seeded = [runs.loc[run.run_id] for key, run in extra.items() if key.split("/")[0] == label]
        stats[label] = SeedStats(label, tuple(float(r.target_value) for r in seeded))
        rows.append({"mixture": label, "target": stats[label].mean, "std": stats[label].std,
                     "seeds": len(seeded),
                     **{d: float(np.mean([r.final_values[d] for r in seeded])) for d in domains}})
    return pd.DataFrame(rows), stats
