"""The --json output: Locust's serialized request entries built from merged stats."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from horde.master.jsonout import dumps, locust_json, response_times
from horde.master.stats import MergedStats
from horde.protocol.locust_stats import locust_bucket
from tests.stats_samples import T0, Sample, merged


def locust_serialized(*samples: Sample) -> list[dict[str, Any]]:
    """Log ``samples`` into a Locust RequestStats and return its ``serialize_stats()``."""
    from locust.stats import RequestStats

    lstats: Any = RequestStats(use_response_times_cache=False)
    for method, name, ms, exc in samples:
        lstats.log_request(method, name, ms, 100)
        if exc is not None:
            lstats.log_error(method, name, exc)
    result: list[dict[str, Any]] = lstats.serialize_stats()
    return result


def test_keys_are_locusts_in_locusts_order() -> None:
    """Each entry has exactly StatsEntry.serialize()'s keys, in the same order."""
    samples: tuple[Sample, ...] = (("GET", "/a", 5.0, None),)
    (ours,) = locust_json(merged(*samples))
    (theirs,) = locust_serialized(*samples)
    assert list(ours) == list(theirs)


def test_figures_match_locust_for_the_same_requests() -> None:
    """Counts, extremes, totals and the response-time histogram equal Locust's."""
    samples: tuple[Sample, ...] = (
        ("GET", "/a", 50.0, None),
        ("GET", "/a", 50.0, "boom"),
        ("GET", "/a", 147.0, None),
        ("GET", "/a", 3432.0, None),
        ("POST", "/b", None, None),
    )
    ours = locust_json(merged(*samples))
    theirs = locust_serialized(*samples)
    assert [(e["name"], e["method"]) for e in ours] == [("/a", "GET"), ("/b", "POST")]
    by_key = {(e["name"], e["method"]): e for e in theirs}
    for entry in ours:
        locust = by_key[(entry["name"], entry["method"])]
        for key in (
            "num_requests",
            "num_none_requests",
            "num_failures",
            "total_content_length",
            "response_times",
            "min_response_time",
            "max_response_time",
        ):
            assert entry[key] == locust[key], key
        assert entry["total_response_time"] == pytest.approx(locust["total_response_time"])
    assert ours[0]["response_times"] == {50: 2, 150: 1, 3400: 1}


def test_response_times_add_up_to_timed_requests() -> None:
    """The response_times counts sum to the timed requests and every key is a Locust key."""
    rng = random.Random(7)
    samples: list[Sample] = [("GET", "/a", rng.lognormvariate(3, 2), None) for _ in range(2000)]
    samples += [("GET", "/a", None, None)] * 5
    stats = merged(*samples)
    (entry,) = locust_json(stats)
    times = entry["response_times"]
    assert sum(times.values()) == entry["num_requests"] - entry["num_none_requests"] == 2000
    assert all(locust_bucket(k) == k for k in times)
    assert list(times) == sorted(times)
    assert response_times(stats.entries()[0]) == times


def test_times_keep_microseconds_and_run_span() -> None:
    """Times are ms with µs precision; start and last request times are the run's."""
    stats = merged(("GET", "/a", 0.2374, None), ("GET", "/a", 0.6, None))
    (entry,) = locust_json(stats)
    assert entry["min_response_time"] == 0.237
    assert entry["max_response_time"] == 0.6
    assert entry["total_response_time"] == 0.837
    assert entry["response_times"] == {0: 1, 1: 1}
    assert entry["start_time"] == stats.start_time
    assert entry["last_request_timestamp"] == stats.last_request_timestamp
    assert entry["num_reqs_per_sec"] == {int(T0): 2}
    assert entry["num_fail_per_sec"] == {}


def test_inactive_entries_and_the_total_are_left_out() -> None:
    """Like serialize_stats(): no Aggregated entry, and no entry without activity."""
    stats = merged(("GET", "/a", 1.0, None))
    assert [e["name"] for e in locust_json(stats)] == ["/a"]
    stats.reset(T0 + 10)
    assert locust_json(stats) == []
    assert locust_json(MergedStats()) == []


def test_dumps_uses_locusts_indentation() -> None:
    """dumps() is json.dumps with indent=4, so integer keys become strings as in Locust."""
    stats = merged(("GET", "/a", 50.0, None))
    text = dumps(stats)
    assert text == json.dumps(locust_json(stats), indent=4)
    assert text.startswith('[\n    {\n        "name": "/a",')
    assert json.loads(text)[0]["response_times"] == {"50": 1}
