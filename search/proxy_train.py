"""`mixer proxy train`: one proxy run on a mixture, stored as a one-run search of kind
`proxy-train` (`proxy-train-N`) so that `runs`, `sql` and `best` see it like any run."""

from __future__ import annotations

import os
from dataclasses import replace

from mixer.domain import eval_only_sets, refuse_eval_only
from mixer.errors import MixerError
from mixer.mixture import Mixture
from mixer.workspace import Workspace
from search.driver import create
from search.evaluation import RunResult
from search.evaluators import search_domains
from search.extra_runs import evaluate_extra
from search.session import SearchSession
from search.spec import Budget, ProxySpec, SearchSpec
from store import get_search, next_search_name, set_search_status
from store.db import WRITER_WAIT_S
from store.records import RunRole, SearchKind


def train_mixture(ws: Workspace, mixture_text: str, proxy: ProxySpec) -> tuple[str, RunResult]:
    """Train one proxy on every domain of the workspace; returns the run id and its result."""
    names = list(search_domains(ws, proxy.domains))
    refuse_eval_only(Mixture.parse(mixture_text).names, [m.name for m in eval_only_sets(ws.domains_dir)],
                     "a training mixture")
    mixture = Mixture.parse(mixture_text, known_domains=names)
    _check_local_device(proxy)
    spec = SearchSpec(name=next_search_name(ws.db_path, "proxy-train"), backend="random",
                      budget=Budget(runs=1, parallel=1), seed=proxy.train.seed,
                      proxy=replace(proxy, domains=names, max_epochs=None))
    record = create(ws, spec, min_domains=1, kind=SearchKind.proxy_train)
    session = SearchSession(ws, get_search(ws.db_path, record.id))
    set_search_status(ws.db_path, record.id, "running", wait_s=WRITER_WAIT_S)
    status = "failed"
    try:
        extra = evaluate_extra(session, {"run": mixture}, RunRole.train)["run"]
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
