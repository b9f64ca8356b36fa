"""Install as users do: build the wheel, install it (not editable) into a fresh virtual
environment, and run the console script from outside the source tree."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # builds a wheel and a virtual environment


def _run(cmd: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, f"{cmd}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(the venv's `mixer` script, a working directory outside the source tree)."""
    tmp = tmp_path_factory.mktemp("install")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "dist"),
          str(ROOT)], cwd=tmp)
    (wheel,) = (tmp / "dist").glob("mixer-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("cli.py", "mixer/loader.py", "proxies/runner.py", "search/backends/regmix.py",
                   "search/backends/bayesopt.py", "store/schema.py"):
        assert module in names, f"{module} is missing from the wheel"
    # Dependencies come from this interpreter's site-packages; mixer itself only from the wheel.
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(tmp / "venv")], cwd=tmp)
    _run([str(tmp / "venv" / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], cwd=tmp)
    work = tmp / "work"
    work.mkdir()
    return tmp / "venv" / "bin" / "mixer", work


def test_every_top_level_module_comes_from_the_wheel(installed):
    script, work = installed
    python = script.with_name("python")
    code = "import cli, mixer, proxies, search.backends, store; print(cli.__file__, search.backends.__file__)"
    out = _run([str(python), "-c", code], cwd=work).stdout.split()
    venv = script.parents[1].resolve()
    assert all(Path(p).resolve().is_relative_to(venv) for p in out), out
    assert "mixer" in _run([str(script), "--help"], cwd=work).stdout


def test_a_table_search_runs_from_the_installed_wheel(installed):
    script, work = installed
    rng = np.random.default_rng(0)
    X = rng.dirichlet(np.ones(3), size=40)
    pd.DataFrame(X, columns=["w_a", "w_b", "w_c"]).assign(index=range(40)).to_csv(work / "mix.csv", index=False)
    pd.DataFrame({"index": range(40), "m_loss": ((X - 0.3) ** 2).sum(axis=1)}).to_csv(work / "met.csv", index=False)
    env = {k: v for k, v in os.environ.items() if k != "MIXER_WORKSPACE"}
    ws = ["--workspace", str(work / "ws")]
    _run([str(script), *ws, "runs", "import", "mix.csv", "met.csv", "--search", "past", "--weight-prefix", "w_",
          "--metric-prefix", "m_", "--target", "loss"], cwd=work, env=env)
    _run([str(script), *ws, "search", "start", "--name", "t", "--evaluator", "table", "--table", "past",
          "--target", "loss", "--runs", "8", "--parallel", "4", "--option", "n_candidates=2000"], cwd=work, env=env)
    best = _run([str(script), *ws, "best", "t"], cwd=work, env=env).stdout
    assert "recommended mixture" in best


def test_a_shadowing_package_fails_loudly(installed, tmp_path):
    script, work = installed
    shadow = tmp_path / "store"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run([str(script), "--help"], cwd=work, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"'store' is shadowed by {shadow / '__init__.py'}" in result.stderr
