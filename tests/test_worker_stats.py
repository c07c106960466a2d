"""The worker's RequestRecorder: recording, horde deltas, Locust reports and resets."""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import msgpack
import pytest

from horde.protocol.histogram import bucket_index
from horde.protocol.locust_stats import LocustStatsReport, locust_error_key
from horde.protocol.stats import HordeStatsDelta
from horde.worker.stats import RequestRecorder
from horde.worker.statsview import WorkerStatsView

T0 = 1_700_000_000.0


def locust_stats() -> ModuleType:
    """Import Locust's stats module without letting locust monkey-patch the test process."""
    os.environ.setdefault("LOCUST_SKIP_MONKEY_PATCH", "1")
    import locust.stats

    return locust.stats


def take(rec: RequestRecorder, now: float = T0 + 3, seq: int = 1) -> HordeStatsDelta:
    """Take a horde delta with fixed run metadata."""
    return rec.take_horde_delta(
        run_id="r", epoch=0, seq=seq, now=now, user_classes_count={"U": 1}, user_count=1
    )


def wire(value: Any) -> Any:
    """Return ``value`` after a msgpack round trip, decoded as Locust decodes."""
    return msgpack.unpackb(msgpack.packb(value), raw=False, strict_map_key=False)


def test_record_accumulates_counters_and_histogram() -> None:
    """Requests add counts, µs totals, extremes, histogram buckets and per-second counts."""
    rec = RequestRecorder()
    rec.record("GET", "/a", 1.5, 10, None, T0 + 0.2)
    rec.record("GET", "/a", 0.2374, 20, None, T0 + 1.7)
    rec.record("GET", "/a", None, 0, None, T0 + 1.8)
    (entry,) = take(rec).entries
    assert entry.num_requests == 3
    assert entry.num_none_requests == 1
    assert entry.total_rt_us == 1500 + 237
    assert (entry.min_rt_us, entry.max_rt_us) == (237, 1500)
    assert entry.total_content_length == 30
    assert entry.buckets == (bucket_index(237), 1, bucket_index(1500), 1)
    assert entry.per_sec == (int(T0), 1, 0, int(T0) + 1, 2, 0)


def test_failures_count_as_requests_and_errors_use_locust_keys() -> None:
    """A request with an exception is a request and a failure; addresses are normalised."""

    class Boom:
        """An object whose repr carries an address."""

    rec = RequestRecorder()
    rec.record("GET", "/a", 5.0, 0, RuntimeError(Boom()), T0)
    rec.record("GET", "/a", 6.0, 0, RuntimeError(Boom()), T0 + 2)
    rec.record("GET", "/a", 7.0, 0, "plain text", T0 + 2)
    delta = take(rec)
    (entry,) = delta.entries
    assert (entry.num_requests, entry.num_failures) == (3, 3)
    assert entry.per_sec == (int(T0), 1, 1, int(T0) + 2, 2, 2)
    errors = {e.error: e for e in delta.errors}
    assert len(errors) == 2
    boom = next(e for text, e in errors.items() if "0x...." in text)
    assert (boom.occurrences, boom.first_seen, boom.last_seen) == (2, T0, T0 + 2)
    assert errors["plain text"].occurrences == 1


def test_take_resets_and_omits_idle_entries() -> None:
    """After a take the figures restart at zero and idle entries are left out."""
    rec = RequestRecorder()
    rec.record("GET", "/a", 1.0, 0, ValueError("x"), T0)
    rec.record("GET", "/b", 1.0, 0, None, T0)
    first = take(rec)
    assert len(first.entries) == 2 and len(first.errors) == 1
    rec.record("GET", "/b", 2.0, 0, None, T0 + 4)
    second = take(rec, now=T0 + 6, seq=2)
    assert [e.num_requests for e in second.entries] == [1]
    assert second.errors == ()
    assert take(rec, now=T0 + 9, seq=3).entries == ()


def test_names_are_announced_once_until_forgotten() -> None:
    """An id is defined in the first delta using it, then again only after forget_announcements."""
    rec = RequestRecorder()
    rec.record("GET", "/a", 1.0, 0, None, T0)
    first = take(rec)
    assert first.names == ((first.entries[0].entry_id, "GET", "/a"),)
    rec.record("GET", "/a", 1.0, 0, None, T0 + 1)
    rec.record("POST", "/a", 1.0, 0, None, T0 + 1)
    second = take(rec, seq=2)
    assert [(m, n) for _, m, n in second.names] == [("POST", "/a")]
    rec.forget_announcements()
    rec.record("GET", "/a", 1.0, 0, None, T0 + 2)
    third = take(rec, seq=3)
    assert third.names == first.names


def test_reset_drops_figures_but_keeps_ids() -> None:
    """reset() discards accumulated data; ids stay stable and announced."""
    rec = RequestRecorder()
    rec.record("GET", "/a", 1.0, 0, ValueError("x"), T0)
    first_id = take(rec).entries[0].entry_id
    rec.record("GET", "/a", 1.0, 0, ValueError("x"), T0 + 1)
    rec.reset()
    assert take(rec, seq=2).entries == ()
    rec.record("GET", "/a", 1.0, 0, None, T0 + 2)
    delta = take(rec, seq=3)
    assert delta.entries[0].entry_id == first_id and delta.names == ()


def test_record_binds_to_locust_request_event_keywords() -> None:
    """record accepts events.request's keyword arguments (plus now) and ignores the extras."""
    rec = RequestRecorder()
    rec.record(
        request_type="GET",
        name="/a",
        response_time=3.0,
        response_length=None,  # seen from custom clients
        exception=None,
        context={},
        response=None,
        url="http://x/a",
        start_time=T0,
        now=T0 + 0.003,
    )
    (entry,) = take(rec).entries
    assert (entry.num_requests, entry.total_content_length) == (1, 0)


