"""CSV outputs: Locust's headers and row semantics, the --csv files and download names."""

from __future__ import annotations

import csv
import importlib
import io
import os
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from horde.master.csvfiles import CsvFiles
from horde.master.csvout import (
    EXCEPTIONS_HEADER,
    FAILURES_HEADER,
    NOT_AVAILABLE,
    REQUESTS_HEADER,
    UNKNOWN_TIMESTAMP,
    attachment_filename,
    exceptions_csv,
    failures_csv,
    format_safe_timestamp,
    format_utc_timestamp,
    history_header,
    history_rows,
    readable_percentiles,
    requests_csv,
    requests_rows,
)
from horde.master.exceptions import ExceptionBook
from horde.master.report import PERCENTILES
from horde.master.stats import MergedStats
from horde.protocol.errors import ConfigError
from tests.stats_samples import T0, merged


def locust_dates() -> Any:
    """Return Locust's date helpers module (untyped, hence Any)."""
    return importlib.import_module("locust.util.date")


def locust_env() -> Any:
    """Return a fresh Locust Environment (conftest keeps locust from monkey-patching)."""
    from locust.env import Environment

    return Environment()


def locust_csv(env: Any, method: str) -> list[list[str]]:
    """Run Locust's StatsCSV ``method`` (e.g. ``requests_csv``) on ``env`` and parse it."""
    from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

    buf = io.StringIO()
    getattr(StatsCSV(env, PERCENTILES_TO_REPORT), method)(csv.writer(buf))
    return list(csv.reader(io.StringIO(buf.getvalue())))


def parse(text: str) -> list[list[str]]:
    """Parse CSV text into rows of strings."""
    return list(csv.reader(io.StringIO(text)))


def same_cell(ours: str, theirs: str) -> bool:
    """Whether two CSV cells agree: equal text, or equal numbers (``0`` vs ``0.0``)."""
    if ours == theirs:
        return True
    try:
        return float(ours) == pytest.approx(float(theirs))
    except ValueError:
        return False


def test_headers_are_locusts() -> None:
    """Requests, failures and exceptions headers are exactly what Locust's StatsCSV writes."""
    env = locust_env()
    assert list(REQUESTS_HEADER) == locust_csv(env, "requests_csv")[0]
    assert list(FAILURES_HEADER) == locust_csv(env, "failures_csv")[0]
    assert list(EXCEPTIONS_HEADER) == locust_csv(env, "exceptions_csv")[0]
    assert parse(requests_csv(MergedStats(), T0))[0] == list(REQUESTS_HEADER)


def test_history_header_is_locusts(tmp_path: Path) -> None:
    """The stats history header equals Locust's StatsCSVFileWriter columns."""
    from locust.stats import PERCENTILES_TO_REPORT, StatsCSVFileWriter

    writer = StatsCSVFileWriter(locust_env(), PERCENTILES_TO_REPORT, str(tmp_path / "l"), True)
    try:
        assert history_header() == writer.stats_history_csv_columns
    finally:
        writer.close_files()


@pytest.mark.parametrize("ps", [[0.5, 0.999, 0.9999, 1.0], [0.25, 0.123456789, 0.01]])
def test_readable_percentiles_match_locust(ps: list[float]) -> None:
    """Percentile column titles are formatted as Locust's get_readable_percentiles does."""
    from locust.stats import get_readable_percentiles

    assert readable_percentiles(ps) == get_readable_percentiles(ps)


def test_empty_requests_csv_matches_locust() -> None:
    """With no requests there is only the Aggregated row, matching Locust's cell for cell."""
    ours = parse(requests_csv(MergedStats(), T0))
    theirs = locust_csv(locust_env(), "requests_csv")
    assert len(ours) == len(theirs) == 2
    assert ours[1][:2] == ["", "Aggregated"]
    assert ours[1][11:] == [NOT_AVAILABLE] * len(PERCENTILES)
    assert all(same_cell(a, b) for a, b in zip(ours[1], theirs[1], strict=True))


def test_requests_rows_match_locust_for_one_response_time() -> None:
    """When every request takes 50 ms, every cell but the rates equals Locust's."""
    stats = merged(("GET", "/a", 50.0, None), ("GET", "/a", 50.0, ValueError("boom")))
    env = locust_env()
    for _ in range(2):
        env.stats.log_request("GET", "/a", 50, 100)
    env.stats.log_error("GET", "/a", "boom")
    ours = parse(requests_csv(stats, T0 + 5))
    theirs = locust_csv(env, "requests_csv")
    rates = {REQUESTS_HEADER.index("Requests/s"), REQUESTS_HEADER.index("Failures/s")}
    assert len(ours) == len(theirs) == 3
    for our_row, their_row in zip(ours, theirs, strict=True):
        cells = [
            (a, b)
            for i, (a, b) in enumerate(zip(our_row, their_row, strict=True))
            if i not in rates
        ]
        assert all(same_cell(a, b) for a, b in cells), (our_row, their_row)


