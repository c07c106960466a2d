"""Locust reports decoded to columns in batches and merged through the stage, against the oracle."""

from __future__ import annotations

import copy
import datetime
import random
from typing import Any

import pytest

from horde.master import stage
from horde.master.stats import MergedStats
from horde.protocol import messages as m
from horde.protocol.codec import decode_upstream, decode_upstream_many, encode, encode_raw
from horde.protocol.errors import ProtocolError
from horde.protocol.locust_stats import LocustStatsReport
from horde.worker.stats import RequestRecorder
from tests.stats_oracle import oracle_merge_locust
from tests.stats_samples import observable

T0 = 1_700_000_000.0


def reports(
    seed: int, workers: int = 3, rounds: int = 3
) -> list[tuple[str, LocustStatsReport, float]]:
    """(worker, report, receive time) of random traffic in Locust's format, built locally."""
    rng = random.Random(seed)
    out = []
    for w in range(workers):
        for r in range(rounds):
            start = T0 + 3 * r
            rec = RequestRecorder(exact_locust_buckets=bool(w % 2))
            for k in range(200):
                rt = None if k % 37 == 0 else rng.lognormvariate(3, 1.5)
                exc = ValueError(k % 3) if k % 11 == 0 else None
                name = f"/p{rng.randint(0, 6)}"
                rec.record(rng.choice("GP"), name, rt, k, exc, start + k * 3 / 200)
            report = rec.take_locust_report(now=start + 3, user_classes_count={}, user_count=0)
            out.append((f"w{w}", report, start + 3.5 + rng.random()))
    return out


def frames(items: list[tuple[str, LocustStatsReport, float]]) -> list[bytes]:
    """The reports as the frames Locust workers send."""
    return [encode(m.LocustStats(worker, report)) for worker, report, _ in items]


def staged(items: list[tuple[str, LocustStatsReport, float]]) -> MergedStats:
    """Merge every report as the master does: decoded from the wire in one batch, staged."""
    stats = MergedStats(started_at=T0)
    for (worker, _, now), message in zip(items, decode_upstream_many(frames(items)), strict=True):
        assert isinstance(message, m.LocustStats) and message.report.columns is not None
        stats.merge_locust(worker, message.report, now)
    return stats


def oracle(items: list[tuple[str, LocustStatsReport, float]]) -> MergedStats:
    """Merge every report value by value (the plain merge the stage replaced)."""
    stats = MergedStats(started_at=T0)
    for _, report, now in items:
        oracle_merge_locust(stats, report, now)
    return stats


@pytest.mark.parametrize("seed", range(6))
def test_staged_locust_merge_equals_the_plain_merge(seed: int) -> None:
    """Locust reports decoded in a batch and staged give exactly the plain merge's figures."""
    items = reports(seed)
    now = max(at for _, _, at in items)
    assert observable(staged(items), now) == observable(oracle(items), now)


