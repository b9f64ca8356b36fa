"""How long a user waits for the reading commands: `mixer predict` of 100 mixtures from
imported runs (100 and RegMix's 512), `mixer plot` of 16-run table searches (regmix and
bayesopt), `mixer search status` and `mixer best`, each timed as the command a user runs
(a fresh process: imports included). `cli_start_s` (`mixer info`) is the floor every
command pays, measured in the same run as the baseline.

Goals (issue 29): predict on 100 imported runs under 3 s, plot under 5 s.

    python benchmarks/read_commands.py [--quick] [--repo DIR] [--json out.json]

`--repo DIR` times another checkout's CLI (its own workspace is built with it), to compare
before and after a change on the same machine.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import parser, report  # noqa: E402

REGMIX = Path(__file__).resolve().parents[2] / "shared" / "peers" / "regmix"
IMPORT_FLAGS = ["--weight-prefix", "train_the_pile_", "--metric-prefix", "metric/the_pile_",
                "--metric-suffix", "_val_loss", "--fidelity", "1m", "--target", "pile_cc"]


def mixer(repo: Path, ws: Path, *args: str) -> float:
    """Seconds one `mixer --workspace WS ARGS` takes, in a fresh process of `repo`'s CLI."""
    code = f"import sys; sys.path.insert(0, {str(repo)!r}); import cli; cli.app()"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, "--workspace", str(ws), *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"mixer {' '.join(args)} failed: {done.stderr[-2000:]}")
    return seconds


def build(repo: Path, root: Path) -> Path:
    """A workspace with RegMix's 512 and first 100 training runs imported, 16-run table
    searches over the 100 (regmix, bayesopt), and a CSV of 100 test mixtures."""
    ws = root / "ws"
    mix, loss = pd.read_csv(REGMIX / "train_mixture_1m.csv"), pd.read_csv(REGMIX / "train_pile_loss_1m.csv")
    mix.head(100).to_csv(root / "mix100.csv", index=False)
    loss.head(100).to_csv(root / "loss100.csv", index=False)
    test = pd.read_csv(REGMIX / "test_mixture_1m.csv").head(100)
    test[[c for c in test.columns if c.startswith("train_the_pile_")]].to_csv(root / "query.csv", index=False)
    mixer(repo, ws, "runs", "import", str(REGMIX / "train_mixture_1m.csv"), str(REGMIX / "train_pile_loss_1m.csv"),
          "--search", "t512", *IMPORT_FLAGS)
    mixer(repo, ws, "runs", "import", str(root / "mix100.csv"), str(root / "loss100.csv"), "--search", "t100",
          *IMPORT_FLAGS)
    for backend in ("regmix", "bayesopt"):
        mixer(repo, ws, "search", "start", "--name", backend, "--evaluator", "table", "--table", "t100",
              "--backend", backend, "--runs", "16", "--parallel", "4")
    return ws


def least_of(repeats: int, command) -> float:
    return min(command() for _ in range(repeats))


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one timing per command (else the least of 3)")
    p.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1], help="the checkout to time")
    args = p.parse_args()
    if not REGMIX.is_dir():
        sys.exit(f"RegMix's tables are not at {REGMIX}")
    repeats = 1 if args.quick else 3
    repo = args.repo.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ws = build(repo, root)
        query = ["--mixtures", str(root / "query.csv"), "--weight-prefix", "train_the_pile_", "-f", "csv"]
        figures = {
            "cli_start_s": least_of(repeats, lambda: mixer(repo, ws, "info")),
            "predict_s_100_runs": least_of(repeats, lambda: mixer(repo, ws, "predict", "t100", *query)),
            "predict_s_512_runs": least_of(repeats, lambda: mixer(repo, ws, "predict", "t512", *query)),
            "plot_s_16_runs": least_of(repeats, lambda: mixer(repo, ws, "plot", "regmix", "-o", str(root / "r.png"))),
            "plot_s_16_runs_bayesopt": least_of(repeats, lambda: mixer(repo, ws, "plot", "bayesopt", "-o",
                                                                       str(root / "b.png"))),
            "status_s": least_of(repeats, lambda: mixer(repo, ws, "search", "status", "regmix")),
            "best_s": least_of(repeats, lambda: mixer(repo, ws, "best", "regmix")),
        }
    figures["repo"] = str(repo)
    goals = {"predict_s_100_runs": "< 3", "plot_s_16_runs": "< 5", "plot_s_16_runs_bayesopt": "< 5"}
    report("Reading commands, seconds a user waits (fresh process each)", figures, goals, args.json)


if __name__ == "__main__":
    main()
