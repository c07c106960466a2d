"""The HTML report: built from a coordinator fed real messages, self-contained and escaped."""

from __future__ import annotations

import dataclasses
import json
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from horde.master.config import MasterSettings
from horde.master.coordinator import Coordinator, SwarmRequest
from horde.master.dispatch import UserClassSpec
from horde.master.history import HistoryPoint
from horde.master.htmlreport import ReportData, render_report, report_data
from horde.master.report import PERCENTILES
from horde.protocol import messages as m
from horde.protocol.codec import AnyMessage
from horde.worker.stats import RequestRecorder

HOSTILE = "<script>alert(1)</script>"
CLOSER = "</script><img src=x onerror=alert(2)>"


class Tags(HTMLParser):
    """Collects the start tags of a page with their attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(page: str) -> list[tuple[str, dict[str, str | None]]]:
    """The start tags of ``page``, in order."""
    parser = Tags()
    parser.feed(page)
    parser.close()
    return parser.tags


def coordinator(*, host: str = "http://127.0.0.1:8089") -> Coordinator:
    """A coordinator with two user classes whose messages go nowhere."""
    sent: list[tuple[str, AnyMessage]] = []
    return Coordinator(
        MasterSettings(host=host),
        [UserClassSpec("Reader", 3), UserClassSpec("Writer", 1, 2)],
        lambda identity, message: sent.append((identity, message)),
        new_run_id=lambda: "run1",
    )


def report_of(c: Coordinator, points: list[HistoryPoint], now: float, **how: Any) -> ReportData:
    """:func:`report_data` of ``c``'s snapshot at ``now``, with ``points`` as its history."""
    snapshot = dataclasses.replace(c.snapshot(now), history=tuple(points))
    return report_data(snapshot, **how)


def run_with_requests(c: Coordinator, worker: str, *, name: str, error: str) -> None:
    """Join ``worker``, start a run and merge a few requests, one failed, and an exception."""
    c.handle(worker, m.ClientReady(worker, m.HORDE_CLIENT_VERSION), 100.0)
    c.start(SwarmRequest(2, 100.0), 100.0)
    recorder = RequestRecorder()
    for i in range(1, 11):
        recorder.record("GET", name, float(i), 100, None, 101.0)
    recorder.record("POST", "/login", 250.0, 20, error, 101.5)
    delta = recorder.take_horde_delta(
        run_id=c.run_id, epoch=c.intake.epoch, seq=1, now=102.0, user_classes_count={}, user_count=2
    )
    c.handle(worker, m.HordeStats(worker, delta), 102.0)
    c.handle(worker, m.ExceptionReport(worker, error, f"Traceback: {error}"), 102.0)


def history(n: int) -> list[HistoryPoint]:
    """``n`` points one second apart with rising RPS."""
    return [HistoryPoint(100.0 + i, 2, 10.0 + i, 0.5, 4.0, 9.0, 10 * i, i) for i in range(n)]


def embedded_json(page: str) -> dict[str, object]:
    """The chart data the report embeds."""
    match = re.search(
        r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S
    )
    assert match is not None
    return json.loads(match.group(1))


def test_report_shows_tables_and_chart_data_of_the_run() -> None:
    """Stats, percentiles, failures, exceptions, workers and the history all reach the page."""
    c = coordinator()
    run_with_requests(c, "worker_1", name="/items", error="HTTPError 500")
    data = report_of(c, history(5), 103.0, locustfile="basic.py", show_download_link=True)
    page = render_report(data)

    for table_id in (
        "stats-table",
        "percentiles-table",
        "failures-table",
        "exceptions-table",
        "workers-table",
        "classes-table",
    ):
        assert f'id="{table_id}"' in page
    assert [(r["method"], r["name"]) for r in data.stats] == [
        ("GET", "/items"),
        ("POST", "/login"),
        ("", "Aggregated"),
    ]
    assert data.stats[-1]["num_requests"] == 11
    assert [len(r.values) for r in data.percentiles] == [len(PERCENTILES)] * 3
    assert "99.9%" in page and "100%" in page
    assert "/items" in page and "HTTPError 500" in page and "Traceback: HTTPError 500" in page
    assert "worker_1" in page and "Reader" in page and "Writer" in page
    assert "http://127.0.0.1:8089" in page and "basic.py" in page
    assert 'href="?download=1"' in page
    chart = embedded_json(page)["history"]
    assert isinstance(chart, dict)
    assert chart["time"] == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert chart["rps"] == [10.0, 11.0, 12.0, 13.0, 14.0]
    assert chart["users"] == [2] * 5
    assert set(chart) == {"time", "rps", "fail", "p50", "p95", "users"}


