"""A workspace for the web view, built without Ray in a few seconds: imported runs (one
domain named like an HTML tag), a finished table search over them, and a search held
`running` by this process's lease, to which a test adds runs as a driver would."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT, mixer_cli

HOSTILE = "<script>alert(1)</script>"   # a domain name from a CSV column: must render as text


@dataclass
class WebWorkspace:
    root: Path
    finished: str = "tsearch"
    running: str = "live"
    imported: str = "tbl"


def _runs_csv(path: Path, n: int = 60, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(4), n)
    frame = pd.DataFrame(weights, columns=["w_web", "w_code", f"w_{HOSTILE}", "w_math"])
    frame.insert(0, "id", [f"r{i}" for i in range(n)])
    frame["m_loss"] = 3 + weights @ np.array([0.1, -0.3, 0.2, 0.05]) + rng.normal(0, 0.01, n)
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def web_workspace(tmp_path_factory) -> WebWorkspace:
    root = tmp_path_factory.mktemp("web") / "ws"
    ws = WebWorkspace(root)
    csv = _runs_csv(root.parent / "runs.csv")
    for args in (["runs", "import", str(csv), "--search", ws.imported, "--weight-prefix", "w_", "--metric-prefix",
                  "m_", "--id-column", "id", "--target", "loss"],
                 ["search", "start", "--evaluator", "table", "--table", ws.imported, "--runs", "8", "--parallel", "8",
                  "--name", ws.finished]):
        result = mixer_cli(*args, workspace=root)
        assert result.returncode == 0, result.stderr
    from mixer.config import build
    from mixer.workspace import open_workspace
    from search import driver
    from search.spec import SearchSpec

    spec = build(SearchSpec, {"name": ws.running, "backend": "random", "budget": {"runs": 4},
                              "table": {"search": ws.imported}}, "search")
    driver.create(open_workspace(root, create=False), spec)   # stored, not run: a LiveDriver runs it
    return ws


class LiveDriver:
    """Stands in for a search driver: holds the search's lease, marks it running, and
    writes runs into it through the store's own write path."""

    def __init__(self, root: Path, name: str):
        from mixer.workspace import open_workspace
        from search.lease import acquire
        from store import get_search, set_search_status

        self.ws = open_workspace(root, create=False)
        self.record = get_search(self.ws.db_path, name)
        self.lease = acquire(self.ws, self.record.id, name)
        set_search_status(self.ws.db_path, self.record.id, "running")
        self.added = 0

    def add_run(self, loss: float) -> str:
        from store import MetricRow, RunRecord, write_runs

        self.added += 1
        run_id = f"{self.record.name}/{9000 + self.added:04d}"
        mixture = {"web": 0.25, "code": 0.25, HOSTILE: 0.25, "math": 0.25}
        write_runs(self.ws.db_path, [RunRecord(id=run_id, search_id=self.record.id, mixture=mixture, status="done",
                                               target=loss)],
                   [MetricRow(run_id, 0, "val", "loss", loss), MetricRow(run_id, 0, "perf", "wall_s", 1.5)])
        return run_id

    def stop(self) -> None:
        from search.lease import release
        from store import set_search_status

        set_search_status(self.ws.db_path, self.record.id, "done")
        release(self.lease)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    """`mixer serve` in a subprocess (the real CLI on uvicorn); its URL once it answers."""
    import urllib.request

    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", "import cli; cli.app()", "serve", "--workspace", str(root),
                                "--port", str(port), *extra], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"mixer serve exited: {process.stdout.read()}")
        try:
            urllib.request.urlopen(url + "api", timeout=1)
            return process, url
        except OSError as error:
            if getattr(error, "code", None) == 401:   # the token gate answered: the server is up
                return process, url
            time.sleep(0.2)
    process.kill()
    raise AssertionError("mixer serve did not answer within 60 s")


def browser_path() -> str | None:
    """The operating system's Chromium ($MIXER_BROWSER first); Playwright's own download is
    not used."""
    explicit = os.environ.get("MIXER_BROWSER")
    if explicit:
        return explicit
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
