"""Stats payloads: wire round trips, kept extras, Locust rules, garbage -> ProtocolError only."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
from types import ModuleType
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from horde.protocol.errors import ProtocolError
from horde.protocol.histogram import NUM_BUCKETS
from horde.protocol.locust_stats import (
    LocustEntry,
    LocustError,
    LocustStatsReport,
    locust_bucket,
    locust_error_key,
    normalise_error,
)
from horde.protocol.stats import EntryDelta, ErrorDelta, HordeStatsDelta

ENTRY = EntryDelta(3, 5, 1, 2, 9_000, 1_000, 4_000, 500, (300, 1, 600, 3), (100, 3, 1, 101, 2, 1))
DELTA = HordeStatsDelta(
    run_id="run1",
    epoch=2,
    seq=7,
    sent_at=102.5,
    names=((3, "GET", "/a"),),
    entries=(ENTRY, EntryDelta(4, 1, 1, 0, 0, None, 0, 0, (), (100, 1, 0))),
    errors=(ErrorDelta("GET", "/a", "ValueError('x')", 2, 100.1, 101.9),),
    user_classes_count={"User": 3},
    user_count=3,
)


def listed(delta: HordeStatsDelta) -> dict[str, Any]:
    """The delta's wire dict with its entries in the list form (to edit entry by entry)."""
    return dataclasses.replace(delta, pack=False).to_wire()


def locust_stats() -> ModuleType:
    """Import Locust's stats module without letting locust monkey-patch the test process."""
    os.environ.setdefault("LOCUST_SKIP_MONKEY_PATCH", "1")
    import locust.stats

    return locust.stats


def wire(value: Any) -> Any:
    """Return ``value`` after a msgpack round trip, decoded as Locust decodes."""
    return msgpack.unpackb(msgpack.packb(value), raw=False, strict_map_key=False)


def locust_report_data() -> dict[str, Any]:
    """Return a stats payload built by Locust's own worker-side code."""
    stats = locust_stats().RequestStats(use_response_times_cache=False)
    stats.log_request("GET", "/a", 12.5, 100)  # Locust logs float times
    stats.log_request("GET", "/a", 155, 100)
    stats.log_request("POST", "/b", None, 0)  # Locust allows None
    stats.log_error("GET", "/a", ValueError("boom"))
    data: dict[str, Any] = {
        "stats": stats.serialize_stats(),
        "stats_total": stats.total.get_stripped_report(),
        "errors": stats.serialize_errors(),
        "user_classes_count": {"User": 2},
        "user_count": 2,
        "custom": {"from": "a report_to_master listener"},
    }
    return wire(data)


def test_horde_delta_round_trips_through_msgpack() -> None:
    """A horde.stats delta survives to_wire, msgpack and from_wire unchanged, packed (the
    default) or listed."""
    packed = DELTA.to_wire()
    assert packed["entries"] == [] and len(packed["packed"]) == 3
    assert HordeStatsDelta.from_wire(wire(packed)) == DELTA
    assert HordeStatsDelta.from_wire(wire(listed(DELTA))) == DELTA


def test_entry_wire_form_is_a_compact_list() -> None:
    """An entry travels as a flat list in field order, not a dict."""
    assert ENTRY.to_wire() == [
        3,
        5,
        1,
        2,
        9_000,
        1_000,
        4_000,
        500,
        [300, 1, 600, 3],
        [100, 3, 1, 101, 2, 1],
    ]


def test_unknown_keys_and_trailing_items_round_trip() -> None:
    """Unknown dict keys and trailing list items are kept in extra and written back out."""
    data = listed(DELTA)
    data["future"] = {"x": 1}
    data["entries"][0].append("tail")
    data["errors"][0].append(42)
    delta = HordeStatsDelta.from_wire(wire(data))
    assert delta.extra == {"future": {"x": 1}}
    assert delta.entries[0].extra == ("tail",)
    assert delta.errors[0].extra == (42,)
    assert wire(delta.to_wire()) == wire(data)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d.pop("seq"), "field"),
        (lambda d: d.__setitem__("epoch", -1), "type"),
        (lambda d: d.__setitem__("epoch", True), "type"),
        (lambda d: d.__setitem__("sent_at", float("nan")), "type"),
        (lambda d: d.__setitem__("names", [[1, "GET"]]), "shape"),
        (lambda d: d["entries"][0].__setitem__(1, 5.0), "type"),
        (lambda d: d["entries"][0].__setitem__(8, [300, 1, 600]), "shape"),
        (lambda d: d["entries"][0].__setitem__(8, [NUM_BUCKETS, 4]), "field"),
        (lambda d: d["entries"][0].__setitem__(8, [300, 1, 600, 2]), "field"),
        (lambda d: d["entries"][0].__setitem__(8, [300, 1.0, 600, 3]), "type"),
        (lambda d: d["entries"][0].__setitem__(9, [100, -3, 1]), "field"),
        (lambda d: d["entries"][0].__setitem__(5, None), "field"),
        (lambda d: d["entries"][0].__setitem__(5, 5_000), "field"),
        (lambda d: d["entries"][1].__setitem__(5, 0), "field"),
        (lambda d: d["entries"][0].__setitem__(9, [100, 3]), "shape"),
        (lambda d: d["errors"][0].__setitem__(3, "2"), "type"),
        (lambda d: d.__setitem__("user_classes_count", {"User": -1}), "type"),
    ],
)
def test_invalid_fields_are_rejected(mutate: Any, reason: str) -> None:
    """Each malformed field raises ProtocolError with a matching reason tag."""
    data = copy.deepcopy(listed(DELTA))
    mutate(data)
    with pytest.raises(ProtocolError) as info:
        HordeStatsDelta.from_wire(data)
    assert info.value.reason == reason


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=5)
    | st.binary(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=6)
    ),
    max_leaves=30,
)


