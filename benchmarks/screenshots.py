"""The README's screenshots of `mixer serve`: each page of a demo workspace, taken with the
browser the test suite drives (the system's headless Chromium through Playwright).

    python benchmarks/screenshots.py [--workspace W] [--out benchmarks/screenshots]

Without --workspace it runs a small demo first (`mixer demo --runs 8 --tokens 200k`, a few
minutes on 2 cores) in a temporary workspace.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = {"searches": "", "search": "search/{search}", "corpus": "corpus"}


def mixer(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import cli; cli.app()", *args], cwd=ROOT, **kwargs)


def newest_search(workspace: Path) -> str:
    from store import run_sql

    return str(run_sql(workspace / "mixer.duckdb", "SELECT name FROM searches ORDER BY created_at DESC LIMIT 1")
               .name[0])


def take(workspace: Path, out: Path, port: int) -> None:
    from playwright.sync_api import sync_playwright

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("no chromium on PATH (apt-get install chromium)")
    server = mixer("serve", "--workspace", str(workspace), "--port", str(port), stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "api", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        search = newest_search(workspace)
        out.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=browser, headless=True)
            page = chromium.new_page(viewport={"width": 1400, "height": 900})
            for name, path in PAGES.items():
                page.goto(base + path.format(search=search))
                page.wait_for_selector("#updated:has-text('checked')")
                if name == "search":
                    page.locator("#runs a.run").first.click()
                    page.wait_for_selector("#curves figure")
                page.screenshot(path=str(out / f"{name}.png"), full_page=True)
                print(f"wrote {out / f'{name}.png'}")
            chromium.close()
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workspace", type=Path, help="a workspace with searches (default: run a small demo)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "screenshots")
    p.add_argument("--port", type=int, default=8478)
    args = p.parse_args()
    if args.workspace is not None:
        take(args.workspace.resolve(), args.out, args.port)
        return
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / "ws"
        if mixer("--workspace", str(workspace), "demo", "--runs", "8", "--tokens", "200k").wait() != 0:
            raise SystemExit("the demo failed")
        take(workspace, args.out, args.port)


if __name__ == "__main__":
    main()
