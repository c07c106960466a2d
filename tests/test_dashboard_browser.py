"""The dashboard in a real browser against real processes, and the page's static contract.

The browser tests drive Debian's Chromium through Playwright (never ``playwright
install``): a target, a master and horde workers run as processes on loopback. A missing
browser fails the test with a clear message instead of skipping it.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, expect, sync_playwright

from tests.support import SCRIPTS, Processes, free_port, get_json, processes, start_master, wait_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-quic",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "build" / "test-output"
STATIC = REPO / "master" / "static"
TIMEOUT_MS = 10_000
IDS = (
    "state",
    "user-count",
    "rps",
    "fail-ratio",
    "worker-count",
    "host",
    "swarm-form",
    "stop-button",
    "reset-button",
    "stats-table",
    "workers-table",
    "failures-table",
    "exceptions-table",
    "chart-rps",
    "chart-response-times",
    "chart-users",
)

MARKUP = '<img src=x onerror="window.pwned=1">'
HOST_MARKUP = "<svg/onload=window.pwned=1>"  # the master refuses hosts with spaces
HOSTILE_SCRIPT = f'''
"""A user whose request names and exceptions try to inject markup into the dashboard."""

from horde import HttpUser, constant, task


class Reader(HttpUser):
    wait_time = constant(0.1)

    @task
    def hostile(self) -> None:
        self.client.get("/fast", name={"<script>window.pwned=1</script>" + MARKUP!r})
        raise RuntimeError({MARKUP!r})
'''


@dataclass
class Cluster:
    """A running target and master, plus the process group to add workers to."""

    procs: Processes
    target: str
    web: str
    zmq_port: int
    script: Path

    def worker(self) -> subprocess.Popen[str]:
        """Start a horde worker running the master's script."""
        return self.procs.horde(
            "worker", "--master", f"127.0.0.1:{self.zmq_port}", "-f", str(self.script)
        )

    def wait_workers(self, count: int) -> list[str]:
        """Wait until ``count`` workers are ready; return their ids."""

        def ready() -> list[str] | None:
            workers = get_json(f"{self.web}/stats/requests")["workers"]
            ids = [str(w["id"]) for w in workers if w["state"] == "ready"]
            return ids if len(ids) == count else None

        return wait_for(ready, 20, f"{count} ready workers")


