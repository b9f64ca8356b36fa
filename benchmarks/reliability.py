"""Reliability under kill -9, concurrent readers and a second driver (run by hand).

    python benchmarks/reliability.py [--json out.json] [--points 4] [--drivers 3] [--quick]

In a temporary workspace with three small synthetic domains:
- kill -9 at random moments of `runs import`, `corpus add` and `search start` (a tiny proxy
  search), then the same command again (`search resume` for the search): every finished
  run must survive (`lost_runs`), no run or metric row may appear twice
  (`duplicated_runs`), and the domain and import must be whole afterwards;
- readers (`mixer sql`, every 0.3 s) while a search runs: `reader_failures` counts reads
  that failed for any reason but a busy database past their --wait, `writer_failures` a
  search that did not finish;
- a second driver (`search resume` of a running search): `second_driver_refused` is the
  fraction of tries refused with the first driver named.

`--quick`: one kill point per command and one search beside the readers (same keys).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import parser, report  # noqa: E402

QUICK = ["--preset", "tiny", "--tokens", "16k", "--seq-len", "64", "--batch-size", "8", "--cpus", "1"]


def mixer(ws: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import cli; cli.app()", "--workspace", str(ws), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=Path(__file__).resolve().parents[1])


def killed(ws: Path, args: list[str], after_s: float) -> None:
    """Start `mixer ARGS` and kill -9 its whole process group (Ray included) after `after_s`."""
    proc = subprocess.Popen([sys.executable, "-c", "import cli; cli.app()", "--workspace", str(ws), *args],
                            cwd=Path(__file__).resolve().parents[1], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(after_s)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def sql(ws: Path, query: str) -> list[dict]:
    out = mixer(ws, "sql", query, "-f", "json", "--wait", "60")
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout)


def write_sources(root: Path) -> dict[str, Path]:
    rng = random.Random(0)
    files = {}
    for name, alphabet in [("web", "abcdef "), ("code", "{}();=\n"), ("math", "0123456789+=")]:
        docs = ["".join(rng.choice(alphabet) for _ in range(rng.randint(50, 400))) for _ in range(3000)]
        files[name] = root / f"{name}.jsonl"
        files[name].write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    return files


def write_table(root: Path, n: int = 2000) -> tuple[Path, Path]:
    rng = random.Random(1)
    mix, met = ["index,w_a,w_b,w_c"], ["index,m_loss"]
    for i in range(n):
        w = [rng.random() for _ in range(3)]
        mix.append(f"{i}," + ",".join(f"{x / sum(w):.6f}" for x in w))
        met.append(f"{i},{rng.random() + 2:.6f}")
    (root / "mix.csv").write_text("\n".join(mix) + "\n")
    (root / "met.csv").write_text("\n".join(met) + "\n")
    return root / "mix.csv", root / "met.csv"


def kill_points(ws: Path, root: Path, points: int, figures: dict) -> None:
    sources = write_sources(root)
    mix, met = write_table(root)
    rng = random.Random(2)
    imports = ["runs", "import", str(mix), str(met), "--search", "past", "--weight-prefix", "w_",
               "--metric-prefix", "m_", "--target", "loss"]
    for i in range(points):
        killed(ws, imports, rng.uniform(0.5, 4.0))
        figures["kill_points"] += 1
        counts = sql(ws, "select count(*) as n from runs where run_id like 'past/%'")[0]["n"]
        figures["partial_imports"] += int(counts not in (0, 2000))
        name = sorted(sources)[i % 3]
        killed(ws, ["corpus", "add", name, str(sources[name]), "--replace"], rng.uniform(0.5, 3.0))
        figures["kill_points"] += 1
    assert mixer(ws, *imports).returncode == 0
    for name, path in sources.items():
        assert mixer(ws, "corpus", "add", name, str(path), "--replace").returncode == 0
    for i in range(points):
        killed(ws, ["search", "start", "--name", f"k{i}", "--backend", "random", "--runs", "6", "--parallel", "2",
                    *QUICK], rng.uniform(8.0, 20.0))
        figures["kill_points"] += 1
        done_before = {r["run_id"]: r["target_value"] for r in
                       sql(ws, f"select run_id, target_value from run_summary where search = 'k{i}' and status = 'done'")}
        resumed = mixer(ws, "search", "resume", f"k{i}")
        figures["writer_failures"] += int(resumed.returncode != 0 and "already finished" not in resumed.stderr)
        after = {r["run_id"]: r["target_value"] for r in
                 sql(ws, f"select run_id, target_value from run_summary where search = 'k{i}' and status = 'done'")}
        figures["lost_runs"] += sum(1 for k, v in done_before.items() if after.get(k) != v)
    figures["duplicated_runs"] = sql(ws, "select count(*) - count(distinct (run_id, step, split, name)) as n "
                                         "from metrics")[0]["n"]


def readers_and_drivers(ws: Path, tries: int, figures: dict) -> None:
    for i in range(tries):
        driver = subprocess.Popen([sys.executable, "-c", "import cli; cli.app()", "--workspace", str(ws), "search",
                                   "start", "--name", f"c{i}", "--backend", "random", "--runs", "6", "--parallel", "2",
                                   *QUICK], cwd=Path(__file__).resolve().parents[1], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        time.sleep(6)
        second = mixer(ws, "search", "resume", f"c{i}")
        figures["second_driver_tries"] += 1
        figures["second_driver_refused_n"] += int(second.returncode == 2 and "already being run" in second.stderr)
        while driver.poll() is None:
            read = mixer(ws, "sql", "select count(*) from run_summary", "--wait", "10")
            figures["reads"] += 1
            figures["reader_failures"] += int(read.returncode != 0 and "busy" not in read.stderr)
            figures["reader_busy"] += int(read.returncode != 0 and "busy" in read.stderr)
            time.sleep(0.3)
        figures["writer_failures"] += int(driver.returncode != 0)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--points", type=int, default=4, help="kill -9 points per command")
    p.add_argument("--drivers", type=int, default=3, help="searches run beside readers and a second driver")
    p.add_argument("--quick", action="store_true", help="1 kill point per command, 1 search (same keys)")
    args = p.parse_args()
    if args.quick:
        args.points, args.drivers = 1, 1
    figures = dict(kill_points=0, lost_runs=0, duplicated_runs=0, partial_imports=0, reader_failures=0,
                   reader_busy=0, reads=0, writer_failures=0, second_driver_tries=0, second_driver_refused_n=0)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        kill_points(ws, Path(tmp), args.points, figures)
        readers_and_drivers(ws, args.drivers, figures)
    figures["second_driver_refused"] = figures["second_driver_refused_n"] / max(1, figures["second_driver_tries"])
    figures["wall_s"] = time.perf_counter() - start
    report("Reliability", figures, {"lost_runs": "0", "duplicated_runs": "0", "writer_failures": "0",
                                    "second_driver_refused": "1.0", "partial_imports": "0"}, args.json)


if __name__ == "__main__":
    main()