def test_horde_delta_round_trips_through_the_wire() -> None:
    """A recorder delta validates after msgpack and equals the original."""
    rec = RequestRecorder()
    for i in range(50):
        rec.record(
            "GET", f"/n{i % 5}", i * 1.37, i, ValueError(i % 2) if i % 7 == 0 else None, T0 + i / 10
        )
    delta = take(rec)
    assert HordeStatsDelta.from_wire(wire(delta.to_wire())) == delta


def record_mix(rec: RequestRecorder, stats: Any = None) -> None:
    """Record a fixed mix of requests, mirroring them into Locust's RequestStats if given."""
    samples: list[tuple[str, str, float | None, int]]
    samples = [("GET", "/a", rt, 100) for rt in (0.4, 1.5, 12.3, 99.6, 145.0, 155.0, 3432.0)]
    samples += [("POST", "/b", 58760.0, 5), ("POST", "/b", None, 0)]
    for method, name, rt, length in samples:
        rec.record(method, name, rt, length, None, T0 + 1)
        if stats is not None:
            stats.log_request(method, name, rt, length)
    rec.record("GET", "/a", 2.0, 0, ValueError("bad"), T0 + 2)
    if stats is not None:
        stats.log_request("GET", "/a", 2, 0)
        stats.log_error("GET", "/a", ValueError("bad"))


def test_locust_report_is_accepted_by_horde_and_locust() -> None:
    """A Locust-format report validates with from_wire and unserializes into Locust's stats."""
    rec = RequestRecorder(exact_locust_buckets=True)
    expected = locust_stats().RequestStats(use_response_times_cache=False)
    record_mix(rec, expected)
    report = rec.take_locust_report(now=T0 + 3, user_classes_count={"U": 2}, user_count=2)
    data = wire(report.to_wire())
    assert LocustStatsReport.from_wire(data) == report
    merged = locust_stats().RequestStats(use_response_times_cache=False)
    for entry in data["stats"]:
        got = locust_stats().StatsEntry.unserialize(entry, merged)
        merged.entries[(got.name, got.method)].extend(got)
    merged.total.extend(locust_stats().StatsEntry.unserialize(data["stats_total"], merged))
    for key, want in expected.entries.items():
        have = merged.entries[key]
        assert have.num_requests == want.num_requests
        assert have.num_none_requests == want.num_none_requests
        assert have.num_failures == want.num_failures
        assert dict(have.response_times) == dict(want.response_times)
        assert have.max_response_time == pytest.approx(want.max_response_time)
        assert have.median_response_time == pytest.approx(want.median_response_time)
    assert merged.total.name == "Aggregated" and merged.total.method == ""
    assert merged.total.num_requests == expected.total.num_requests
    assert dict(merged.total.response_times) == dict(expected.total.response_times)
    assert list(data["errors"]) == list(expected.serialize_errors())
    (err,) = data["errors"].values()
    assert err["occurrences"] == 1 and err["first_seen"] == T0 + 2


def test_locust_report_from_midpoints_is_close() -> None:
    """Without exact buckets the Locust buckets come from midpoints, within one Locust step."""
    rec = RequestRecorder()
    record_mix(rec)
    report = rec.take_locust_report(now=T0 + 3, user_classes_count={}, user_count=0)
    a = next(e for e in report.stats if e.name == "/a")
    assert sum(a.response_times.values()) == 8
    assert set(a.response_times) <= {0, 1, 2, 12, 100, 140, 150, 160, 3400}
    assert a.min_response_time == pytest.approx(0.4) and a.max_response_time == 3432.0


def test_locust_report_resets_and_keys_errors_like_locust() -> None:
    """Errors are keyed by Locust's sha256 key; a second report is empty."""
    rec = RequestRecorder()
    record_mix(rec)
    report = rec.take_locust_report(now=T0 + 3, user_classes_count={}, user_count=0)
    assert list(report.errors) == [locust_error_key("GET", "/a", "ValueError('bad')")]
    assert report.stats_total.start_time <= T0 + 1
    again = rec.take_locust_report(now=T0 + 6, user_classes_count={}, user_count=0)
    assert again.stats == () and again.errors == {}
    assert again.stats_total.num_requests == 0 and again.stats_total.start_time == T0 + 3


def test_worker_stats_view_reads_the_requests_since_the_last_take() -> None:
    """environment.runner.stats on a worker: per entry and in total, in ms, as Locust's
    names read them; a take empties it, as a Locust worker's report resets its stats."""
    rec = RequestRecorder()
    for ms in (10.0, 20.0, 30.0, 40.0):
        rec.record("GET", "/a", ms, 100, None, 1000.0)
    rec.record("POST", "/b", 50.0, 0, RuntimeError("no"), 1001.0)
    view = WorkerStatsView(rec)
    a = view.get("/a", "GET")
    assert (a.num_requests, a.num_failures, a.fail_ratio) == (4, 0, 0.0)
    assert a.avg_response_time == 25.0 and a.min_response_time == 10.0
    assert a.max_response_time == 40.0 and a.avg_content_length == 100.0
    assert abs(a.median_response_time - 20.0) / 20.0 < 0.01
    total = view.total
    assert (total.name, total.num_requests, total.num_failures) == ("Aggregated", 5, 1)
    assert total.fail_ratio == 0.2 and total.max_response_time == 50.0
    assert total.min_response_time == 10.0 and total.avg_response_time == 30.0
    assert total.num_reqs_per_sec == {1000: 4, 1001: 1}
    assert view.get("/none", "GET").num_requests == 0
    rec.take_locust_report(now=1002.0, user_classes_count={}, user_count=0)
    assert WorkerStatsView(rec).total.num_requests == 0
