"""Bulk decoding and staged merging of horde deltas, and the cap on distinct entry names."""

from __future__ import annotations

import copy
import dataclasses
import random
from typing import Any

import pytest
import structlog

from horde.master import stage
from horde.master.stats import MergedStats
from horde.protocol.counters import OVERFLOW_NAME
from horde.protocol.errors import ProtocolError
from horde.protocol.histogram import NUM_BUCKETS
from horde.protocol.stats import EntryDelta, HordeStatsDelta, entries_from_wire
from horde.worker.stats import RequestRecorder
from tests.stats_oracle import oracle_merge_horde
from tests.stats_samples import observable

T0 = 1_700_000_000.0


def traffic(seed: int, start: float, names: int = 5, requests: int = 300) -> RequestRecorder:
    """A recorder holding random traffic (timed, untimed, failed) over 3 s from ``start``."""
    rng = random.Random(seed)
    rec = RequestRecorder()
    for k in range(requests):
        rt = None if k % 41 == 0 else rng.lognormvariate(3, 1.2)
        exc = ValueError(k % 3) if k % 13 == 0 else None
        name = f"/p{rng.randint(0, names - 1)}"
        rec.record(rng.choice("GP"), name, rt, k, exc, start + k * 3 / requests)
    return rec


def deltas(
    seed: int, workers: int = 3, rounds: int = 3
) -> list[tuple[str, HordeStatsDelta, float]]:
    """(worker, delta, receive time) triples of random traffic, built locally (no columns)."""
    out = []
    for w in range(workers):
        for r in range(rounds):
            start = T0 + 3 * r
            src = traffic(seed * 100 + w * 10 + r, start)  # defines every name it uses
            d = src.take_horde_delta(
                run_id="r", epoch=0, seq=r + 1, now=start + 3, user_classes_count={}, user_count=0
            )
            out.append((f"w{w}", d, start + 3.5))
    return out


def decoded(d: HordeStatsDelta) -> HordeStatsDelta:
    """The delta as a master decodes it from the wire (with columns)."""
    return HordeStatsDelta.from_wire(d.to_wire())


def merge_all(items: list[tuple[str, HordeStatsDelta, float]], *, wire: bool) -> MergedStats:
    """Merge every delta decoded from the wire (staged), or as built by the tests' oracle."""
    stats = MergedStats(started_at=T0)
    for worker, d, now in items:
        if wire:
            stats.merge_horde(worker, decoded(d), now)
        else:
            oracle_merge_horde(stats, worker, d, now)
    return stats


@pytest.mark.parametrize("seed", range(6))
def test_decoded_entries_equal_one_by_one_entries(seed: int) -> None:
    """Bulk validation returns the same entries as validating each entry on its own."""
    for _, d, _ in deltas(seed):
        wire = dataclasses.replace(d, pack=False).to_wire()["entries"]
        entries, columns = entries_from_wire(wire)
        assert columns is not None
        assert entries == tuple(EntryDelta.from_wire(e) for e in wire)


@pytest.mark.parametrize("seed", range(6))
def test_staged_merge_equals_one_by_one_merge(seed: int) -> None:
    """Merging decoded deltas in bulk gives exactly the figures of the one-by-one merge."""
    items = deltas(seed)
    now = items[-1][2]
    assert observable(merge_all(items, wire=True), now) == observable(
        merge_all(items, wire=False), now
    )


@pytest.mark.parametrize("seed", range(4))
def test_staged_merge_is_order_independent(seed: int) -> None:
    """Any order of the same deltas (read in between or not) gives the same figures."""
    items = deltas(seed, workers=4)
    now = items[-1][2]
    expected = observable(merge_all(items, wire=False), now)
    rng = random.Random(seed)
    shuffled = items[:]
    rng.shuffle(shuffled)
    stats = MergedStats(started_at=T0)
    for k, (worker, d, _) in enumerate(shuffled):
        stats.merge_horde(worker, decoded(d), now)
        if k % 3 == 0:
            stats.entries()  # a read folds the stage midway
    assert observable(stats, now) == expected


def test_stage_that_runs_out_of_rows_folds_and_stays_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    """With fewer staging rows than entries, merging folds as it goes and stays exact."""
    monkeypatch.setattr(stage, "MAX_ROWS", 3)
    items = deltas(11, workers=3)
    now = items[-1][2]
    assert observable(merge_all(items, wire=True), now) == observable(
        merge_all(items, wire=False), now
    )


def test_delta_of_a_new_second_folds_the_previous_second() -> None:
    """Deltas received in different seconds land in their own ring seconds, as one by one."""
    items = [(w, d, now + k) for k, (w, d, now) in enumerate(deltas(5))]
    now = items[-1][2]
    assert observable(merge_all(items, wire=True), now) == observable(
        merge_all(items, wire=False), now
    )


def _wire_entries() -> list[list[Any]]:
    d = deltas(3, workers=1, rounds=1)[0][1]
    return dataclasses.replace(d, pack=False).to_wire()["entries"]


