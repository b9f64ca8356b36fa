"""Shared fixtures. Tests that need ../shared skip with a reason when it is absent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def regmix_import_args(split: str = "train", size: str = "1m", search: str = "regmix-1m") -> list[str]:
    loss = f"{split}_pile_loss_{size}.csv"
    mix = f"{split}_mixture_{size}.csv"
    return ["runs", "import", str(REGMIX / mix), str(REGMIX / loss), "--search", search,
            "--weight-prefix", "train_the_pile_", "--metric-prefix", "metric/the_pile_",
            "--metric-suffix", "_val_loss", "--fidelity", size, "--target", "pile_cc"]


pytest_plugins = ["tests.fixtures"]
