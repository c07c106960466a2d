"""The packed form of horde.stats entries: round trips, and every hostile blob refused."""

from __future__ import annotations

import contextlib
import dataclasses
import random
import struct
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from horde.protocol.codec import decode_upstream, decode_upstream_many, encode, encode_raw
from horde.protocol.errors import ProtocolError
from horde.protocol.histogram import NUM_BUCKETS
from horde.protocol.messages import HordeStats, WorkerHeartbeat
from horde.protocol.packed import (
    PACKED_KEY,
    PackedEntries,
    pack_entries,
    unpack_entries,
    unpack_entries_many,
)
from horde.protocol.stats import EntryDelta, HordeStatsDelta
from horde.worker.stats import RequestRecorder

T0 = 1_700_000_000.0


def recorded(seed: int, requests: int = 300) -> HordeStatsDelta:
    rng = random.Random(seed)
    rec = RequestRecorder()
    for _ in range(requests):
        ms = None if rng.random() < 0.05 else rng.lognormvariate(2, 1.5)
        error = "boom" if rng.random() < 0.1 else None
        rec.record(
            "GET", f"/p{rng.randint(0, 9)}", ms, rng.randint(0, 900), error, T0 + rng.random() * 3
        )
    return rec.take_horde_delta(
        run_id="r", epoch=0, seq=1, now=T0 + 3, user_classes_count={"U": 1}, user_count=1
    )


@pytest.mark.parametrize("seed", range(5))
def test_packed_and_listed_forms_decode_to_the_same_delta(seed: int) -> None:
    """Both wire forms decode to equal deltas with equal columns; packed is the default."""
    delta = recorded(seed)
    packed = msgpack.unpackb(msgpack.packb(delta.to_wire()))
    listed = msgpack.unpackb(msgpack.packb(dataclasses.replace(delta, pack=False).to_wire()))
    assert packed["entries"] == [] and PACKED_KEY in packed and PACKED_KEY not in listed
    a, b = HordeStatsDelta.from_wire(packed), HordeStatsDelta.from_wire(listed)
    assert isinstance(a.entries, PackedEntries) and len(a.entries) == len(delta.entries)
    assert a.request_count() == b.request_count() == sum(e.num_requests for e in delta.entries)
    assert a == b == delta and a.extra == {} and tuple(a.entries) == tuple(delta.entries)
    assert a.columns is not None and b.columns is not None
    assert a.columns.entry_id == b.columns.entry_id
    for x, y in zip(a.columns[1:7], b.columns[1:7], strict=True):
        assert x.tolist() == y.tolist()
    assert a.columns[8:] == b.columns[8:]  # first and last second
    assert a.columns.scalars.max() <= min(a.columns.peak, b.columns.peak) < 1 << 40
    assert HordeStatsDelta.from_wire(msgpack.unpackb(msgpack.packb(a.to_wire()))) == delta


def test_entries_that_cannot_be_packed_stay_listed() -> None:
    """Unknown trailing items or numbers beyond int64 keep the list form."""
    entry = EntryDelta(1, 1, 0, 0, 5, 5, 5, 0, (5, 1), ())
    assert pack_entries([entry]) is not None
    assert pack_entries([entry._replace(extra=("x",))]) is None
    assert pack_entries([entry._replace(total_content_length=1 << 64)]) is None


def blobs(cols: list[list[int]], pairs: list[int], triples: list[int]) -> list[bytes]:
    flat = [v for row in cols for v in row]
    return [struct.pack(f"<{len(v)}q", *v) for v in (flat, pairs, triples)]


GOOD = [1, 2, 0, 0, 30, 10, 20, 0, 2, 1]  # two timed requests, 10 and 20 µs, one second


HOSTILE: list[tuple[Any, str]] = [
    ({"a": 1}, "shape"),
    ([b"", b""], "shape"),
    ([b"", b"", "x"], "shape"),
    ([b"\x00" * 79, b"", b""], "shape"),
    ([*blobs([GOOD], [10, 1, 20, 1], [1, 2, 0])[:2], b"\x00" * 23], "shape"),
    (blobs([GOOD], [10, 1], [1, 2, 0]), "shape"),  # fewer pairs than announced
    (  # counts whose int64 sum wraps around to the real number of pairs
        blobs(
            [[*GOOD[:8], 1 << 62, 0]] * 3 + [[*GOOD[:8], (1 << 62) + 2, 1]],
            [10, 1, 20, 1],
            [1, 2, 0],
        ),
        "shape",
    ),
    (blobs([[*GOOD[:3], -1, *GOOD[4:]]], [10, 1, 20, 1], [1, 2, 0]), "field"),
    (blobs([[*GOOD[:5], -2, *GOOD[6:]]], [10, 1, 20, 1], [1, 2, 0]), "field"),
    (blobs([GOOD], [10, 1, NUM_BUCKETS, 1], [1, 2, 0]), "field"),
    (blobs([GOOD], [10, 1, 20, -1], [1, 2, 0]), "field"),
    (blobs([GOOD], [10, 1, 20, 1 << 40], [1, 2, 0]), "field"),
    (blobs([GOOD], [10, 1, 20, 2], [1, 2, 0]), "field"),  # 3 bucket counts, 2 timed
    (blobs([GOOD], [10, 1, 20, 1], [1, -2, 0]), "field"),
    (blobs([[*GOOD[:5], -1, *GOOD[6:]]], [10, 1, 20, 1], [1, 2, 0]), "field"),  # no min
    (blobs([[*GOOD[:5], 25, *GOOD[6:]]], [10, 1, 20, 1], [1, 2, 0]), "field"),  # min > max
    (blobs([[1, 1, 1, 0, 0, 10, 10, 0, 0, 0]], [], []), "field"),  # min, no timed request
]


