"""The web view in a real browser: the operating system's headless Chromium driven by
Playwright (its own browser download is not used). `mixer serve` runs as a user starts it;
the numbers on the pages are checked against `mixer sql`, a run written by a driver appears
without a reload, an export downloads what `mixer export` writes, and a domain named like
an HTML tag shows as text. With MIXER_SCREENSHOTS=DIR each page is saved there
(benchmarks/screenshots.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import mixer_cli
from tests.search.web.conftest import HOSTILE, LiveDriver, browser_path, start_server

BROWSER = browser_path()
pytestmark = [
    pytest.mark.slow,   # starts a server and a browser
    pytest.mark.skipif(BROWSER is None, reason="no Chromium installed (apt-get install chromium, or set "
                                               "MIXER_BROWSER); .ci/run installs it"),
]
SHOTS = Path(os.environ["MIXER_SCREENSHOTS"]) if os.environ.get("MIXER_SCREENSHOTS") else None


@pytest.fixture(scope="module")
def server(web_workspace):
    process, url = start_server(web_workspace.root)
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=BROWSER, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.errors, page.dialogs = [], []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    yield page
    assert page.errors == [] and page.dialogs == []      # no script error, no injected alert
    context.close()


def sql(root: Path, query: str):
    from store import run_sql

    return run_sql(root / "mixer.duckdb", query)


def shown_number(text: str) -> float:
    return float(text.strip())


def screenshot(page, name: str) -> None:
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_searches_page_shows_the_store(page, server, web_workspace):
    page.goto(server)
    page.wait_for_selector("#searches tbody tr")
    rows = page.locator("#searches tbody tr")
    assert rows.count() == int(sql(web_workspace.root, "SELECT count(*) AS n FROM searches").n[0])
    row = page.locator("#searches tbody tr", has=page.locator(f"a:text-is('{web_workspace.finished}')"))
    best = float(sql(web_workspace.root, "SELECT min(target_value) AS v FROM run_summary WHERE search = "
                                         f"'{web_workspace.finished}' AND role = 'search'").v[0])
    cells = row.locator("td").all_inner_texts()
    assert cells[6] == "8 / 8" and shown_number(cells[7]) == pytest.approx(best, rel=1e-3)
    page.locator("#searches th[data-key=best]").click()     # sortable: lowest best first
    values = [shown_number(t) for t in page.locator("#searches tbody tr td:nth-child(8)").all_inner_texts()]
    assert values == sorted(values)
    screenshot(page, "searches")
    page.locator(f"a:text-is('{web_workspace.finished}')").click()
    page.wait_for_selector("#runs tbody tr")
    assert page.url.endswith(f"/search/{web_workspace.finished}")


def test_search_page_numbers_sorting_filtering_and_curves(page, server, web_workspace):
    page.goto(f"{server}search/{web_workspace.finished}")
    page.wait_for_selector("#runs tbody tr")
    stored = sql(web_workspace.root, f"SELECT run_id, target_value FROM run_summary WHERE search = "
                                     f"'{web_workspace.finished}'")
    assert page.inner_text("#runs-count") == f"{len(stored)} of {len(stored)} rows"
    page.locator("#runs th[data-key=target]").click()
    first = page.locator("#runs tbody tr").first.locator("td").all_inner_texts()
    best = stored.sort_values("target_value").iloc[0]
    assert first[0] == best.run_id and shown_number(first[4]) == pytest.approx(best.target_value, rel=1e-3)
    assert page.locator("#facts [data-fact=best]").inner_text().startswith(f"{best.target_value:.6g}"[:5])
    page.fill("#run-filter", "0003")
    assert page.inner_text("#runs-count") == f"1 of {len(stored)} rows"
    page.fill("#run-filter", "")
    assert page.locator("#best-curve svg path.series").count() == 1
    assert page.locator("#mixtures svg rect.target-strip").count() == len(stored)
    assert "cross-validated Spearman" in page.inner_text("#recommendation")
    # a domain named like a tag is text everywhere: a table header, the legend, the weights
    assert page.locator(f"#runs th:text-is('{HOSTILE}')").count() == 1
    assert page.locator(f"#rec-weights td:text-is('{HOSTILE}')").count() == 1
    assert page.evaluate("document.scripts.length") == 1
    page.locator("#runs a.run", has_text=f"{web_workspace.finished}/0000").click()
    page.wait_for_selector("#curves figure")
    assert page.inner_text("#curves-title").endswith(f"{web_workspace.finished}/0000")
    screenshot(page, "search")


def test_export_button_downloads_what_mixer_export_writes(page, server, web_workspace, tmp_path):
    page.goto(f"{server}search/{web_workspace.finished}")
    page.wait_for_selector("#exports button")
    for fmt, template in (("yaml", None), ("megatron", "/data/{name}_text_document")):
        if template:
            page.fill("#path-template", template)
        with page.expect_download() as download:
            page.locator(f"#exports button[data-format={fmt}]").click()
        path = tmp_path / fmt
        download.value.save_as(path)
        expected = mixer_cli("export", web_workspace.finished, "--format", fmt,
                             *(["--path-template", template] if template else []), workspace=web_workspace.root)
        assert path.read_text() == expected.stdout


def test_a_run_appears_live_without_reloading(page, server, web_workspace):
    page.goto(f"{server}search/{web_workspace.running}")
    page.wait_for_selector("#runs-count")
    page.evaluate("window.notReloaded = true")
    driver = LiveDriver(web_workspace.root, web_workspace.running)
    try:
        page.wait_for_selector("#facts [data-fact=status]:text-is('running')", timeout=10_000)
        run_id = driver.add_run(2.25)
        page.wait_for_selector(f"#runs a.run:text-is('{run_id}')", timeout=10_000)
        assert page.evaluate("window.notReloaded") is True
        screenshot(page, "search-live")
    finally:
        driver.stop()
    page.wait_for_selector("#facts [data-fact=status]:text-is('done')", timeout=10_000)


def test_corpus_page(page, server):
    page.goto(f"{server}corpus")
    page.wait_for_selector("#domains")
    screenshot(page, "corpus")


def test_a_token_server_opens_from_its_printed_url_and_forgets_the_token_in_the_address(browser, web_workspace):
    token = "a-token-for-the-browser-test"
    process, url = start_server(web_workspace.root, "--token", token)
    try:
        page = browser.new_page()
        assert page.goto(url).status == 401                       # without the token: refused
        page.goto(f"{url}?token={token}")
        page.wait_for_selector("#searches tbody tr")               # the page's own requests carry it (cookie)
        assert "token" not in page.url
    finally:
        process.terminate()
        process.wait(10)