def test_requests_rows_keep_microseconds_and_locust_order() -> None:
    """Rows are sorted by (name, method), end with Aggregated, and keep µs precision."""
    stats = merged(
        ("POST", "/b", 0.2374, None),
        ("GET", "/b", 1.5, None),
        ("GET", "/a", 2.0, ValueError("x")),
    )
    rows = requests_rows(stats, T0 + 5)
    assert [(r[0], r[1]) for r in rows] == [
        ("GET", "/a"),
        ("GET", "/b"),
        ("POST", "/b"),
        ("", "Aggregated"),
    ]
    post = rows[2]
    assert post[2:4] == [1, 0]
    assert post[4] == post[6] == post[7] == 0.237
    assert post[11:] == [0.237] * len(PERCENTILES)
    total = rows[3]
    assert total[2:4] == [3, 1]
    assert total[6] == 0.237 and total[7] == 2.0 and total[-1] == 2.0
    assert total[8] == 100.0


def test_untimed_requests_give_zero_percentiles_not_na() -> None:
    """An entry with requests but no response times has 0 percentiles, as in Locust."""
    row, total = requests_rows(merged(("GET", "/ws", None, None)), T0 + 5)
    assert row[2] == 1
    assert row[4:8] == [0.0, 0.0, 0.0, 0.0]
    assert row[11:] == [0.0] * len(PERCENTILES)
    assert total[11:] == [0.0] * len(PERCENTILES)


def test_failures_csv_rows_and_timestamps() -> None:
    """Failure rows carry method, name, error, count and Locust-formatted UTC times."""
    locust_format = locust_dates().format_utc_timestamp
    stats = merged(("GET", "/a", 5.0, ValueError("bad")), ("GET", "/a", 5.0, ValueError("bad")))
    header, row = parse(failures_csv(stats))
    assert header == list(FAILURES_HEADER)
    assert row == ["GET", "/a", "ValueError('bad')", "2", locust_format(T0), locust_format(T0)]
    assert format_utc_timestamp(T0 + 0.9) == "2023-11-14T22:13:20Z"
    assert parse(failures_csv(MergedStats())) == [list(FAILURES_HEADER)]


def test_exceptions_csv_rows() -> None:
    """Exception rows are count, message, multi-line traceback and sorted nodes."""
    book = ExceptionBook()
    book.record("boom", "Traceback:\n  line 1\n", "w2")
    book.record("boom", "Traceback:\n  line 1\n", "w1")
    book.record("once", "tb", "w1")
    header, *rows = parse(exceptions_csv(book.groups()))
    assert header == list(EXCEPTIONS_HEADER)
    assert rows == [["2", "boom", "Traceback:\n  line 1\n", "w1, w2"], ["1", "once", "tb", "w1"]]


def test_history_rows_full_and_aggregated_only() -> None:
    """History rows: int timestamp, users, ':2f' rates, one per entry plus Aggregated."""
    stats = merged(("GET", "/a", 10.0, None), ("GET", "/b", 20.0, ValueError("x")))
    now = T0 + 5.7
    rows = history_rows(stats, 7, now)
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        (int(now), 7, "GET", "/a"),
        (int(now), 7, "GET", "/b"),
        (int(now), 7, "", "Aggregated"),
    ]
    total = rows[-1]
    assert total[4] == f"{stats.total.current_rps(now):2f}"
    assert total[5] == f"{stats.total.current_fail_per_sec(now):2f}"
    assert len(total[4].split(".")[1]) == 6
    assert total[6:17] == [round(v, 3) for v in stats.total.percentiles_ms(PERCENTILES)]
    assert total[17:19] == [2, 1]
    assert all(len(r) == len(history_header()) for r in rows)
    assert history_rows(stats, 7, now, full_history=False) == [total]


def test_history_rows_without_requests_say_na() -> None:
    """An empty run's history row has N/A percentiles and zero totals."""
    (row,) = history_rows(MergedStats(), 0, T0)
    assert row[:6] == [int(T0), 0, "", "Aggregated", "0.000000", "0.000000"]
    assert row[6:17] == [NOT_AVAILABLE] * len(PERCENTILES)
    assert row[17:] == [0, 0, 0.0, 0.0, 0.0, 0.0, 0]