def _mutations() -> list[tuple[str, Any]]:
    """(what, mutate(entries)) pairs that make a delta invalid."""

    def at(i: int, k: int, value: Any) -> Any:
        def mutate(entries: list[list[Any]]) -> None:
            entries[i][k] = value

        return mutate

    def pair(i: int, j: int, value: Any) -> Any:
        def mutate(entries: list[list[Any]]) -> None:
            entries[i][8][j] = value

        return mutate

    return [
        ("bool count", at(1, 1, True)),
        ("float total", at(0, 4, 1.5)),
        ("negative failures", at(2, 3, -1)),
        ("string id", at(0, 0, "x")),
        ("min without timed requests", at(1, 5, None)),
        ("max below min", at(0, 6, 0)),
        ("float bucket count", pair(0, 1, 1.0)),
        ("negative bucket", pair(1, 0, -3)),
        ("bucket beyond the last", pair(2, 0, NUM_BUCKETS)),
        ("bucket total off", pair(0, 1, 10**6)),
        ("odd pairs", lambda e: e[0][8].append(1)),
        ("per_sec not triples", lambda e: e[1][9].append(1)),
        ("negative per_sec", lambda e: e[1][9].__setitem__(1, -1)),
        ("short entry", lambda e: e.__setitem__(0, e[0][:9])),
        ("entry not a list", lambda e: e.__setitem__(1, {"a": 1})),
        ("pairs not a list", at(0, 8, "abc")),
        ("string in pairs", pair(0, 1, "1")),
    ]


@pytest.mark.parametrize(("what", "mutate"), _mutations(), ids=[w for w, _ in _mutations()])
def test_bulk_validation_rejects_as_one_by_one(what: str, mutate: Any) -> None:
    """A hostile entry list raises the same ProtocolError (reason and text) as entry by entry."""
    entries = copy.deepcopy(_wire_entries())
    mutate(entries)
    with pytest.raises(ProtocolError) as one_by_one:
        for entry in entries:
            EntryDelta.from_wire(entry)
    with pytest.raises(ProtocolError) as bulk:
        entries_from_wire(entries)
    assert (bulk.value.reason, str(bulk.value)) == (one_by_one.value.reason, str(one_by_one.value))


def test_values_beyond_int64_are_valid_and_merged_exactly() -> None:
    """Counts too large for int64 are accepted as before and merged exactly, in Python ints."""
    entries = copy.deepcopy(_wire_entries())
    huge = 2**70
    entries[0][1] += huge
    entries[0][8][1] += huge
    decoded_entries, columns = entries_from_wire(entries)
    assert columns is not None and columns.scalars.dtype == object
    assert decoded_entries == tuple(EntryDelta.from_wire(e) for e in entries)
    d = deltas(3, workers=1, rounds=1)[0][1]
    wire = dataclasses.replace(d, pack=False).to_wire()
    wire["entries"] = entries
    stats = MergedStats(started_at=T0)
    stats.merge_horde("w", HordeStatsDelta.from_wire(wire), T0 + 4)
    oracle = MergedStats(started_at=T0)
    oracle_merge_horde(oracle, "w", HordeStatsDelta.from_wire(wire), T0 + 4)
    assert observable(stats, T0 + 4) == observable(oracle, T0 + 4)
    assert stats.total.num_requests == sum(e[1] for e in entries)


def test_names_beyond_the_cap_merge_into_the_overflow_entry() -> None:
    """Past max_names, new names merge into '(other names)' of their method; totals stay."""
    items = deltas(7, workers=2)
    capped = MergedStats(started_at=T0, max_names=2)
    full = MergedStats(started_at=T0)
    with structlog.testing.capture_logs() as logs:
        for worker, d, at in items:
            capped.merge_horde(worker, decoded(d), at)
            full.merge_horde(worker, d, at)
    names = [(e.method, e.name) for e in capped.entries()]
    kept = [k for k in names if k[1] != OVERFLOW_NAME]
    assert len(kept) == 2
    assert {m for m, n in names if n == OVERFLOW_NAME} <= {"G", "P"}
    assert sum(e.num_requests for e in capped.entries()) == full.total.num_requests
    assert capped.total.num_requests == full.total.num_requests
    assert capped.total.hist == full.total.hist
    assert capped.overflowed > 0
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 1
    assert warnings[0]["max_names"] == 2


def test_overflow_entry_sums_what_it_absorbs() -> None:
    """The overflow entry of a method holds exactly the figures of the names it absorbed."""
    items = deltas(8, workers=1, rounds=2)
    capped = MergedStats(started_at=T0, max_names=1)
    full = MergedStats(started_at=T0)
    for worker, d, at in items:
        capped.merge_horde(worker, decoded(d), at)
        full.merge_horde(worker, d, at)
    kept = {(e.method, e.name) for e in capped.entries() if e.name != OVERFLOW_NAME}
    for method in ("G", "P"):
        over = [e for e in capped.entries() if (e.method, e.name) == (method, OVERFLOW_NAME)]
        absorbed = [
            e for e in full.entries() if e.method == method and (method, e.name) not in kept
        ]
        if not absorbed:
            continue
        assert over[0].num_requests == sum(e.num_requests for e in absorbed)
        assert over[0].hist.total == sum(e.hist.total for e in absorbed)


def test_cached_rows_follow_a_workers_name_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows kept for a worker's ids go stale when it renames ids or the stage renumbers rows."""
    items: list[tuple[str, HordeStatsDelta, float]] = []
    for first_name, rounds in (("/a", 3), ("/b", 3)):  # the second recorder gives ids new names
        rec = RequestRecorder()
        rec.record("GET", first_name, 1.0, 0, None, T0)  # id 1 is first_name in this recorder
        for r in range(rounds):
            start = T0 + 3 * len(items)
            for k in range(40):
                rec.record("GET", ("/a", "/b", "/c")[k % 3], 2.0 + k, k, None, start + k / 20)
            d = rec.take_horde_delta(
                run_id="r", epoch=0, seq=r + 1, now=start + 3, user_classes_count={}, user_count=0
            )
            items.append(("w", d, start + 3.5))
    now = items[-1][2]
    expected = observable(merge_all(items, wire=False), now)
    assert observable(merge_all(items, wire=True), now) == expected
    monkeypatch.setattr(stage, "MAX_ROWS", 2)  # renumbering on every delta, too
    assert observable(merge_all(items, wire=True), now) == expected
