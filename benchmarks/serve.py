"""`mixer serve` under load: a search of 5,000 imported runs (10 domains), served by the
real CLI on uvicorn, read by the system's headless Chromium (Playwright) and by HTTP.

`page_s_5000_runs`: from navigation to the runs table showing all 5,000 rows, median over
page loads (goal < 2 s). `api_ms_5000_runs`: GET /api/searches/NAME as a page's refresh
makes it (every 2 s: the fingerprint query, and the document only when it changed),
median (goal < 200 ms). `document_ms_5000_runs`: building that document from the store
after a change (in process, median). The writer check: a driver-like writer stores one
finished run every 0.1 s into the same search, alone and then beside 10 page loads per
second (page HTML + its document); `writer_ms_alone`, `writer_ms_with_pages` (mean time of
one write, lock waits included), `writer_mean_ratio` and `writer_p95_ratio` (with pages /
alone: means, 95th percentiles),
`writes_lost` (runs written but not stored; must be 0); `writer_lock_wait_ms_*`: of a
write's time, the mean spent waiting for a lock a reader held (store.db's retries), the
rest of any difference being the 2 cores shared with the server and the pages.

    python benchmarks/serve.py [--json out.json] [--quick]
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import parser, report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
N_RUNS, N_DOMAINS, SEARCH = 5000, 10, "big"


def build_workspace(root: Path) -> None:
    rng = np.random.default_rng(0)
    weights = rng.dirichlet(np.ones(N_DOMAINS), N_RUNS)
    frame = pd.DataFrame(weights, columns=[f"w_d{i}" for i in range(N_DOMAINS)])
    frame.insert(0, "id", [f"r{i}" for i in range(N_RUNS)])
    frame["m_loss"] = 3 + weights @ rng.normal(0, 0.2, N_DOMAINS) + rng.normal(0, 0.01, N_RUNS)
    csv = root.parent / "runs.csv"
    frame.to_csv(csv, index=False)
    mixer("--workspace", str(root), "runs", "import", str(csv), "--search", SEARCH, "--weight-prefix", "w_",
          "--metric-prefix", "m_", "--id-column", "id", "--target", "loss")


def mixer(*args: str) -> None:
    subprocess.run([sys.executable, "-c", "import cli; cli.app()", *args], cwd=ROOT, check=True,
                   capture_output=True)


def start_server(root: Path, port: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", "import cli; cli.app()", "serve", "--workspace", str(root),
                                "--port", str(port)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=1)
            return process
        except OSError:
            time.sleep(0.2)
    raise SystemExit("mixer serve did not start")


def get(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        response.read()
    return time.perf_counter() - start


def api_times(base: str, n: int) -> list[float]:
    """A page's refreshes: one GET every 2 s (the first builds the document)."""
    get(f"{base}api/searches/{SEARCH}")
    times = []
    for _ in range(n):
        time.sleep(2.0)
        times.append(get(f"{base}api/searches/{SEARCH}"))
    return times


def document_times(root: Path, n: int) -> list[float]:
    from mixer.workspace import open_workspace
    from search.web.documents import search_document

    ws = open_workspace(root, create=False)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        search_document(ws, SEARCH)
        times.append(time.perf_counter() - start)
    return times


def page_times(base: str, n: int) -> list[float] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("no chromium: page_s_5000_runs not measured")
        return None
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=browser, headless=True)
        for _ in range(n):
            page = chromium.new_page(viewport={"width": 1400, "height": 1000})
            start = time.perf_counter()
            page.goto(f"{base}search/{SEARCH}")
            page.wait_for_selector(f"#runs-count:text-is('{N_RUNS} of {N_RUNS} rows')", timeout=60_000)
            times.append(time.perf_counter() - start)
            page.close()
            time.sleep(1.5)   # the next load reads the store again, as a fresh visitor's would
        chromium.close()
    return times


LOCK_WAITS: list[float] = []   # seconds the writer slept on a held lock (store.db's retry loop)


