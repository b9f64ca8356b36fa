"""`mixer demo`: the whole product on a fresh machine, with nothing set up.

1. Builds domains from the environment's own text (DESIGN.md's built-in data: the standard
   library's source, C/C++ headers of installed packages, Python docs, licence files).
2. Runs a RegMix search with tiny proxies on the embedded Ray cluster, every run stored in
   the workspace's DuckDB file.
3. Trains the recommendation once more (validation) next to two baselines, the uniform and
   the token-share mixtures, at the same fidelity, and returns the comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mixer.domain import list_domains
from mixer.mixture import Mixture
from mixer.workspace import Workspace
from proxies.train import TrainConfig
from search import driver
from search.domains import ensure_builtin_domains
from search.spec import Budget, ProxySpec, SearchSpec
from store import next_search_name, proposed_run_ids, search_runs


@dataclass
class DemoConfig:
    runs: int = 16
    parallel: int = 2
    tokens: int = 600_000          # per tiny proxy run
    seq_len: int = 128
    batch_size: int = 16
    builtin_mb: float = 2.0        # text per built-in domain
    seed: int = 0


def run_demo(ws: Workspace, cfg: DemoConfig, progress: driver.ProgressCallback | None = None
             ) -> tuple[str, pd.DataFrame]:
    """Returns the search name and the comparison: one row per mixture with its target and
    per-domain held-out losses."""
    domains = ensure_builtin_domains(ws, int(cfg.builtin_mb * 1e6))
    train = TrainConfig(preset="tiny", tokens=cfg.tokens, seq_len=cfg.seq_len, batch_size=cfg.batch_size)
    spec = SearchSpec(name=next_search_name(ws.db_path, "demo"), backend="regmix", seed=cfg.seed, validate=True,
                      budget=Budget(runs=cfg.runs, parallel=cfg.parallel),
                      proxy=ProxySpec(train=train, domains=domains))
    search = driver.create(ws, spec)
    driver.run(ws, search.name, progress)
    metas = {m.name: m for m in list_domains(ws.domains_dir) if m.name in domains}
    baselines = {"uniform": Mixture.uniform(domains),
                 "token-share": Mixture.normalized({n: m.n_tokens for n, m in metas.items()})}
    driver.evaluate_extra(driver.SearchSession(ws, search), baselines)
    return search.name, _comparison(ws, search, domains)


def _comparison(ws: Workspace, search, domains: list[str]) -> pd.DataFrame:
    runs = search_runs(ws.db_path, search.id).set_index("run_id")
    rows = []
    for label in ("validation", "uniform", "token-share"):
        run = runs.loc[f"{search.name}/{label}"]
        rows.append({"mixture": "recommended" if label == "validation" else label, "avg_val_loss": run.target_value,
                     **{d: (run.final_values or {}).get(d) for d in domains},
                     "weights": run.mixture})
    best_search_run = runs[runs.index.isin(proposed_run_ids(ws.db_path, search.id))].target_value.min()
    rows.append({"mixture": "best search run", "avg_val_loss": best_search_run})
    return pd.DataFrame(rows)
