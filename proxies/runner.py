"""Running proxies on Ray.

`ray.init()` with no address starts an embedded local cluster (the default: nothing to set
up); `address` or `$RAY_ADDRESS` joins an existing one. Each run is one Ray task with
`cpus_per_run` CPUs (torch threads set to match) and, where present, a fraction of a GPU.

Domains reach workers by path when every node of the cluster is this machine (or shares
its filesystem: `domain_transport="path"`), else through Ray's object store: the driver
puts each domain's files once, and a worker materialises them in a local cache directory
keyed by content hash. Jobs and results cross the wire as plain JSON-able dicts.

With `swarm` > 1, runs of one dense preset and budget are packed into swarms trained as
one batched task (proxies.swarm); a swarm's results arrive together.

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
from mixer.names import domain_folder
from mixer.mixture import Mixture, Schedule
from proxies.config import ProxyResult, TrainConfig

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
    swarm: int | None = None                     # runs of one preset and budget trained as one batched task
                                                 # (None: presets.default_swarm, 1 on CPU)

    def __post_init__(self):
        self.domain_transport = DomainTransport(self.domain_transport)
        for name in ("cpus_per_run", "gpus_per_run"):
            if not 0 <= getattr(self, name) < float("inf"):
                raise MixerError(f"proxy.runner.{name} must be 0 or more, got {getattr(self, name)}")
        if self.swarm is not None and self.swarm < 1:
            raise MixerError(f"proxy.runner.swarm must be at least 1, got {self.swarm}")


@dataclass
class ProxyJob:
    """One run: where its domains are, what to train on, how."""

    run_id: str
    train: TrainConfig
    mixture: Mixture | Schedule
    domains: list[str]
    online: dict | None = None     # {"method", "config", "reference", "objective"}: an online controller chooses
                                   # the mixture
    eval_sets: list[str] = field(default_factory=list)   # eval-only sets measured beside the domains

    def to_wire(self) -> dict:
        mixture = (self.mixture.as_dict() if isinstance(self.mixture, Schedule)
                   else {"mixture": self.mixture.as_dict()})
        train = {**asdict(self.train), "lr_schedule": self.train.lr_schedule.value}
        return {"run_id": self.run_id, "train": train, "mixture": mixture, "domains": self.domains,
                "online": self.online, "eval_sets": self.eval_sets}


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


def _open_domains(domain_sources: dict) -> dict[str, Domain]:
    import ray

    domains = {}
    for name, source in domain_sources.items():
        # Ray resolves object refs only at the top level of a task's arguments.
        path = Path(source) if isinstance(source, str) else _materialise(name, ray.get(source))
        domains[name] = Domain.open(path)
    return domains


def _stamped(result: ProxyResult, started: float) -> dict:
    import ray

    result.started_at, result.finished_at = started, time.time()
    result.node, result.node_id = socket.gethostname(), ray.get_runtime_context().get_node_id()
    return result.to_dict()


def _split_sets(opened: dict[str, Domain], eval_sets: list[str]) -> tuple[dict[str, Domain], dict]:
    """Opened domains -> (the training domains, the eval-only sets' tokens by name)."""
    return ({n: d for n, d in opened.items() if n not in eval_sets},
            {n: d.val_tokens for n, d in opened.items() if n in eval_sets})


def run_job(wire: dict, domain_sources: dict) -> dict:
    """Worker side: open the domains, train, return the result as plain data."""
    from proxies.train import train_proxy

    started = time.time()
    try:
        train = TrainConfig(**wire["train"])
        domains, eval_sets = _split_sets(_open_domains(domain_sources), wire.get("eval_sets", []))
        result = train_proxy(train, domains, _mixture_from_wire(wire["mixture"]), eval_sets=eval_sets,
                             controller=_controller_from_wire(wire.get("online"), sorted(domains), train))
    except MixerError as exc:  # a bad config or bad data: deterministic, not retried
        result = ProxyResult.failed(str(exc))
    return _stamped(result, started)


def _controller_from_wire(online: dict | None, names: list[str], train: TrainConfig):
    from mixer.config import build
    from mixer.online import make_controller, method_config

    if online is None:
        return None
    config = build(method_config(online["method"]), online["config"], f"online {online['method']}")
    return make_controller(online["method"], config, names, train.steps, train.batch_size * train.seq_len,
                           online.get("reference"), online.get("objective"))


def run_swarm_job(wires: list[dict], domain_sources: dict) -> list[dict]:
    """Worker side of a swarm: the runs (same preset, budget and domains; own mixture and
    seed) trained as one batched computation (proxies.swarm); results in order."""
    from proxies.swarm import train_swarm

    started = time.time()
    try:
        train = TrainConfig(**wires[0]["train"])
        members = [(_mixture_from_wire(w["mixture"]), w["train"]["seed"]) for w in wires]
        domains, eval_sets = _split_sets(_open_domains(domain_sources), wires[0].get("eval_sets", []))
        results = train_swarm(train, domains, members, eval_sets=eval_sets)
    except MixerError as exc:
        results = [ProxyResult.failed(str(exc)) for _ in wires]
    return [_stamped(r, started) for r in results]


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
            if address:
                check_reachable(address)
            if not address:  # a private cluster on this machine: its token-auth notice is not actionable
                logging.getLogger("ray._private.authentication").setLevel(logging.ERROR)
            try:
                # "local" always starts a fresh embedded cluster, never a stale one left behind.
                ray.init(address=address or "local", num_cpus=None if address else self.cfg.num_cpus,
                         include_dashboard=False, log_to_driver=False, configure_logging=False,
                         namespace="mixer")
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise MixerError(f"cannot connect to Ray at {address}: {str(exc).splitlines()[0]}") from None
        self.check_feasible()
        self._remote = ray.remote(run_job).options(**self.task_options())

    def capacity(self) -> int:
        """Runs the cluster executes at once: per node, how many runs its CPUs and GPUs hold
        (times `swarm`, the runs one task trains)."""
        import ray

        from proxies.presets import SWARM_PER_GPU

        total = 0
        for node in (n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")):
            fits = [node.get("CPU", 0.0) // self.cfg.cpus_per_run if self.cfg.cpus_per_run else float("inf"),
                    node.get("GPU", 0.0) // self.cfg.gpus_per_run if self.cfg.gpus_per_run else float("inf")]
            total += int(min(min(fits), 1_000_000))
        per_task = self.cfg.swarm or (max(SWARM_PER_GPU.values()) if self.cfg.gpus_per_run > 0 else 1)
        return max(1, total) * per_task

    def check_feasible(self) -> None:
        """Fail now, not hang: Ray queues a task no node can hold forever (its warning hidden)."""
        import ray

        needs = {"CPU": self.cfg.cpus_per_run, "GPU": self.cfg.gpus_per_run, **self.cfg.resources}
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        for name, need in needs.items():
            most = max((node.get(name, 0.0) for node in nodes), default=0.0)
            if need and most < need:
                raise MixerError(f"a run asks for {need:g} {name}, but no node of the Ray cluster has more than "
                                 f"{most:g}; lower --cpus/--gpus or add nodes")

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
            path = self.domains_dir / domain_folder(name)
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
        return self._remote.remote(job.to_wire(), self._domain_sources(job.domains + job.eval_sets))

    def submit_swarm(self, jobs: list[ProxyJob]):
        import ray

        if self._remote is None:
            self.start()
        task = ray.remote(run_swarm_job).options(**self.task_options())
        return task.remote([j.to_wire() for j in jobs], self._domain_sources(jobs[0].domains + jobs[0].eval_sets))

    def _packs(self, jobs: list[ProxyJob]) -> list[list[ProxyJob]]:
        """Jobs grouped into swarms of up to `swarm` runs that differ only in mixture and
        seed (see proxies.swarm); singles, schedules and online runs stay single."""
        from proxies.presets import default_swarm

        groups: dict[str, list[ProxyJob]] = {}
        for job in jobs:
            key = json.dumps({**job.to_wire()["train"], "seed": 0, "domains": job.domains,
                              "eval_sets": job.eval_sets}, sort_keys=True)
            groups.setdefault(key, []).append(job)
        packs = []
        for group in groups.values():
            train = group[0].train
            size = self.cfg.swarm or default_swarm(train.preset, self.cfg.gpus_per_run,
                                                   train.batch_size * train.seq_len)
            if size == 1 or isinstance(group[0].mixture, Schedule) or group[0].online is not None:
                packs.extend([job] for job in group)
            else:
                packs.extend(group[i:i + size] for i in range(0, len(group), size))
        return packs

    def run(self, jobs: Iterable[ProxyJob], parallel: int | None = None) -> Iterator[tuple[ProxyJob, ProxyResult]]:
        """Yield (job, result) as runs finish, keeping at most `parallel` runs in flight (a
        swarm's runs finish together: a swarm stopped midway is trained again whole)."""
        import ray

        pending = self._packs(list(jobs))[::-1]
        in_flight: dict = {}
        limit = parallel or sum(map(len, pending)) or 1
        while pending or in_flight:
            while pending and (not in_flight or sum(map(len, in_flight.values())) + len(pending[-1]) <= limit):
                pack = pending.pop()
                in_flight[self.submit(pack[0]) if len(pack) == 1 else self.submit_swarm(pack)] = pack
            done, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in done:
                pack = in_flight.pop(ref)
                try:
                    answer = ray.get(ref)
                    results = [ProxyResult.from_dict(a) for a in (answer if isinstance(answer, list) else [answer])]
                except ray.exceptions.RayError as exc:  # retries exhausted
                    results = [ProxyResult.failed(f"worker failed: {worker_error(exc)}") for _ in pack]
                yield from zip(pack, results)


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """A Ray address (host:port, ray://host:port) must answer a TCP connect within seconds;
    `ray.init` would otherwise retry for minutes. "auto" and "local" are not checked."""
    if address in ("auto", "local"):
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise MixerError(f"cannot connect to Ray at {address}: expected HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise MixerError(f"cannot connect to Ray at {address}: {exc.strerror or exc}") from None


def worker_error(exc: BaseException) -> str:
    """The underlying cause of a Ray task failure as one plain line (no ANSI colours)."""
    cause = getattr(exc, "cause", None) or exc
    text = str(cause).strip()
    lines = [ln for ln in _ANSI.sub("", text).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.lstrip().startswith(("ray::", "Traceback", "File ", "^"))]
    return (useful[-1] if useful else lines[-1] if lines else type(cause).__name__).strip()