def test_locust_report_with_more_entries_than_stage_rows_stays_exact(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A report of more entries than the stage has rows is merged in pieces, exactly."""
    monkeypatch.setattr(stage, "MAX_ROWS", 4)
    items = reports(3, workers=2)
    now = max(at for _, _, at in items)
    assert observable(staged(items), now) == observable(oracle(items), now)


def test_locust_values_beyond_int64_merge_exactly() -> None:
    """Counts and times too large for int64 (and float content lengths) merge as Python does."""
    items = reports(4, workers=1, rounds=1)
    worker, report, now = items[0]
    wire = report.to_wire()
    wire["stats"][0]["num_requests"] += 2**70
    wire["stats"][0]["total_response_time"] = 1e30
    wire["stats_total"]["total_content_length"] = 12.5
    first_ms = next(iter(wire["stats_total"]["response_times"]))
    wire["stats_total"]["response_times"][first_ms] += 2**66
    big = LocustStatsReport.from_wire(copy.deepcopy(wire))
    stats = MergedStats(started_at=T0)
    stats.merge_locust(worker, big, now)
    expected = MergedStats(started_at=T0)
    oracle_merge_locust(expected, LocustStatsReport.from_wire(copy.deepcopy(wire)), now)
    assert observable(stats, now) == observable(expected, now)
    assert stats.total.total_content_length == 12.5


def _mutations() -> list[tuple[str, Any]]:
    """(what, mutate(report wire dict)) pairs that make a Locust report invalid."""

    def entry(key: str, value: Any) -> Any:
        def mutate(wire: dict[str, Any]) -> None:
            wire["stats"][1][key] = value

        return mutate

    def bucket(value: Any, key: Any = 1) -> Any:
        def mutate(wire: dict[str, Any]) -> None:
            wire["stats"][0]["response_times"][key] = value

        return mutate

    return [
        ("bool count", entry("num_requests", True)),
        ("negative failures", entry("num_failures", -1)),
        ("nan time", entry("total_response_time", float("nan"))),
        ("string max", entry("max_response_time", "9")),
        ("name not a string", entry("name", 3)),
        ("missing key", lambda w: w["stats"][0].pop("start_time")),
        ("entry not a map", lambda w: w["stats"].__setitem__(0, [1, 2])),
        ("stats not a list", lambda w: w.__setitem__("stats", "x")),
        ("float bucket count", bucket(1.5)),
        ("negative bucket key", bucket(1, -5)),
        ("bool bucket count", bucket(True)),
        ("per-second not a map", entry("num_reqs_per_sec", [1])),
        ("total not a map", lambda w: w.__setitem__("stats_total", None)),
    ]


@pytest.mark.parametrize(("what", "mutate"), _mutations(), ids=[w for w, _ in _mutations()])
def test_a_bad_report_in_a_batch_is_its_own_protocol_error(what: str, mutate: Any) -> None:
    """A malformed report fails alone, with the error it gets decoded alone; its batch decodes."""
    items = reports(5, workers=4, rounds=1)
    raw = frames(items)
    wire = items[1][1].to_wire()
    mutate(wire)
    raw[1] = encode_raw("stats", wire, "w1")
    with pytest.raises(ProtocolError) as alone:
        decode_upstream(raw[1])
    decoded = decode_upstream_many(raw)
    bad = decoded[1]
    assert isinstance(bad, ProtocolError)
    assert (bad.reason, str(bad)) == (alone.value.reason, str(alone.value))
    for k in (0, 2, 3):
        good = decoded[k]
        assert isinstance(good, m.LocustStats)
        assert good.report == items[k][1]


def test_a_locust_report_holding_a_datetime_still_decodes_it() -> None:
    """Skipping the datetime hook for plain Locust frames keeps datetimes where they are sent."""
    items = reports(6, workers=1, rounds=1)
    wire = items[0][1].to_wire()
    wire["sent"] = datetime.datetime(2024, 5, 1, 12, 30, 15, 250000)
    (message,) = decode_upstream_many([encode_raw("stats", wire, "w0")])
    assert isinstance(message, m.LocustStats)
    assert message.report.extra == {"sent": wire["sent"]}
    assert message.report == items[0][1].__class__.from_wire(
        items[0][1].to_wire() | {"sent": wire["sent"]}
    )


_ODD = [None, True, -1, 2**63 + 5, 2**64 - 1, 1.5, float("nan"), float("inf"), "x", b"y", [], {}]
_ODD += [{1: 2}, {"a": 1}, {-1: 1}, {1: -1}, {True: 1}, {1: True}, {2**64 - 1: 1}, {1.5: 1}]


def _scrambled(rng: random.Random, wire: dict[str, Any]) -> dict[str, Any]:
    """``wire`` with one to three values (of the report, its total or an entry) made odd."""
    wire = copy.deepcopy(wire)
    for _ in range(rng.randint(1, 3)):
        odd = copy.deepcopy(rng.choice(_ODD))
        stats, total = wire.get("stats"), wire.get("stats_total")
        where = rng.choice(("report", "total", "entry"))
        if where == "report" or not isinstance(stats, list) or not isinstance(total, dict):
            wire[rng.choice([*wire, "extra"])] = odd
        elif where == "total":
            total[rng.choice([*total, "extra"])] = odd
        elif stats and isinstance(entry := rng.choice(stats), dict):
            entry[rng.choice(list(entry))] = odd
    return wire


def test_scrambled_reports_decode_in_batches_as_alone_and_merge() -> None:
    """Random odd values give each frame the verdict it gets alone, and good ones merge."""
    rng = random.Random(12)
    base = [report.to_wire() for _, report, _ in reports(2, workers=2, rounds=2)]
    stats = MergedStats(started_at=T0)
    verdicts = {"good": 0, "bad": 0}
    for k in range(150):
        wires = [rng.choice(base) for _ in range(rng.randint(1, 5))]
        raw = [encode_raw("stats", _scrambled(rng, w), f"w{i}") for i, w in enumerate(wires)]
        for frame, got in zip(raw, decode_upstream_many(raw), strict=True):
            if isinstance(got, ProtocolError):
                verdicts["bad"] += 1
                with pytest.raises(ProtocolError) as alone:
                    decode_upstream(frame)
                assert str(got) == str(alone.value)
            else:
                verdicts["good"] += 1
                assert encode(decode_upstream(frame)) == encode(got)  # NaN extras: bytes, not ==
                stats.merge_locust(got.node_id, got.report, T0 + k / 10)
    stats.fold()
    assert verdicts["good"] > 20 and verdicts["bad"] > 20
    assert stats.total.num_requests > 0