@contextmanager
def cluster(script: Path) -> Iterator[Cluster]:
    """A demo target and a master running ``script``, stopped when the block ends."""
    with processes() as procs:
        port = free_port()
        target = procs.horde("target", "--port", str(port))
        wait_for(lambda: "listening" in procs.output(target), 20, "the demo target")
        master = start_master(procs, script)
        yield Cluster(procs, f"http://127.0.0.1:{port}", master.web, master.zmq_port, script)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    """A Chromium context with a fresh profile and short timeouts."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install "
            "chromium); the dashboard test drives it through Playwright"
        )
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 900},
            timeout=30_000,
        )
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


def open_dashboard(browser: BrowserContext, url: str) -> tuple[Page, list[str]]:
    """Open the dashboard; return the page and the list its script errors go to."""
    page = browser.pages[0] if browser.pages else browser.new_page()
    errors: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"console: {message.text}")

    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("console", console)
    page.goto(url)
    return page, errors


@pytest.mark.process
def test_dashboard_starts_charts_lists_workers_and_stops_a_test(browser: BrowserContext) -> None:
    """A user starts 6 users from the form, sees charts grow and both workers, stops, reports."""
    with cluster(SCRIPTS / "basic.py") as c:
        c.worker()
        c.worker()
        c.wait_workers(2)
        page, errors = open_dashboard(browser, f"{c.web}/")
        expect(page.locator("#state")).to_have_text("ready")
        expect(page.locator("#worker-count")).to_have_text("2")
        expect(page.locator("#user-classes")).to_contain_text("Reader")
        form = page.locator("#swarm-form")
        form.locator("input[name=user_count]").fill("6")
        form.locator("input[name=spawn_rate]").fill("6")
        form.locator("input[name=host]").fill(c.target)
        form.locator("button[type=submit]").click()

        expect(page.locator("#user-count")).to_have_text("6", timeout=30_000)
        expect(page.locator("#state")).to_have_text("running")
        expect(page.locator("#host")).to_have_text(c.target)
        expect(page.locator("#swarm-form")).to_be_hidden()
        stats = page.locator("#stats-table")
        expect(stats).to_contain_text("/fast", timeout=15_000)
        expect(stats.locator("tr.total")).to_contain_text("Aggregated")

        page.locator(".tab[data-tab=charts]").click()
        first = page.wait_for_function("hordeCharts.rps.data[0].length > 0").json_value()
        page.wait_for_function("n => hordeCharts.rps.data[0].length > n", arg=first)
        later = page.evaluate("hordeCharts.rps.data[0].length")
        assert later > first
        assert page.evaluate("hordeCharts.users.data[1].at(-1)") == 6
        assert page.evaluate("hordeCharts.responseTimes.data.length") == 3
        OUTPUT.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(OUTPUT / "dashboard-charts.png"), full_page=True)

        worker_ids = [w["id"] for w in get_json(f"{c.web}/stats/requests")["workers"]]
        assert len(worker_ids) == 2
        page.locator(".tab[data-tab=workers]").click()
        rows = page.locator("#workers-table tbody tr")
        expect(rows).to_have_count(2)
        for worker_id in worker_ids:
            expect(page.locator("#workers-table")).to_contain_text(worker_id)
        expect(page.locator("#workers-table tr.missing")).to_have_count(0)

        page.locator(".tab[data-tab=statistics]").click()
        page.locator("#stop-button").click()
        expect(page.locator("#state")).to_have_text("stopped", timeout=20_000)
        expect(page.locator("#swarm-form")).to_be_visible()
        expect(page.locator("#connection")).to_be_hidden()
        page.screenshot(path=str(OUTPUT / "dashboard.png"), full_page=True)

        page.goto(f"{c.web}/stats/report")
        expect(page.locator("#stats-table")).to_contain_text("/fast")
        expect(page.locator(".uplot")).to_have_count(3)
        page.screenshot(path=str(OUTPUT / "report.png"), full_page=True)
        assert errors == []


@pytest.mark.process
def test_dashboard_renders_hostile_names_as_text(browser: BrowserContext, tmp_path: Path) -> None:
    """Entry names, exceptions and hosts carrying markup show as text and run no script."""
    script = tmp_path / "hostile.py"
    script.write_text(HOSTILE_SCRIPT)
    with cluster(script) as c:
        c.worker()
        c.wait_workers(1)
        page, errors = open_dashboard(browser, f"{c.web}/")
        expect(page.locator("#state")).to_have_text("ready")
        form = page.locator("#swarm-form")
        form.locator("input[name=user_count]").fill("1")
        form.locator("input[name=spawn_rate]").fill("1")
        form.locator("input[name=host]").fill(f"{c.target}/?{HOST_MARKUP}")
        form.locator("button[type=submit]").click()

        expect(page.locator("#state")).to_have_text("running")
        expect(page.locator("#stats-table")).to_contain_text(MARKUP, timeout=20_000)
        expect(page.locator("#host")).to_contain_text(HOST_MARKUP)
        page.locator(".tab[data-tab=exceptions]").click()
        expect(page.locator("#exceptions-table")).to_contain_text(MARKUP, timeout=20_000)
        assert page.locator("img, svg").count() == 0
        assert page.evaluate("window.pwned") is None
        page.locator("#stop-button").click()
        expect(page.locator("#state")).to_have_text("stopped", timeout=20_000)
        assert errors == []


def test_dashboard_page_uses_relative_urls_and_stable_ids() -> None:
    """index.html loads only relative local assets and carries the ids tests rely on."""
    page = (STATIC / "index.html").read_text()
    for element_id in IDS:
        assert f'id="{element_id}"' in page, element_id
    urls = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert "assets/app.js" in urls and "assets/vendor/uplot/uPlot.iife.min.js" in urls
    for url in urls:
        assert not url.startswith(("/", "http:", "https:")), url
    assert not re.search(r"\son[a-z]+=", page), "inline event handlers"
    assert not re.search(r"<script>|<style", page), "inline script or style"
    for name in ("user_count", "spawn_rate", "host", "run_time", "shape_class"):
        assert f'name="{name}"' in page


def test_dashboard_script_never_parses_server_data_as_html() -> None:
    """app.js builds the page with DOM calls only, and fetches relative URLs."""
    script = (STATIC / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink
    fetched = re.findall(r'(?:getJSON|request|post)\("([^"]+)"', script)
    assert set(fetched) >= {"stats/requests", "stats/history", "ui-config", "swarm", "stop"}
    assert not [url for url in fetched if url.startswith("/")]


def test_vendored_uplot_ships_with_its_license() -> None:
    """uPlot's script, stylesheet and MIT license are vendored and named in the README."""
    vendor = STATIC / "vendor"
    for name in ("uPlot.iife.min.js", "uPlot.min.css", "LICENSE"):
        assert (vendor / "uplot" / name).is_file(), name
    assert "MIT License" in (vendor / "uplot" / "LICENSE").read_text()
    assert "uplot@1.6.32" in (vendor / "README.md").read_text()
