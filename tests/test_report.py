"""The /stats/requests document and the console tables built from merged stats."""

from __future__ import annotations

import os
from types import ModuleType

import pytest

from horde.master.report import MAX_ROWS, PERCENTILES, ROW_SLICE, stats_report
from horde.master.stats import MergedStats
from horde.master.summary import NAME_WIDTH, errors_table, percentiles_table, requests_table
from horde.worker.stats import RequestRecorder
from tests.stats_samples import LOCUST_STATS_KEYS, T0, merged


def locust_stats() -> ModuleType:
    """Import Locust's stats module without letting locust monkey-patch the test process."""
    os.environ.setdefault("LOCUST_SKIP_MONKEY_PATCH", "1")
    import locust.stats

    return locust.stats


def test_report_keys_match_locust() -> None:
    """Top-level and per-entry keys are exactly Locust's, entry keys in Locust's order."""
    stats = merged(("GET", "/a", 0.2374, None), ("GET", "/a", 12.0, ValueError("x")))
    report = stats_report(stats, T0 + 5)
    assert set(report) == LOCUST_STATS_KEYS
    lstats = locust_stats().RequestStats(use_response_times_cache=False)
    lstats.log_request("GET", "/a", 1, 10)
    locust_keys = list(lstats.entries[("/a", "GET")].to_dict())
    assert [list(row) for row in report["stats"]] == [locust_keys, locust_keys]
    assert set(report["current_response_time_percentiles"]) == {
        "response_time_percentile_0.5",
        "response_time_percentile_0.95",
    }
    (error,) = report["errors"]
    assert set(error) >= {"method", "name", "error", "occurrences"}


def test_report_keeps_microsecond_precision() -> None:
    """Times are ms floats with µs precision rather than Locust's whole ms."""
    stats = merged(("GET", "/a", 0.2374, None), ("GET", "/a", 0.5, None))
    row, total = stats_report(stats, T0 + 5)["stats"]
    assert row["min_response_time"] == 0.237
    assert row["max_response_time"] == 0.5
    assert row["avg_response_time"] == pytest.approx(0.3685, abs=0.0006)
    assert row["median_response_time"] == 0.237
    assert row["response_time_percentile_0.99"] == 0.5
    assert total["name"] == "Aggregated" and total["method"] == ""
    assert total["num_requests"] == 2


def test_report_rows_are_sorted_capped_and_end_with_aggregated() -> None:
    """At most 500 entry rows, sorted by (name, method), then the Aggregated row."""
    samples = [("GET", f"/p{i:04d}", 1.0, ValueError(i)) for i in range(MAX_ROWS + 20)]
    report = stats_report(merged(*samples), T0 + 5)
    rows = report["stats"]
    assert len(rows) == MAX_ROWS + 1
    assert [r["name"] for r in rows[:-1]] == sorted(r["name"] for r in rows[:-1])
    assert rows[-1]["name"] == "Aggregated" and rows[-1]["num_requests"] == MAX_ROWS + 20
    assert len(report["errors"]) == MAX_ROWS
    assert report["fail_ratio"] == 1.0


def test_empty_report_has_zero_figures() -> None:
    """A report of no traffic holds only the Aggregated row, all zeros."""
    report = stats_report(MergedStats(), T0)
    (total,) = report["stats"]
    assert total["num_requests"] == 0 and total["min_response_time"] == 0.0
    assert report["total_rps"] == 0.0 and report["current_rps"] == 0.0
    assert report["current_response_time_percentiles"]["response_time_percentile_0.5"] == 0.0


def test_requests_table_renders_rows_and_aggregated() -> None:
    """The requests table has Locust's columns, one row per entry and the Aggregated row."""
    long_name = "/" + "x" * 200
    stats = merged(("GET", "/a", 12.5, None), ("POST", long_name, 1500.0, ValueError("x")))
    text = requests_table(stats, T0 + 5)
    lines = text.splitlines()
    for column in ("Type", "Name", "# reqs", "# fails", "Avg", "Min", "Max", "Med", "req/s"):
        assert column in lines[0]
    assert "failures/s" in lines[0]
    assert lines[-1].split()[0] == "Aggregated"
    assert any(line.startswith("GET") and "12.5" in line for line in lines)
    assert "1(100.00%)" in text and long_name not in text
    assert max(map(len, lines)) <= len(lines[0]) + 2


def test_percentiles_table_has_every_percentile() -> None:
    """The percentiles table has a column per PERCENTILES entry and skips untimed entries."""
    stats = merged(
        ("GET", "/a", 12.5, None), ("GET", "/a", 250.0, None), ("GET", "/none", None, None)
    )
    text = percentiles_table(stats)
    header = text.splitlines()[1]
    assert header.split()[2:-2] == [
        "50%",
        "66%",
        "75%",
        "80%",
        "90%",
        "95%",
        "98%",
        "99%",
        "99.9%",
        "99.99%",
        "100%",
    ]
    assert len(PERCENTILES) == 11
    assert "/none" not in text
    row = next(line for line in text.splitlines() if line.startswith("GET"))
    assert row.split()[2] == "12.5" and row.split()[-2] == "250"


def test_errors_table_lists_errors_by_frequency() -> None:
    """The error report shows occurrences and 'method name: error', CatchResponseError unwrapped."""
    stats = merged(
        ("GET", "/a", 1.0, "CatchResponseError('bad status')"),
        ("GET", "/a", 1.0, ValueError("x")),
        ("GET", "/a", 1.0, ValueError("x")),
    )
    lines = errors_table(stats).splitlines()
    assert lines[0].split()[:3] == ["#", "occurrences", "Error"]
    assert lines[2].split()[:3] == ["2", "GET", "/a:"] and "ValueError('x')" in lines[2]
    assert lines[3].endswith("GET /a: 'bad status'")


def test_name_column_is_width_bounded() -> None:
    """Names wider than the column are cut with '...' so rows keep their width."""
    name = "/" + "y" * (NAME_WIDTH * 2)
    stats = merged(("GET", name, 1.0, None))
    row = next(
        line for line in requests_table(stats, T0 + 5).splitlines() if line.startswith("GET")
    )
    assert "y" * (NAME_WIDTH - 4) + "..." in row


def test_a_pausing_report_is_one_moments_while_merging_goes_on() -> None:
    """Deltas merged during the pauses change neither the rows nor the Aggregated row."""
    samples = [("GET", f"/p{k}", 1.0 + k, None) for k in range(3 * ROW_SLICE + 5)]
    stats = merged(*samples)
    expected: dict[str, object] = {}
    more = RequestRecorder()
    pauses = []

    def merge_more() -> None:  # what the receive loop does while the report yields
        more.record("GET", "/p0", 99.0, 100, None, T0 + len(pauses))
        delta = more.take_horde_delta(
            run_id="r",
            epoch=0,
            seq=len(pauses) + 1,
            now=T0 + 2,
            user_classes_count={},
            user_count=0,
        )
        stats.merge_horde("w2", delta, T0 + 2 + len(pauses))  # a new second: folds
        pauses.append(1)
        if len(pauses) == 1:  # the first pause comes before the snapshot: its moment
            expected.update(stats_report(stats, T0 + 5))

    assert stats_report(stats, T0 + 5, pause=merge_more) == expected
    assert len(pauses) == 1 + len(samples) // ROW_SLICE
    assert stats_report(stats, T0 + 5)["stats"][-1]["num_requests"] == len(samples) + len(pauses)
