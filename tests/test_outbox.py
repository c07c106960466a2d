"""The worker's stats outbox as a pure policy: tables of events on an injected clock."""

from __future__ import annotations

from typing import Any

import pytest

from horde.protocol import messages as m
from horde.protocol.codec import decode_upstream, encode
from horde.protocol.stats import EntryDelta, ErrorDelta, HordeStatsDelta
from horde.worker.outbox import Outbox, split_delta
from horde.worker.stats import PER_SEC_CAP, RequestRecorder

RESEND_AFTER = 6.0


def frame_size(delta: HordeStatsDelta) -> int:
    return len(encode(m.HordeStats("w_1", delta)))


def entry(eid: int, n: int = 1, sec: int = 1000) -> EntryDelta:
    return EntryDelta(eid, n, 0, 0, 1000 * n, 1000, 1000, 0, (10, n), (sec, n, 0))


def delta(
    seq: int,
    run: str = "r1",
    entries: tuple[EntryDelta, ...] = (),
    names: tuple[tuple[int, str, str], ...] = (),
    errors: tuple[ErrorDelta, ...] = (),
) -> HordeStatsDelta:
    return HordeStatsDelta(run, 0, seq, 1000.0, names, entries, errors, {"A": 1}, 1)


def outbox(max_frame: int = 1 << 20, window: int = 4) -> Outbox:
    box = Outbox(resend_after=RESEND_AFTER, max_frame=max_frame, size=frame_size, window=window)
    box.start_run("r1")
    return box


# Events: ("take", now, registered, final, expect_taken) takes a delta if allowed;
# ("ack", run, seq, now, expect_dropped); ("due", now, registered, expect_seqs);
# ("all", now, expect_seqs); ("run", run_id). After each event: the unacked seqs.
Event = tuple[Any, ...]

CASES: list[tuple[str, list[tuple[Event, list[int]]]]] = [
    (
        "a window of 4: the fifth delta is not taken until an ack makes room",
        [
            (("take", 0.0, True, False, True), [1]),
            (("take", 3.0, True, False, True), [1, 2]),
            (("take", 6.0, True, False, True), [1, 2, 3]),
            (("take", 9.0, True, False, True), [1, 2, 3, 4]),
            (("take", 12.0, True, False, False), [1, 2, 3, 4]),
            (("ack", "r1", 2, 13.0, 2), [3, 4]),
            (("take", 15.0, True, False, True), [3, 4, 5]),
        ],
    ),
    (
        "nothing is taken while the link is unregistered, except a final delta",
        [
            (("take", 0.0, False, False, False), []),
            (("take", 0.0, False, True, True), [1]),
        ],
    ),
    (
        "a final delta goes beyond a full window, up to twice the window",
        [
            *[(("take", 0.0, True, False, True), list(range(1, i + 2))) for i in range(4)],
            *[(("take", 1.0, True, True, True), list(range(1, i + 6))) for i in range(4)],
            (("take", 2.0, True, True, False), list(range(1, 9))),
        ],
    ),
    (
        "acks are cumulative; an ack of another run or an old seq changes nothing",
        [
            (("take", 0.0, True, False, True), [1]),
            (("take", 0.0, True, False, True), [1, 2]),
            (("take", 0.0, True, False, True), [1, 2, 3]),
            (("ack", "r0", 3, 1.0, 0), [1, 2, 3]),
            (("ack", "r1", 2, 1.0, 2), [3]),
            (("ack", "r1", 1, 1.0, 0), [3]),
            (("ack", "r1", 3, 1.0, 1), []),
        ],
    ),
    (
        "resend when no ack progressed for resend_after, then again only after another wait",
        [
            (("take", 0.0, True, False, True), [1]),
            (("take", 3.0, True, False, True), [1, 2]),
            (("due", 5.9, True, []), [1, 2]),
            (("due", 6.0, True, [1, 2]), [1, 2]),
            (("due", 11.9, True, []), [1, 2]),
            (("due", 12.0, True, [1, 2]), [1, 2]),
        ],
    ),
    (
        "an ack that drops deltas restarts the resend timer",
        [
            (("take", 0.0, True, False, True), [1]),
            (("take", 3.0, True, False, True), [1, 2]),
            (("ack", "r1", 1, 5.0, 1), [2]),
            (("due", 10.9, True, []), [2]),
            (("due", 11.0, True, [2]), [2]),
        ],
    ),
    (
        "no resend while unregistered (the re-registration resends everything)",
        [
            (("take", 0.0, True, False, True), [1]),
            (("due", 60.0, False, []), [1]),
            (("all", 61.0, [1]), [1]),
            (("due", 66.9, True, []), [1]),
        ],
    ),
    (
        "an empty outbox resends nothing",
        [(("due", 100.0, True, []), []), (("all", 100.0, []), [])],
    ),
    (
        "a new run clears the outbox and numbers from 1 again; the old run's acks are ignored",
        [
            (("take", 0.0, True, False, True), [1]),
            (("take", 0.0, True, False, True), [1, 2]),
            (("run", "r2"), []),
            (("ack", "r1", 2, 1.0, 0), []),
            (("take", 1.0, True, False, True), [1]),
        ],
    ),
]


