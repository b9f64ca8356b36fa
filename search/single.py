"""`mixer proxy train`: one proxy run on Ray, recorded in the store like any other run."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from mixer.domain import list_domains
from mixer.errors import MixerError
from mixer.mixture import Mixture
from mixer.workspace import Workspace
from proxies.runner import ProxyJob, ProxyRunner, RunnerConfig
from proxies.train import TrainConfig
from search.recording import finished_run, result_metrics
from store import RunRecord, SearchRecord, config_hash, new_id, open_db, write_runs
from store.db import first_row
from store.writes import insert_search

MANUAL_SEARCH = "proxy-train"


def _manual_search_id(ws: Workspace) -> str:
    with open_db(ws.db_path) as con:
        row = first_row(con, "SELECT id FROM searches WHERE name = ?", [MANUAL_SEARCH])
        if row:
            return row[0]
        record = SearchRecord(id=new_id("s"), name=MANUAL_SEARCH, backend="manual", evaluator="proxy",
                              target="avg", status="running")
        insert_search(con, record)
        return record.id


def train_one(ws: Workspace, mixture_text: str, train: TrainConfig, runner_cfg: RunnerConfig) -> tuple[str, dict]:
    """Train one proxy on `mixture_text`, measure it on every domain, store the run."""
    names = [m.name for m in list_domains(ws.domains_dir)]
    if not names:
        raise MixerError(f"no domains in workspace {ws.root}; add one with `mixer corpus add`")
    mixture = Mixture.parse(mixture_text, known_domains=names)
    run = RunRecord(id=new_id("r"), search_id=_manual_search_id(ws), mixture=mixture.as_dict(),
                    status="running", fidelity=f"{train.preset}:{train.tokens}", preset=train.preset,
                    tokens=train.tokens, seed=train.seed,
                    config_hash=config_hash({"train": asdict(train), "mixture": mixture.as_dict()}))
    write_runs(ws.db_path, [run])
    runner = ProxyRunner(ws.domains_dir, runner_cfg)
    job = ProxyJob(run.id, train, mixture, names)
    try:
        (_, result), = list(runner.run([job]))
    except BaseException:
        run.status, run.error = "failed", "interrupted"
        write_runs(ws.db_path, [run])
        raise
    losses = result.get("val_loss") or {}
    target = float(np.mean(list(losses.values()))) if losses else None
    write_runs(ws.db_path, [finished_run(run, result, target)], result_metrics(run.id, result))
    return run.id, result