def test_report_data_is_frozen_and_dates_come_from_the_stats() -> None:
    """The builder returns an immutable value whose period spans the run's requests."""
    c = coordinator()
    run_with_requests(c, "worker_1", name="/items", error="boom")
    data = report_of(c, [], 110.0, locustfile="basic.py", show_download_link=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.host = "changed"  # type: ignore[misc]
    assert data.start_time == 100.0
    assert data.end_time is not None and 101.0 <= data.end_time <= 102.0
    assert data.generated_at == 110.0
    assert 'href="?download=1"' not in render_report(data)


@pytest.mark.parametrize("hostile", [HOSTILE, CLOSER])
def test_hostile_strings_appear_only_escaped(hostile: str) -> None:
    """Names, errors, hosts, worker ids, exceptions and the script name are all escaped."""
    c = coordinator(host=hostile)
    run_with_requests(c, f"worker{hostile}", name=hostile, error=hostile)
    page = render_report(
        report_of(c, history(3), 103.0, locustfile=hostile, show_download_link=True)
    )
    assert hostile not in page
    assert "alert(" in page  # the text is there, escaped
    assert page.count("</script>") == 3  # the chart data, uPlot and the chart code
    found = tags(page)
    assert not [t for t, _ in found if t == "img"]
    scripts = [attrs for t, attrs in found if t == "script"]
    assert scripts == [{"type": "application/json", "id": "report-data"}, {}, {}]


def test_embedded_json_escapes_markup_characters() -> None:
    """The chart data cannot close its script element, whatever it holds."""
    page = render_report(
        dataclasses.replace(
            report_of(coordinator(), [], 0.0, locustfile="x", show_download_link=False),
            history=tuple(history(2)),
        )
    )
    raw = page.split('id="report-data">', 1)[1].split("</script>", 1)[0]
    assert not set("<>&") & set(raw)


def test_report_makes_no_external_requests() -> None:
    """No resource is loaded from elsewhere: uPlot's script and stylesheet are inline."""
    c = coordinator()
    run_with_requests(c, "worker_1", name="/items", error="boom")
    page = render_report(report_of(c, history(2), 103.0, locustfile="a", show_download_link=True))
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert re.findall(r"<link[^>]*>", page) == ['<link rel="icon" href="data:,">']
    for tag, attrs in tags(page):
        assert "src" not in attrs, tag
    assert "uPlot" in page and ".uplot" in page


def test_an_empty_run_renders() -> None:
    """A master that never ran still renders a complete page with empty sections."""
    data = report_of(coordinator(host=""), [], 5.0, locustfile="", show_download_link=False)
    page = render_report(data)
    assert data.start_time is None and data.end_time is None
    assert [r["name"] for r in data.stats] == ["Aggregated"]
    assert "No history was recorded." in page
    assert "No workers." in page
    assert "unknown" in page and "(none)" in page
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert embedded_json(page) == {
        "history": {k: [] for k in ("time", "rps", "fail", "p50", "p95", "users")}
    }


def test_render_is_a_pure_function_of_the_data() -> None:
    """Rendering the same ReportData twice gives the same page."""
    data = ReportData(
        locustfile="a.py",
        host="http://h",
        start_time=1.0,
        end_time=2.0,
        generated_at=3.0,
        stats=(),
        percentiles=(),
        errors=(),
        exceptions=(),
        workers=(),
        user_classes=(),
        history=(),
        show_download_link=False,
    )
    assert render_report(data) == render_report(data)
    assert "No requests." in render_report(data)