def count_lock_waits() -> None:
    """Record every sleep of store.db's lock retry loop (its only sleep) in LOCK_WAITS."""
    import store.db

    class Clock:
        def __getattr__(self, name):
            return getattr(time, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            LOCK_WAITS.append(seconds)
            time.sleep(seconds)

    store.db.time = Clock()


def writer(root: Path, n: int, first: int) -> list[float]:
    """Store n finished runs into the search, one every 0.1 s, as a driver's result
    callback does; the time of each write, lock waits included."""
    from store import MetricRow, RunRecord, get_search, write_runs

    db = root / "mixer.duckdb"
    search_id = get_search(db, SEARCH).id
    times = []
    for k in range(first, first + n):
        run_id = f"{SEARCH}/w{k}"
        mixture = {f"d{i}": 1.0 / N_DOMAINS for i in range(N_DOMAINS)}
        start = time.perf_counter()
        write_runs(db, [RunRecord(id=run_id, search_id=search_id, mixture=mixture, status="done", role="imported",
                                  target=3.0)], [MetricRow(run_id, 0, "val", "loss", 3.0)], wait_s=600)
        times.append(time.perf_counter() - start)
        time.sleep(0.1)
    return times


def page_load_traffic(base: str, stop: threading.Event, per_second: float = 10.0) -> list[int]:
    """Page loads (HTML + document) at `per_second` until `stop`; the status codes."""
    codes = []

    def one() -> None:
        for url in (f"{base}search/{SEARCH}", f"{base}api/searches/{SEARCH}"):
            try:
                with urllib.request.urlopen(url, timeout=60) as response:
                    response.read()
                    codes.append(response.status)
            except OSError as error:
                codes.append(getattr(error, "code", 0))

    threads = []
    while not stop.is_set():
        thread = threading.Thread(target=one)
        thread.start()
        threads.append(thread)
        time.sleep(1.0 / per_second)
    for thread in threads:
        thread.join()
    return codes


def stored_writes(root: Path) -> int:
    from store import run_sql

    return int(run_sql(root / "mixer.duckdb", f"SELECT count(*) AS n FROM runs WHERE run_id LIKE '{SEARCH}/w%'").n[0])


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats and writes (same keys)")
    p.add_argument("--port", type=int, default=8479)
    args = p.parse_args()
    repeats, writes = (4, 30) if args.quick else (15, 100)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        build_workspace(root)
        server = start_server(root, args.port)
        base = f"http://127.0.0.1:{args.port}/"
        try:
            api = api_times(base, repeats)
            document = document_times(root, max(3, repeats // 3))
            pages = page_times(base, max(2, repeats // 3))
            count_lock_waits()
            alone = writer(root, writes, 0)
            waited_alone, LOCK_WAITS[:] = sum(LOCK_WAITS), []
            stop = threading.Event()
            traffic: list[int] = []
            loader = threading.Thread(target=lambda: traffic.extend(page_load_traffic(base, stop)))
            loader.start()
            beside = writer(root, writes, writes)
            stop.set()
            loader.join()
            waited_beside = sum(LOCK_WAITS)
            lost = 2 * writes - stored_writes(root)
        finally:
            server.terminate()
            server.wait(10)
    figures = {
        "page_s_5000_runs": statistics.median(pages) if pages else None,
        "api_ms_5000_runs": 1000 * statistics.median(api),
        "document_ms_5000_runs": 1000 * statistics.median(document),
        "writer_ms_alone": 1000 * statistics.mean(alone),
        "writer_ms_with_pages": 1000 * statistics.mean(beside),
        "writer_mean_ratio": statistics.mean(beside) / statistics.mean(alone),
        "writer_p95_ratio": float(np.percentile(beside, 95) / np.percentile(alone, 95)),
        "writes_lost": lost,
        "writer_lock_wait_ms_alone": 1000 * waited_alone / writes,
        "writer_lock_wait_ms_with_pages": 1000 * waited_beside / writes,
        "page_loads_served": sum(code == 200 for code in traffic) // 2,
        "page_loads_failed": sum(code != 200 for code in traffic),
    }
    report("mixer serve, 5,000 imported runs", figures,
           {"page_s_5000_runs": "< 2", "api_ms_5000_runs": "< 200", "writes_lost": "0",
            "writer_mean_ratio": "about 1 (no longer than alone)", "writer_p95_ratio": "about 1",
            "page_loads_failed": "0"}, args.json)


if __name__ == "__main__":
    main()