@pytest.mark.parametrize(("packed", "reason"), HOSTILE)
def test_hostile_packed_entries_are_refused(packed: Any, reason: str) -> None:
    """Each broken rule raises ProtocolError with its reason."""
    assert len(unpack_entries(blobs([GOOD], [10, 1, 20, 1], [1, 2, 0]))) == 1
    with pytest.raises(ProtocolError) as caught:
        unpack_entries(packed)
    assert caught.value.reason == reason


def verdicts_agree(batch: list[Any]) -> None:
    """Each verdict of the batch is the verdict of that delta decoded alone."""
    for packed, verdict in zip(batch, unpack_entries_many(batch), strict=True):
        try:
            alone = unpack_entries(packed)
        except ProtocolError as exc:
            assert isinstance(verdict, ProtocolError)
            assert (verdict.reason, str(verdict)) == (exc.reason, str(exc))
            continue
        assert isinstance(verdict, PackedEntries) and tuple(verdict) == tuple(alone)
        one, many = alone.columns, verdict.columns
        assert one.entry_id == many.entry_id and one[8:] == many[8:]
        if len(one.scalars[0]):
            assert one.scalars.max() <= min(one.peak, many.peak)
        for x, y in zip(one[1:7], many[1:7], strict=True):
            assert x.tolist() == y.tolist()


@pytest.mark.parametrize(("packed", "reason"), HOSTILE)
def test_a_hostile_delta_in_a_batch_is_refused_alone(packed: Any, reason: str) -> None:
    """Among good deltas, a broken one gets its own error and the others still decode."""
    good = [msgpack.unpackb(msgpack.packb(recorded(k).to_wire()))[PACKED_KEY] for k in (1, 2)]
    verdicts = unpack_entries_many([good[0], packed, good[1]])
    assert isinstance(verdicts[1], ProtocolError) and verdicts[1].reason == reason
    verdicts_agree([good[0], packed, good[1]])


def test_deltas_cannot_lend_each_other_pairs() -> None:
    """Pair counts that are wrong per delta but right in sum are refused in a batch too."""
    one_more = blobs([[*GOOD[:8], 3, 1]], [10, 1, 20, 1], [1, 2, 0])
    one_less = blobs([[1, 1, 0, 0, 10, 10, 10, 0, 0, 1]], [10, 1], [1, 1, 0])
    good = blobs([GOOD], [10, 1, 20, 1], [1, 2, 0])
    verdicts = unpack_entries_many([one_more, one_less, good])
    assert [type(v) for v in verdicts] == [ProtocolError, ProtocolError, PackedEntries]
    verdicts_agree([one_more, one_less, good])


def test_a_batch_decodes_as_its_deltas_one_by_one() -> None:
    """Good deltas, empty ones and undecodable values keep their own verdicts in a batch."""
    batch: list[Any] = [
        msgpack.unpackb(msgpack.packb(recorded(k, requests=k * 40).to_wire())).get(
            PACKED_KEY,
            [b"", b"", b""],  # no request: no entry
        )
        for k in range(6)
    ]
    batch[3] = "not blobs"
    verdicts_agree(batch)
    verdicts_agree([])
    assert isinstance(unpack_entries_many(batch)[3], ProtocolError)


def test_frames_decode_together_as_they_do_alone() -> None:
    """decode_upstream_many gives each frame what decode_upstream gives it."""
    frames: list[Any] = [
        encode(HordeStats("w1", recorded(1))),
        b"\xc1 not msgpack",
        encode(WorkerHeartbeat("w1", "running", 1.0, 10, 1, 0.0, 3, {})),
        encode(HordeStats("w2", recorded(2))),
        encode_raw("horde.stats", {"packed": blobs([GOOD], [10, 1], [1, 2, 0])}, "w3"),
        encode(HordeStats("w3", recorded(3))),
    ]
    for frame, got in zip(frames, decode_upstream_many(frames), strict=True):
        try:
            alone = decode_upstream(frame)
        except ProtocolError as exc:
            assert isinstance(got, ProtocolError) and got.reason == exc.reason
        else:
            assert got == alone


def test_a_delta_may_not_list_and_pack_entries_at_once() -> None:
    """Listed entries beside packed ones are refused as a malformed shape."""
    wire = recorded(1).to_wire()
    wire["entries"] = [[1, 0, 0, 0, 0, None, 0, 0, [], []]]
    with pytest.raises(ProtocolError) as caught:
        HordeStatsDelta.from_wire(wire)
    assert caught.value.reason == "shape"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(max_size=200), min_size=3, max_size=3),
    st.lists(st.integers(-(1 << 63), (1 << 63) - 1), max_size=40),
)
def test_any_blobs_decode_or_raise_protocol_error_only(
    raw: list[bytes], numbers: list[int]
) -> None:
    """Random bytes, and random int64 numbers laid out as entries, never raise anything else.

    In a batch beside a good delta, each gets the verdict it gets alone.
    """
    cut = len(numbers) // 10 * 10
    batch = [
        raw,
        blobs([numbers[i : i + 10] for i in range(0, cut, 10)], numbers[cut:][:4], []),
    ]
    for packed in batch:
        with contextlib.suppress(ProtocolError):
            unpack_entries(packed)
    verdicts_agree([*batch, blobs([GOOD], [10, 1, 20, 1], [1, 2, 0])])


def test_a_batch_validator_bug_falls_back_to_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """If batch validation itself fails unexpectedly, each delta is decoded alone instead."""
    from horde.protocol import codec

    def broken(values: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(codec, "unpack_entries_many", broken)
    frames = [encode(HordeStats(f"w{k}", recorded(k))) for k in range(3)]
    assert decode_upstream_many(frames) == [decode_upstream(f) for f in frames]