@pytest.mark.parametrize("events", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_outbox_table(events: list[tuple[Event, list[int]]]) -> None:
    """Each sequence of takes, acks, resends and runs leaves the expected deltas unacked."""
    box = outbox()
    for event, unacked in events:
        kind = event[0]
        if kind == "take":
            _, now, registered, final, taken = event
            assert box.may_take(registered=registered, final=final) is taken, event
            if taken:
                parts = box.add(delta(box.next_seq, run=box.run_id), now)
                assert [p.seq for p in parts] == [parts[0].seq]
        elif kind == "ack":
            _, run, seq, now, dropped = event
            assert box.ack(run, seq, now) == dropped, event
        elif kind == "due":
            _, now, registered, seqs = event
            assert [d.seq for d in box.resend_due(now, registered=registered)] == seqs, event
        elif kind == "all":
            _, now, seqs = event
            assert [d.seq for d in box.resend_all(now)] == seqs, event
        else:
            box.start_run(event[1])
        assert [d.seq for d in box.unacked] == unacked, event


def test_a_delta_out_of_turn_is_refused() -> None:
    """Only the delta numbered next_seq of the current run may be added."""
    box = outbox()
    with pytest.raises(ValueError, match="not next"):
        box.add(delta(2), 0.0)
    with pytest.raises(ValueError, match="not next"):
        box.add(delta(1, run="other"), 0.0)


def test_an_ack_below_an_earlier_one_is_counted() -> None:
    """A master that acks less than it did before (it lost its place) is counted, not obeyed."""
    box = outbox()
    for _ in range(3):
        box.add(delta(box.next_seq), 0.0)
    box.ack("r1", 2, 1.0)
    box.ack("r1", 1, 1.0)
    assert (box.acked, box.ack_regressions, [d.seq for d in box.unacked]) == (2, 1, [3])


def test_resend_after_registration_defines_every_name_in_its_first_use() -> None:
    """After a re-registration the first resent delta using an id defines it, once."""
    box = outbox()
    box.add(delta(1, entries=(entry(0),), names=((0, "GET", "/a"),)), 0.0)
    box.add(delta(2, entries=(entry(0), entry(1)), names=((1, "GET", "/b"),)), 0.0)
    box.add(delta(3, entries=(entry(1), entry(2)), names=((2, "GET", "/c"),)), 0.0)
    box.ack("r1", 1, 1.0)
    resent = box.resend_all(2.0)
    assert [(d.seq, d.names) for d in resent] == [
        (2, ((0, "GET", "/a"), (1, "GET", "/b"))),
        (3, ((2, "GET", "/c"),)),
    ]
    assert box.unacked == tuple(resent)


def many_entries(count: int, name_len: int = 40) -> HordeStatsDelta:
    names = tuple((i, "GET", f"/{i:06d}" + "x" * name_len) for i in range(count))
    entries = tuple(entry(i, n=i + 1) for i in range(count))
    errors = tuple(ErrorDelta("GET", f"/{i}", "E" * 50, 1, 1.0, 2.0) for i in range(count // 4))
    return delta(1, entries=entries, names=names, errors=errors)


@pytest.mark.parametrize("max_frame", [700, 2_000, 10_000])
def test_an_oversized_delta_is_split_into_consecutive_frames(max_frame: int) -> None:
    """Parts fit max_frame even with every name, number on from seq, and lose nothing."""
    original = many_entries(200)
    assert frame_size(original) > max_frame
    box = outbox(max_frame=max_frame)
    parts = box.add(original, 0.0)
    assert len(parts) > 1
    assert [p.seq for p in parts] == list(range(1, len(parts) + 1))
    assert box.next_seq == len(parts) + 1
    assert sorted(e for p in parts for e in p.entries) == sorted(original.entries)
    assert [e for p in parts for e in p.errors] == list(original.errors)
    for part in parts:
        used = {e.entry_id for e in part.entries}
        assert {n[0] for n in part.names} == used  # names travel with their entries
        assert (part.user_classes_count, part.user_count) == ({"A": 1}, 1)
        raw = encode(m.HordeStats("w_1", part))
        assert len(raw) <= max_frame
        assert isinstance(decode_upstream(raw, max_size=max_frame), m.HordeStats)
    for part in box.resend_all(1.0):  # re-announcing every name cannot overflow either
        assert frame_size(part) <= max_frame


def test_a_delta_that_fits_is_kept_whole() -> None:
    """A delta within the limit (counting every name it may carry) is sent as it is."""
    original = many_entries(5)
    parts, dropped = split_delta(original, 1 << 20, frame_size, {n[0]: n for n in original.names})
    assert (parts, dropped) == ([original], 0)


def test_an_item_too_big_for_any_frame_is_dropped_and_counted() -> None:
    """An entry whose name alone exceeds the frame limit is left out; the rest still goes."""
    huge = (0, "GET", "/" + "x" * 5_000)
    small = (1, "GET", "/ok")
    original = delta(1, entries=(entry(0), entry(1)), names=(huge, small))
    box = outbox(max_frame=1_000)
    parts = box.add(original, 0.0)
    assert box.dropped_items == 1
    assert [e.entry_id for p in parts for e in p.entries] == [1]
    assert all(frame_size(p) <= 1_000 for p in parts)


def test_per_second_counts_stay_bounded_while_no_delta_is_taken() -> None:
    """Hours without a take keep at most PER_SEC_CAP seconds per entry; totals stay exact."""
    recorder = RequestRecorder()
    for sec in range(10_000):
        recorder.record("GET", "/", 1.0, 0, "boom" if sec % 2 else None, 1_000_000.0 + sec)
    taken = recorder.take_horde_delta(
        run_id="r1", epoch=0, seq=1, now=0.0, user_classes_count={}, user_count=0
    )
    (only,) = taken.entries
    triples = only.per_sec
    seconds = triples[0::3]
    assert len(seconds) == PER_SEC_CAP
    assert (seconds[0], seconds[-1]) == (1_000_000, 1_009_999)
    assert sum(triples[1::3]) == only.num_requests == 10_000
    assert sum(triples[2::3]) == only.num_failures == 5_000
