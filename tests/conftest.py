"""Shared fixtures and helpers. Tests that need ../shared skip with a reason when it is absent;
every other test runs on data it builds itself."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mixer.domain import open_domains
from mixer.ingest import IngestConfig, ingest_domain
from mixer.tokenizers import ByteTokenizer
from search.fidelity import Fidelities
from search.history import History
from search.space import Pool, SearchSpace

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MIXER_SHARED", ROOT.parent / "shared"))
REGMIX = SHARED / "peers" / "regmix"
CORPUS = SHARED / "corpus"

needs_regmix = pytest.mark.skipif(not (REGMIX / "train_mixture_1m.csv").exists(),
                                  reason=f"RegMix tables not found at {REGMIX} (../shared is absent)")
needs_corpus = pytest.mark.skipif(not (CORPUS / "math.jsonl").exists(),
                                  reason=f"shared corpus not found at {CORPUS} (../shared is absent)")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return tmp_path / "ws"


# ---------------------------------------------------------------- running the CLI


def run_mixer(*args: str, workspace: Path | None = None, timeout: float = 300,
              env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real console entry point in a subprocess (as a user would)."""
    cmd = [sys.executable, "-c", "import cli; cli.app()"]
    if workspace is not None:
        cmd += ["--workspace", str(workspace)]
    full_env = {**os.environ, **(env or {})}
    full_env.pop("MIXER_WORKSPACE", None) if workspace is not None else None
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=full_env)


def mixer_cli(*args: str, workspace: Path | None = None) -> subprocess.CompletedProcess:
    """Run the CLI in this process (the same `cli.app` entry, error handling included), for
    cases where a subprocess adds nothing but start-up time."""
    import cli

    out, err = io.StringIO(), io.StringIO()
    argv = (["--workspace", str(workspace)] if workspace is not None else []) + [str(a) for a in args]
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.app(args=argv, prog_name="mixer")
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def kill_once_done(args: list[str], workspace: Path, done_sql: str, at_least: int, timeout: float = 300) -> None:
    """Start `mixer ARGS` in its own process group, wait until `done_sql` (a count `n`)
    reaches `at_least`, then kill -9 it and every process it started (Ray included)."""
    import signal
    import time

    from store import run_sql

    cmd = [sys.executable, "-c", "import cli; cli.app()", "--workspace", str(workspace), *args]
    process = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert process.poll() is None, f"mixer {args[0]} ended early: {process.stderr.read()[-2000:]}"
            time.sleep(3)  # gently: every read briefly holds the file the writer uses
            if run_sql(workspace / "mixer.duckdb", done_sql, wait_s=30)["n"][0] >= at_least:
                return
        pytest.fail(f"mixer {args[0]} never reached {at_least} finished runs")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The one line a user error prints (exit code 2, no traceback)."""
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def regmix_import_args(split: str = "train", size: str = "1m", search: str = "regmix-1m") -> list[str]:
    loss = f"{split}_pile_loss_{size}.csv"
    mix = f"{split}_mixture_{size}.csv"
    return ["runs", "import", str(REGMIX / mix), str(REGMIX / loss), "--search", search,
            "--weight-prefix", "train_the_pile_", "--metric-prefix", "metric/the_pile_",
            "--metric-suffix", "_val_loss", "--fidelity", size, "--target", "pile_cc"]


def hold_lock(db: Path, seconds: float) -> subprocess.Popen:
    """A second process that opens the database for writing and keeps it for `seconds`."""
    code = textwrap.dedent(f"""
        import duckdb, sys, time
        con = duckdb.connect({str(db)!r})
        con.execute("BEGIN TRANSACTION")
        con.execute("UPDATE searches SET status = 'running'")
        print("locked", flush=True)
        time.sleep({seconds})
        con.execute("COMMIT")
        con.close()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


# ---------------------------------------------------------------- data the tests build


def synthetic_documents(seed: int, n_docs: int, alphabet: str) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(20, 400))) for _ in range(n_docs)]


def write_jsonl(path: Path, docs: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    return path


@pytest.fixture(scope="session")
def small_domains(tmp_path_factory):
    """Three byte-level domains of different sizes: name -> Domain."""
    root = tmp_path_factory.mktemp("domains")
    for i, (name, n, alphabet) in enumerate([("alpha", 300, "abc "), ("beta", 120, "xyz\n"), ("gamma", 40, "0123456789")]):
        ingest_domain(root, name, synthetic_documents(i, n, alphabet), ByteTokenizer(), IngestConfig(min_val_docs=4))
    return open_domains(root)


# ---------------------------------------------------------------- a known loss surface

DOMAINS = ["a", "b", "c", "d"]
OPTIMUM = np.array([0.4, 0.3, 0.2, 0.1])


def truth(X: np.ndarray) -> np.ndarray:
    """A smooth loss with its minimum inside the simplex."""
    return 2.0 + ((X - OPTIMUM) ** 2).sum(axis=1) * 5


def make_history(n: int, seed: int = 0) -> History:
    X = np.random.default_rng(seed).dirichlet(np.ones(4), size=n)
    return History(DOMAINS, X, truth(X), ["f"] * n, [f"r{i}" for i in range(n)], [None] * n)


def make_space(pool: bool = False) -> SearchSpace:
    space = SearchSpace(DOMAINS, prior=np.full(4, 0.25), fidelity=Fidelities.single("f"))
    if pool:
        X = np.random.default_rng(9).dirichlet(np.ones(4), size=200)
        space.pool = Pool([f"p{i}" for i in range(200)], X, ["f"] * 200)
    return space
