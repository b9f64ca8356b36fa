"""One driver per search: a lease file in the workspace names the process running it.

`<workspace>/leases/<search id>.json` holds the driver's pid, host and start time; its
modification time is the heartbeat (touched as results arrive). A second driver (two
`search resume` at once) is refused with the first one's pid and host. A lease whose
holder is dead is taken over: on this host when its pid no longer runs (kill -9), on
another host when its heartbeat is older than `STALE_AFTER_S`. A lock file rather than a
row in DuckDB: a reader holding the database must never block the check, and the file
disappears with the workspace.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from mixer.errors import MixerError
from mixer.processes import HOST, pid_alive
from mixer.workspace import Workspace

STALE_AFTER_S = 900.0


@dataclass(frozen=True)
class Lease:
    search: str            # the search's name (for messages)
    pid: int
    host: str
    started_at: float
    path: Path

    def alive(self) -> bool:
        if self.host == HOST:
            return pid_alive(self.pid)
        try:
            return time.time() - self.path.stat().st_mtime < STALE_AFTER_S
        except FileNotFoundError:
            return False

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started_at))
        return f"pid {self.pid} on {self.host} since {since}"


def lease_path(ws: Workspace, search_id: str) -> Path:
    return ws.root / "leases" / f"{search_id}.json"


def read_lease(ws: Workspace, search_id: str) -> Lease | None:
    return read_lease_at(lease_path(ws, search_id))


def acquire(ws: Workspace, search_id: str, search_name: str) -> Lease:
    """This process's lease on the search, taking over a dead holder's; refused (one line
    naming the holder) while a live driver holds it."""
    path = lease_path(ws, search_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    lease = Lease(search_name, os.getpid(), HOST, time.time(), path)
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = read_lease(ws, search_id)
            if holder is not None and holder.alive():
                raise MixerError(f"search '{search_name}' is already being run by {holder.describe()}; wait for it "
                                 f"or stop it (`mixer search cancel {search_name}`)") from None
            path.unlink(missing_ok=True)  # its driver died: take over
            continue
        with os.fdopen(fd, "w") as f:
            json.dump({k: v for k, v in asdict(lease).items() if k != "path"}, f)
        return lease
    raise MixerError(f"could not take the lease of search '{search_name}' ({path}); another driver is starting")


def heartbeat(lease: Lease) -> None:
    try:
        os.utime(lease.path)
    except FileNotFoundError:
        pass


def release(lease: Lease) -> None:
    """Remove the lease if it is still this driver's."""
    current = read_lease_at(lease.path)
    if current is not None and (current.pid, current.host) == (lease.pid, lease.host):
        lease.path.unlink(missing_ok=True)


def read_lease_at(path: Path) -> Lease | None:
    try:
        doc = json.loads(path.read_text())
        return Lease(doc["search"], int(doc["pid"]), str(doc["host"]), float(doc["started_at"]), path)
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def driver_state(ws: Workspace, search_id: str) -> str:
    """For `search status`: whether a driver runs the search now."""
    holder = read_lease(ws, search_id)
    if holder is None:
        return "none"
    if holder.alive():
        return f"alive: {holder.describe()}"
    return f"dead ({holder.describe()}); `mixer search resume` takes over"