def test_csv_files_rewrite_snapshots_and_append_history(tmp_path: Path) -> None:
    """Each write replaces the snapshot files and appends history under one header."""
    files = CsvFiles(str(tmp_path / "run"), full_history=True)
    book = ExceptionBook()
    files.write(merged(("GET", "/a", 1.0, None)), book.groups(), 3, T0 + 1)
    book.record("boom", "tb", "w1")
    files.write(
        merged(("GET", "/a", 1.0, None), ("GET", "/a", 2.0, None)), book.groups(), 4, T0 + 2
    )
    stats_rows = parse((tmp_path / "run_stats.csv").read_text())
    assert [r[:3] for r in stats_rows[1:]] == [["GET", "/a", "2"], ["", "Aggregated", "2"]]
    assert parse((tmp_path / "run_failures.csv").read_text()) == [list(FAILURES_HEADER)]
    assert parse((tmp_path / "run_exceptions.csv").read_text())[1] == ["1", "boom", "tb", "w1"]
    history = parse(Path(files.history_path).read_text())
    assert files.history_path == str(tmp_path / "run_stats_history.csv")
    assert history[0] == history_header()
    assert [r[:4] for r in history[1:]] == [
        [str(int(T0 + 1)), "3", "GET", "/a"],
        [str(int(T0 + 1)), "3", "", "Aggregated"],
        [str(int(T0 + 2)), "4", "GET", "/a"],
        [str(int(T0 + 2)), "4", "", "Aggregated"],
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "run_exceptions.csv",
        "run_failures.csv",
        "run_stats.csv",
        "run_stats_corrected.csv",
        "run_stats_history.csv",
    ]


def test_csv_files_truncate_old_history_and_skip_entries_without_full_history(
    tmp_path: Path,
) -> None:
    """The first write starts the history afresh; without full history only Aggregated rows."""
    old = tmp_path / "run_stats_history.csv"
    old.write_text("stale,rows\n1,2\n")
    files = CsvFiles(str(tmp_path / "run"), full_history=False)
    files.write(merged(("GET", "/a", 1.0, None)), (), 1, T0 + 1)
    history = parse(old.read_text())
    assert history[0] == history_header()
    assert [r[3] for r in history[1:]] == ["Aggregated"]


def test_csv_files_missing_folder_is_a_config_error(tmp_path: Path) -> None:
    """Writing under a folder that does not exist raises ConfigError naming it."""
    files = CsvFiles(str(tmp_path / "nope" / "run"), full_history=False)
    with pytest.raises(ConfigError, match="nope"):
        files.write(MergedStats(), (), 0, T0)


def test_csv_files_failed_replace_leaves_no_temp_file(tmp_path: Path) -> None:
    """A rewrite that cannot replace its target raises ConfigError and cleans up."""
    (tmp_path / "run_stats.csv").mkdir()
    files = CsvFiles(str(tmp_path / "run"), full_history=False)
    with pytest.raises(ConfigError, match=r"run_stats\.csv"):
        files.write(MergedStats(), (), 0, T0)
    assert [p.name for p in tmp_path.iterdir()] == ["run_stats.csv"]


def test_attachment_filename_follows_locust() -> None:
    """Download names are Locust_<ts>_<locustfile>[_<host>][_<kind>].<ext>."""
    name = attachment_filename(T0, "locustfile.py", "example.com", "requests", tz=UTC)
    assert name == "Locust_2023-11-14-22h13_locustfile.py_example.com_requests.csv"
    assert attachment_filename(T0, "lf.py", "", "failures", tz=UTC) == (
        "Locust_2023-11-14-22h13_lf.py_failures.csv"
    )
    assert attachment_filename(T0, "lf.py", "h", "", "html", tz=UTC) == (
        "Locust_2023-11-14-22h13_lf.py_h.html"
    )
    assert attachment_filename(None, "lf.py", "", "requests") == (
        f"Locust_{UNKNOWN_TIMESTAMP}_lf.py_requests.csv"
    )


def test_safe_timestamp_is_locusts_local_time() -> None:
    """Without a time zone the timestamp is Locust's format_safe_timestamp (local time)."""
    locust_format = locust_dates().format_safe_timestamp
    assert format_safe_timestamp(T0 + 59.9) == locust_format(T0 + 59.9)


@pytest.mark.parametrize(
    "host",
    [
        'http://x/"; rm\r\nSet-Cookie: a=b',
        "../../etc/passwd",
        "C:\\Windows\\x",
        "h\x00\x07\x7f\x1b[31m",
        "h\u00fc\u2028st;filename*=x,y 'z'",
        "a" * 1000,
    ],
)
def test_attachment_filename_neutralises_hostile_hosts(host: str) -> None:
    """Whatever the host, the name is one short header-safe token with no separators."""
    name = attachment_filename(T0, "lf.py", host, "requests", tz=UTC)
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._~+-")
    assert set(name) <= allowed
    assert name.startswith("Locust_2023-11-14-22h13_lf.py_")
    assert name.endswith("_requests.csv")
    assert os.sep not in name and len(name) < 200
