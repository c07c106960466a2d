"""The worker's lease as a pure policy: tables of events on an injected clock, no sleeping."""

from __future__ import annotations

from typing import Any

import pytest

from horde.worker.lease import Lease

# Each step: ("grant", seconds) | ("sent", beat, now) | ("answered", beat, renewed?).
# Then the expected deadline and, for each probe time, whether users may run.
Step = tuple[Any, ...]

CASES: list[tuple[str, list[Step], float | None, dict[float, bool]]] = [
    (
        "no grant (a Locust master): nothing ever expires",
        [("sent", 1, 0.0), ("answered", 1, False)],
        None,
        {0.0: True, 1e9: True},
    ),
    (
        "granted but not answered yet: no lease holds",
        [("grant", 3.0), ("sent", 1, 10.0)],
        None,
        {10.0: False, 11.0: False},
    ),
    (
        "an echo renews from the send time of the beat it answers, not its arrival",
        [("grant", 3.0), ("sent", 1, 10.0), ("answered", 1, True)],
        13.0,
        {12.99: True, 13.0: False, 20.0: False},
    ),
    (
        "a later beat's echo extends the deadline",
        [
            ("grant", 3.0),
            ("sent", 1, 10.0),
            ("sent", 2, 11.0),
            ("answered", 1, True),
            ("answered", 2, True),
        ],
        14.0,
        {13.5: True, 14.0: False},
    ),
    (
        "an echo of an older beat after a newer one never shortens the deadline",
        [
            ("grant", 3.0),
            ("sent", 1, 10.0),
            ("sent", 2, 11.0),
            ("answered", 2, True),
            ("answered", 1, False),
        ],
        14.0,
        {13.9: True},
    ),
    (
        "an echo of a beat never sent renews nothing",
        [("grant", 3.0), ("sent", 1, 10.0), ("answered", 7, False)],
        None,
        {10.5: False},
    ),
    (
        "the same echo twice renews once",
        [("grant", 3.0), ("sent", 1, 10.0), ("answered", 1, True), ("answered", 1, False)],
        13.0,
        {12.0: True},
    ),
    (
        "an echo of a stale beat (sent long ago) gives a deadline already past",
        [("grant", 3.0), ("sent", 1, 0.0), ("answered", 1, True)],
        3.0,
        {60.0: False},
    ),
    (
        "a new grant keeps the deadline earned so far",
        [("grant", 3.0), ("sent", 1, 10.0), ("answered", 1, True), ("grant", 2.0)],
        13.0,
        {12.0: True, 13.0: False},
    ),
    (
        "a grant of no lease (re-registered with a Locust master) drops the deadline",
        [("grant", 3.0), ("sent", 1, 10.0), ("answered", 1, True), ("grant", None)],
        None,
        {100.0: True},
    ),
    (
        "no lease holds without a grant, but answers before a grant renew nothing",
        [("sent", 1, 10.0), ("answered", 1, False), ("grant", 3.0)],
        None,
        {10.5: False},
    ),
]


@pytest.mark.parametrize(
    ("steps", "deadline", "probes"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_lease_table(steps: list[Step], deadline: float | None, probes: dict[float, bool]) -> None:
    """Each sequence of grants, sends and echoes gives the expected deadline and verdicts."""
    lease = Lease()
    for step in steps:
        if step[0] == "grant":
            lease.grant(step[1])
        elif step[0] == "sent":
            lease.sent(step[1], step[2])
        else:
            assert lease.answered(step[1]) is step[2], step
    assert lease.deadline == deadline
    for now, holds in probes.items():
        assert (lease.holds(now), lease.expired(now)) == (holds, not holds), now


def test_only_the_last_beats_are_remembered() -> None:
    """Send times are kept for the last ``keep`` beats only; an older beat's echo renews nothing."""
    lease = Lease(keep=4)
    lease.grant(3.0)
    for beat in range(1, 101):
        lease.sent(beat, float(beat))
    assert lease.unanswered == 4
    assert lease.answered(96) is False
    assert lease.answered(97) is True
    assert lease.deadline == 100.0


def test_an_echo_forgets_the_beats_it_covers() -> None:
    """Answering beat k forgets beats up to k: memory stays bounded without any echo loss."""
    lease = Lease()
    lease.grant(3.0)
    for beat in range(1, 6):
        lease.sent(beat, float(beat))
    lease.answered(3)
    assert lease.unanswered == 2
    assert lease.in_force