def near_valid(base: Any) -> st.SearchStrategy[Any]:
    """Return a strategy that replaces one random leaf or item of ``base`` with garbage."""

    def mutate(data: Any, path: list[int], junk: Any) -> Any:
        data = copy.deepcopy(data)
        node = data
        for step in path[:-1]:
            items = list(node.values()) if isinstance(node, dict) else node
            if not isinstance(items, list) or not items:
                break
            node = items[step % len(items)]
        if isinstance(node, dict) and node:
            key = list(node)[path[-1] % len(node)]
            node[key] = junk
        elif isinstance(node, list) and node:
            node[path[-1] % len(node)] = junk
        return data

    return st.builds(
        mutate, st.just(base), st.lists(st.integers(0, 50), min_size=1, max_size=4), JSONISH
    )


@settings(max_examples=300, deadline=None)
@given(st.one_of(JSONISH, near_valid(listed(DELTA))))
def test_horde_garbage_only_raises_protocol_error(data: Any) -> None:
    """Arbitrary values either decode to a delta or raise ProtocolError, never anything else."""
    with contextlib.suppress(ProtocolError):
        HordeStatsDelta.from_wire(data)


@settings(max_examples=300, deadline=None)
@given(st.one_of(JSONISH, near_valid(locust_report_data())))
def test_locust_garbage_only_raises_protocol_error(data: Any) -> None:
    """Arbitrary values either decode to a Locust report or raise ProtocolError only."""
    with contextlib.suppress(ProtocolError):
        LocustStatsReport.from_wire(data)


@settings(max_examples=200, deadline=None)
@given(JSONISH)
def test_entry_and_error_garbage_only_raise_protocol_error(data: Any) -> None:
    """The list payloads reject garbage with ProtocolError only."""
    for parse in (
        EntryDelta.from_wire,
        ErrorDelta.from_wire,
        LocustEntry.from_wire,
        LocustError.from_wire,
    ):
        with contextlib.suppress(ProtocolError):
            parse(data)


def test_huge_numbers_are_rejected_not_crashing() -> None:
    """Infinite times raise ProtocolError; ints beyond float range are taken, not crashed on."""
    data = listed(DELTA)
    data["sent_at"] = float("inf")
    with pytest.raises(ProtocolError):
        HordeStatsDelta.from_wire(data)
    report = locust_report_data()
    report["stats_total"]["total_response_time"] = 10**400
    assert LocustStatsReport.from_wire(report).stats_total.total_response_time == 10**400


def test_locust_report_from_locust_itself_round_trips() -> None:
    """Data produced by Locust's RequestStats validates, keeps extras, and round-trips."""
    data = locust_report_data()
    report = LocustStatsReport.from_wire(data)
    assert report.extra == {"custom": {"from": "a report_to_master listener"}}
    assert {(e.method, e.name) for e in report.stats} == {("GET", "/a"), ("POST", "/b")}
    assert report.stats_total.name == "Aggregated" and report.stats_total.num_requests == 3
    (error,) = report.errors.values()
    assert error.error == "ValueError('boom')" and error.occurrences == 1
    assert wire(report.to_wire()) == data


def test_locust_entry_tolerates_none_and_floats() -> None:
    """None min/last timestamps and float times validate as Locust sends them."""
    data = locust_report_data()
    b = next(e for e in data["stats"] if e["name"] == "/b")
    entry = LocustEntry.from_wire(b)
    assert entry.min_response_time is None
    assert entry.num_none_requests == 1
    a = next(e for e in data["stats"] if e["name"] == "/a")
    assert LocustEntry.from_wire(a).total_response_time == pytest.approx(167.5)


def test_locust_error_seen_times_are_optional() -> None:
    """A Locust error without first_seen/last_seen validates with None."""
    err = LocustError.from_wire({"name": "/a", "method": "GET", "error": "x", "occurrences": 1})
    assert err.first_seen is None and err.last_seen is None


@pytest.mark.parametrize("key", ["response_times", "num_reqs_per_sec", "num_fail_per_sec"])
def test_locust_count_dicts_need_int_keys(key: str) -> None:
    """A Locust count dict with a str or float key is rejected."""
    data = locust_report_data()
    data["stats_total"][key] = {"5": 1}
    with pytest.raises(ProtocolError):
        LocustStatsReport.from_wire(data)
    data["stats_total"][key] = {5.5: 1}
    with pytest.raises(ProtocolError):
        LocustStatsReport.from_wire(data)


@pytest.mark.parametrize(
    "ms", [0, 0.4, 0.5, 1.5, 2.5, 99.4, 99.5, 145, 155, 999, 1450, 3432, 9999, 58760, 123456.7]
)
def test_locust_bucket_matches_locust(ms: float) -> None:
    """locust_bucket rounds exactly as Locust's bucket_response_time (banker's rounding)."""
    assert locust_bucket(ms) == locust_stats().bucket_response_time(ms)


class Thing:
    """An object whose default repr carries a memory address."""


@pytest.mark.parametrize(
    "error",
    [
        ValueError("plain"),
        "a string error",
        None,
        RuntimeError(Thing()),
        f"<{Thing()!r}",  # an address without a closing '>' is left alone
    ],
)
def test_error_text_and_key_match_locust(error: Any) -> None:
    """normalise_error and locust_error_key reproduce Locust's parse_error and create_key."""
    text = normalise_error(error)
    assert text == locust_stats().StatsError.parse_error(error)
    assert locust_error_key("GET", "/x", text) == locust_stats().StatsError.create_key(
        "GET", "/x", error
    )
