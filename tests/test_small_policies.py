"""Small pure pieces of the master: time spans, log throttling, exception grouping, settings."""

from __future__ import annotations

import pytest

from horde.master.config import MasterSettings
from horde.master.exceptions import ExceptionBook
from horde.master.ratelimit import LogThrottle
from horde.master.timespan import parse_timespan
from horde.protocol.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("20", 20.0),
        ("20s", 20.0),
        ("3m", 180.0),
        ("1h20m", 4800.0),
        ("1h30m10s", 5410.0),
        (" 2.5 ", 2.5),
        ("1.5m", 90.0),
        (45, 45.0),
    ],
)
def test_parse_timespan_accepts_locust_forms(text: str, seconds: float) -> None:
    """Run times are read as Locust reads them."""
    assert parse_timespan(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "10x", "m", "5m3", "-3", "0", "s5", "inf", True])
def test_parse_timespan_rejects_garbage(text: str) -> None:
    """Bad run times raise ValueError quoting the text."""
    with pytest.raises(ValueError):
        parse_timespan(text)  # type: ignore[arg-type]


def test_log_throttle_allows_one_line_per_interval_and_counts_the_rest() -> None:
    """Lines under one key are let through once per interval with the suppressed count."""
    throttle = LogThrottle(interval=5.0)
    assert throttle.allow("k", 0.0) == 0
    assert throttle.allow("k", 1.0) is None
    assert throttle.allow("k", 4.9) is None
    assert throttle.allow("other", 4.9) == 0
    assert throttle.allow("k", 5.0) == 2
    assert throttle.allow("k", 6.0) is None


def test_log_throttle_memory_is_bounded() -> None:
    """The throttle forgets old keys instead of growing without bound."""
    throttle = LogThrottle(interval=5.0, max_keys=10)
    for i in range(100):
        throttle.allow(f"k{i}", 0.0)
    assert len(throttle._last) <= 10


def test_exception_book_groups_counts_and_nodes() -> None:
    """Exceptions group by message and traceback, counting occurrences and workers."""
    book = ExceptionBook()
    book.record("boom", "tb", "w1")
    book.record("boom", "tb", "w2")
    book.record("boom", "tb", "w1")
    book.record("other", "tb2", "w1")
    rows = [g.to_json() for g in book.groups()]
    assert rows[0] == {"count": 3, "msg": "boom", "traceback": "tb", "nodes": "w1, w2"}
    assert rows[1]["count"] == 1


def test_exception_book_is_bounded() -> None:
    """Past the cap, new kinds of exception are counted as dropped, not stored."""
    book = ExceptionBook(max_distinct=2)
    for i in range(5):
        book.record(f"e{i}", "", "w")
    assert len(book.groups()) == 2
    assert book.dropped == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"heartbeat_interval": 0},
        {"heartbeat_liveness": 0},
        {"spawn_rate": -1},
        {"users": -1},
        {"users": 2_000_000},
        {"run_time": 0.0},
        {"web_port": 70000},
        {"expect_workers": 0},
        {"sweep_interval": float("nan")},
    ],
)
def test_master_settings_reject_bad_values(kwargs: dict[str, object]) -> None:
    """Invalid settings raise ConfigError naming the setting."""
    with pytest.raises(ConfigError) as info:
        MasterSettings(**kwargs)  # type: ignore[arg-type]
    assert next(iter(kwargs)) in str(info.value)
