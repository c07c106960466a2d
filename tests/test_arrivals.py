"""The receive loop's hold policy: the arrival gauge and the held batch, as tables (no clock)."""

from __future__ import annotations

import pytest

from horde.master.arrivals import HOLD_RATE_MAX, ArrivalGauge, HeldBatch
from horde.protocol import messages as m
from horde.protocol.codec import encode, encode_raw, is_heartbeat_frame

BEAT = encode(m.WorkerHeartbeat("w", "running", 1.0, 1024))
READY = encode(m.ClientReady("w"))
A_BEAT, A_READY, B_BEAT = [b"a", BEAT], [b"a", READY], [b"b", BEAT]


@pytest.mark.parametrize(
    ("adds", "rate"),
    [
        ([], 0.0),
        ([(100, 0.0), (100, 0.5)], 0.0),  # the first window has not ended
        ([(100, 0.0), (100, 0.5), (1, 1.0)], 200.0),
        ([(100, 0.0), (100, 0.5), (0, 2.0)], 100.0),  # a late look: the rate over 2 s
        ([(5000, 0.0), (0, 1.0), (10, 1.5), (0, 2.0)], 10.0),  # the burst is forgotten
        ([(3000, 0.0), (0, 1.0)], 3000.0),
    ],
)
def test_the_gauge_states_the_rate_of_the_last_window_that_ended(
    adds: list[tuple[int, float]], rate: float
) -> None:
    """The rate is the frames of the last full window over its length, 0 before the first."""
    gauge = ArrivalGauge(window=1.0)
    for frames, now in adds:
        gauge.add(frames, now)
    assert gauge.rate == rate


@pytest.mark.parametrize(
    ("per_second", "busy"), [(0, False), (1333, False), (2999, False), (3000, True), (6700, True)]
)
def test_only_thousands_of_frames_a_second_are_busy(per_second: int, busy: bool) -> None:
    """1,000 workers (1,333 frames a second) are not busy; 5,000 (6,700) are."""
    gauge = ArrivalGauge(window=1.0)
    gauge.add(per_second, 0.0)
    gauge.add(0, 1.0)
    assert gauge.busy(HOLD_RATE_MAX) is busy


@pytest.mark.parametrize(
    ("frame", "heartbeat"),
    [
        (BEAT, True),
        (encode_raw("heartbeat", "not a map", "w"), True),  # looks like one; decoding judges
        (READY, False),
        (encode(m.ClientStopped("w")), False),
        (encode_raw("heartbeats", {}, "w"), False),
        (b"", False),
        (b"\x00garbage", False),
    ],
)
def test_a_heartbeat_frame_is_spotted_by_its_type_string(frame: bytes, heartbeat: bool) -> None:
    """Only the envelope's type string decides: no decoding."""
    assert is_heartbeat_frame(frame) is heartbeat


@pytest.mark.parametrize(
    ("batch", "ahead", "held"),
    [
        ([A_BEAT, B_BEAT], [A_BEAT, B_BEAT], []),
        ([A_READY, A_BEAT, B_BEAT], [B_BEAT], [A_READY, A_BEAT]),
        ([A_BEAT, A_READY, A_BEAT], [A_BEAT], [A_READY, A_BEAT]),
        ([[b"a", b"x", BEAT], [b"a", BEAT]], [], [[b"a", b"x", BEAT], [b"a", BEAT]]),  # 3 parts
        ([[b"c", b"\x00bad"], [b"d", BEAT]], [[b"d", BEAT]], [[b"c", b"\x00bad"]]),
    ],
)
def test_a_heartbeat_goes_ahead_only_if_nothing_of_its_sender_is_held(
    batch: list[list[bytes]], ahead: list[list[bytes]], held: list[list[bytes]]
) -> None:
    """Heartbeats go ahead; the rest is held in order, and so is a heartbeat behind them."""
    batch_held = HeldBatch()
    assert batch_held.add(batch, 1.0) == ahead
    assert batch_held.frames == held
    assert batch_held.since == (1.0 if held else None)


def test_a_sender_held_in_an_earlier_batch_holds_its_heartbeat_until_taken() -> None:
    """The sender stays held across batches until the frames are taken, then it is free."""
    held = HeldBatch()
    assert held.add([[b"a", READY]], 1.0) == []
    assert held.add([[b"a", BEAT], [b"b", BEAT]], 1.002) == [[b"b", BEAT]]
    assert held.since == 1.0
    assert held.take() == [[b"a", READY]]
    assert held.add([[b"a", BEAT]], 1.004) == []  # its sender still has a frame held
    assert held.take() == [[b"a", BEAT], [b"a", BEAT]]
    assert (len(held), held.since, held.deadline(0.005)) == (0, None, None)
    assert held.add([[b"a", BEAT]], 1.01) == [[b"a", BEAT]]


STATS = [b"s", encode_raw("stats", {}, "s")]


@pytest.mark.parametrize(
    ("frames", "pieces"),
    [
        ([A_READY, STATS, A_BEAT], [[A_READY], [STATS], [A_BEAT]]),
        ([A_BEAT, A_BEAT, STATS, STATS], [[A_BEAT, A_BEAT, STATS], [STATS]]),
        ([A_BEAT, A_BEAT], [[A_BEAT, A_BEAT]]),
        ([[b"x", b"y", BEAT], A_BEAT], [[[b"x", b"y", BEAT]], [A_BEAT]]),  # 3 parts: no beat
    ],
)
def test_held_frames_are_taken_one_costly_frame_at_a_time(
    frames: list[list[bytes]], pieces: list[list[list[bytes]]]
) -> None:
    """Each piece ends at the first frame that is not a heartbeat, in the order received."""
    held = HeldBatch()
    held.frames, held.since = list(frames), 1.0
    taken = []
    while held:
        taken.append(held.take())
    assert taken == pieces
    assert held.since is None


@pytest.mark.parametrize(
    ("held_frames", "now", "due"),
    [
        (0, 9.0, False),  # nothing held: never due
        (1, 1.125, False),
        (1, 1.25, True),  # the pause has passed since the first
        (127, 1.0, False),
        (128, 1.0, True),  # the batch is full
    ],
)
def test_held_frames_fall_due_after_the_pause_or_when_full(
    held_frames: int, now: float, due: bool
) -> None:
    """Due once ``pause`` has passed since the first frame was held, or at ``limit`` frames."""
    held = HeldBatch()
    held.add([[b"s%d" % i, READY] for i in range(held_frames)], 1.0)
    assert held.due(now, pause=0.25, limit=128) is due
    assert held.deadline(0.25) == (1.25 if held_frames else None)


def test_taking_all_empties_the_batch_and_frees_its_senders() -> None:
    """Every held frame comes out in order; a sender's next heartbeat goes ahead again."""
    held = HeldBatch()
    held.add([A_READY, STATS, A_BEAT], 1.0)
    assert held.take_all() == [A_READY, STATS, A_BEAT]
    assert (len(held), held.since) == (0, None)
    assert held.add([A_BEAT], 2.0) == [A_BEAT]
