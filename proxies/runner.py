"""Running proxies on Ray.

`ray.init()` with no address starts an embedded local cluster (the default: nothing to set
up); `address` or `$RAY_ADDRESS` joins an existing one. Each run is one Ray task with
`cpus_per_run` CPUs (torch threads set to match) and, where present, a fraction of a GPU.

Domains reach workers by path when every node of the cluster is this machine (or shares
its filesystem: `domain_transport="path"`), else through Ray's object store: the driver
puts each domain's files once, and a worker materialises them in a local cache directory
keyed by content hash. Jobs and results cross the wire as plain JSON-able dicts.

Results stream back as runs finish (`ray.wait`). A worker that dies is retried up to
`max_retries` times by Ray; deterministic failures (divergence, a bad config) come back as
failed results and are not retried.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

from mixer.domain import META, TRAIN_OFFSETS, TRAIN_TOKENS, VAL_OFFSETS, VAL_TOKENS, Domain, DomainMeta
from mixer.errors import MixerError
from mixer.mixture import Mixture, Schedule
from proxies.train import ProxyResult, TrainConfig

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_DOMAIN_FILES = (META, TRAIN_TOKENS, TRAIN_OFFSETS, VAL_TOKENS, VAL_OFFSETS)


class DomainTransport(str, Enum):
    auto = "auto"
    path = "path"
    object_store = "object_store"


@dataclass
class RunnerConfig:
    address: str | None = None                   # None: $RAY_ADDRESS, else an embedded local cluster
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0
    max_retries: int = 2                         # retries after a worker dies
    domain_transport: DomainTransport = DomainTransport.auto
    num_cpus: int | None = None                  # size of an embedded cluster (default: all cores)
    resources: dict[str, float] = field(default_factory=dict)  # extra per-run resources

    def __post_init__(self):
        self.domain_transport = DomainTransport(self.domain_transport)


@dataclass
class ProxyJob:
    """One run: where its domains are, what to train on, how."""

    run_id: str
    train: TrainConfig
    mixture: Mixture | Schedule
    domains: list[str]

    def to_wire(self) -> dict:
        mixture = (self.mixture.as_dict() if isinstance(self.mixture, Schedule)
                   else {"mixture": self.mixture.as_dict()})
        train = {**asdict(self.train), "lr_schedule": self.train.lr_schedule.value}
        return {"run_id": self.run_id, "train": train, "mixture": mixture, "domains": self.domains}


def _mixture_from_wire(doc: dict) -> Mixture | Schedule:
    return Schedule.from_dict(doc) if "schedule" in doc else Mixture(doc["mixture"])


def _materialise(name: str, files: dict[str, bytes]) -> Path:
    """Write shipped domain files into a per-node cache (once per content hash)."""
    meta = DomainMeta(**json.loads(files[META]))
    target = Path(tempfile.gettempdir()) / "mixer-domains" / meta.content_hash[:16] / name
    if not (target / META).exists():
        staging = target.with_name(f".{name}-{os.getpid()}")
        staging.mkdir(parents=True, exist_ok=True)
        for file_name, blob in files.items():
            (staging / file_name).write_bytes(blob)
        try:
            os.replace(staging, target)
        except OSError:  # another worker won the race
            pass
    return target


def run_job(wire: dict, domain_sources: dict) -> dict:
    """Worker side: open the domains, train, return the result as plain data."""
    import ray

    from proxies.train import train_proxy

    started = time.time()
    try:
        train = TrainConfig(**wire["train"])
        domains = {}
        for name, source in domain_sources.items():
            # Ray resolves object refs only at the top level of a task's arguments.
            path = Path(source) if isinstance(source, str) else _materialise(name, ray.get(source))
            domains[name] = Domain.open(path)
        result = train_proxy(train, domains, _mixture_from_wire(wire["mixture"]))
    except MixerError as exc:  # a bad config or bad data: deterministic, not retried
        result = ProxyResult.failed(str(exc))
    result.started_at, result.finished_at = started, time.time()
    result.node, result.node_id = socket.gethostname(), ray.get_runtime_context().get_node_id()
    return result.to_dict()


class ProxyRunner:
    """Submit proxy jobs to Ray and collect results as they finish."""

    def __init__(self, domains_dir: Path, cfg: RunnerConfig | None = None):
        self.domains_dir = Path(domains_dir)
        self.cfg = cfg or RunnerConfig()
        self._shipped: dict[str, object] = {}
        self._remote = None

    def start(self) -> None:
        import ray

        if not ray.is_initialized():
            address = self.cfg.address or os.environ.get("RAY_ADDRESS")
            if not address:  # a private cluster on this machine: its token-auth notice is not actionable
                logging.getLogger("ray._private.authentication").setLevel(logging.ERROR)
            try:
                # "local" always starts a fresh embedded cluster, never a stale one left behind.
                ray.init(address=address or "local", num_cpus=None if address else self.cfg.num_cpus,
                         include_dashboard=False, log_to_driver=False, configure_logging=False,
                         namespace="mixer")
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise MixerError(f"cannot connect to Ray at {address}: {str(exc).splitlines()[0]}") from None
        self._remote = ray.remote(run_job).options(**self.task_options())

    def task_options(self) -> dict:
        """Ray task options of every run: resources, and retries after worker deaths only."""
        return {"num_cpus": self.cfg.cpus_per_run, "num_gpus": self.cfg.gpus_per_run,
                "max_retries": self.cfg.max_retries, "retry_exceptions": False,
                "resources": self.cfg.resources or None}

    def _transport(self) -> DomainTransport:
        if self.cfg.domain_transport is not DomainTransport.auto:
            return self.cfg.domain_transport
        import ray

        here = {socket.gethostname(), "127.0.0.1", ray.util.get_node_ip_address()}
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        local = all(n.get("NodeManagerAddress") in here or n.get("NodeManagerHostname") in here for n in nodes)
        return DomainTransport.path if local else DomainTransport.object_store

    def _domain_sources(self, names: list[str]) -> dict:
        import ray

        transport = self._transport()
        sources = {}
        for name in names:
            path = self.domains_dir / name
            if not (path / META).exists():
                raise MixerError(f"unknown domain '{name}' (no {path / META})")
            if transport is DomainTransport.path:
                sources[name] = str(path.resolve())
            else:
                if name not in self._shipped:
                    self._shipped[name] = ray.put({f: (path / f).read_bytes() for f in _DOMAIN_FILES})
                sources[name] = self._shipped[name]
        return sources

    def submit(self, job: ProxyJob):
        if self._remote is None:
            self.start()
        return self._remote.remote(job.to_wire(), self._domain_sources(job.domains))

    def run(self, jobs: Iterable[ProxyJob], parallel: int | None = None) -> Iterator[tuple[ProxyJob, ProxyResult]]:
        """Yield (job, result) as runs finish, keeping at most `parallel` in flight."""
        import ray

        pending = list(jobs)[::-1]
        in_flight: dict = {}
        limit = parallel or len(pending) or 1
        while pending or in_flight:
            while pending and len(in_flight) < limit:
                job = pending.pop()
                in_flight[self.submit(job)] = job
            done, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in done:
                job = in_flight.pop(ref)
                try:
                    result = ProxyResult.from_dict(ray.get(ref))
                except ray.exceptions.RayError as exc:  # retries exhausted
                    result = ProxyResult.failed(f"worker failed: {worker_error(exc)}")
                yield job, result


def worker_error(exc: BaseException) -> str:
    """The underlying cause of a Ray task failure as one plain line (no ANSI colours)."""
    cause = getattr(exc, "cause", None) or exc
    text = str(cause).strip()
    lines = [ln for ln in _ANSI.sub("", text).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.lstrip().startswith(("ray::", "Traceback", "File ", "^"))]
    return (useful[-1] if useful else lines[-1] if lines else type(cause).__name__).strip()
