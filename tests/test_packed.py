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

from horde.protocol.errors import ProtocolError
from horde.protocol.histogram import NUM_BUCKETS
from horde.protocol.packed import PACKED_KEY, PackedEntries, pack_entries, unpack_entries
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
    for x, y in zip(a.columns[1:], b.columns[1:], strict=True):
        assert x.tolist() == y.tolist()
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


@pytest.mark.parametrize(
    ("packed", "reason"),
    [
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
    ],
)
def test_hostile_packed_entries_are_refused(packed: Any, reason: str) -> None:
    """Each broken rule raises ProtocolError with its reason."""
    assert len(unpack_entries(blobs([GOOD], [10, 1, 20, 1], [1, 2, 0]))) == 1
    with pytest.raises(ProtocolError) as caught:
        unpack_entries(packed)
    assert caught.value.reason == reason


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
    """Random bytes, and random int64 numbers laid out as entries, never raise anything else."""
    cut = len(numbers) // 10 * 10
    for packed in (
        raw,
        blobs([numbers[i : i + 10] for i in range(0, cut, 10)], numbers[cut:][:4], []),
    ):
        with contextlib.suppress(ProtocolError):
            unpack_entries(packed)
