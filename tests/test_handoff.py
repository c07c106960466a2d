"""The GIL handoff between the worker's gevent side and its link thread (no sockets)."""

from __future__ import annotations

import threading
import time

from horde.worker.handoff import LINK_LATE, Handoff


def test_a_thread_that_passed_lately_is_not_waited_for() -> None:
    """make_way returns at once, without waiting, while the thread's last pass is recent."""
    handoff = Handoff(now=100.0)
    assert not handoff.late(100.0 + LINK_LATE / 2)
    assert handoff.make_way(100.0 + LINK_LATE / 2) is False
    assert handoff.late(100.0 + LINK_LATE * 2)
    assert handoff.handoffs == 0


def test_make_way_waits_for_a_late_threads_next_pass() -> None:
    """A late thread's next pass ends the gevent side's wait before the wait's bound."""
    handoff = Handoff(now=0.0)
    waiting = threading.Event()

    def thread() -> None:
        while handoff._waiting is None:
            time.sleep(0.001)
        waiting.set()
        handoff.passed(time.monotonic())

    runner = threading.Thread(target=thread)
    runner.start()
    started = time.monotonic()
    assert handoff.make_way(started, wait=10.0) is True
    runner.join(timeout=10)
    assert waiting.is_set()
    assert time.monotonic() - started < 5.0
    assert handoff.handoffs == 1 and not handoff.late(time.monotonic())


def test_make_way_gives_up_after_its_bound() -> None:
    """A thread that never passes costs the gevent side one bounded wait per call."""
    handoff = Handoff(now=0.0)
    started = time.monotonic()
    assert handoff.make_way(started, wait=0.05) is True
    assert 0.04 <= time.monotonic() - started < 5.0


def test_an_ended_thread_is_never_late() -> None:
    """Once the thread has ended, the gevent side stops making way for it."""
    handoff = Handoff(now=0.0)
    handoff.ended()
    assert handoff.make_way(1e9) is False
