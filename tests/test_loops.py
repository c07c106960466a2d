"""The master's loops on real ZeroMQ sockets in this process (gevent, no monkey-patching)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import gevent
import pytest
import zmq.green as zmq

from horde.master import loops as loops_module
from horde.master import transport as transport_module
from horde.master.config import MasterSettings
from horde.master.coordinator import Coordinator
from horde.master.dispatch import UserClassSpec
from horde.master.loops import MasterLoops, Pacer
from horde.master.transport import RouterTransport
from horde.protocol import messages as m
from horde.protocol.codec import decode_downstream, encode


def router() -> RouterTransport:
    return RouterTransport("tcp://127.0.0.1:0", max_frame=1 << 20)


def started(settings: MasterSettings) -> Iterator[MasterLoops]:
    holder: list[MasterLoops] = []

    def send(identity: str, message: m.Message) -> None:
        holder[0].send(identity, message)

    coordinator = Coordinator(settings, [UserClassSpec("A", 1, 0)], send)
    master = MasterLoops(coordinator, [router(), router()])
    holder.append(master)
    master.start()
    yield master
    master.stop()


@pytest.fixture
def loops() -> Iterator[MasterLoops]:
    yield from started(MasterSettings())


@pytest.fixture
def quiet_loops() -> Iterator[MasterLoops]:
    """Loops whose timer sleeps a minute between sweeps (its pause never interferes)."""
    yield from started(MasterSettings(sweep_interval=60.0))


def dealer(identity: str | bytes, port: int) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    raw = identity if isinstance(identity, bytes) else identity.encode()
    sock.setsockopt(zmq.IDENTITY, raw)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"tcp://127.0.0.1:{port}")
    return sock


def receive(sock: zmq.Socket) -> m.Message:
    with gevent.Timeout(5):
        message = decode_downstream(sock.recv())
    assert isinstance(message, m.Message)
    return message


def test_each_worker_is_answered_on_the_transport_it_spoke_on(loops: MasterLoops) -> None:
    """Two endpoints feed one coordinator; acks go back through the socket each worker used."""
    first, second = loops.transports
    a = dealer("host_a", first.port)
    b = dealer("host_b", second.port)
    a.send(encode(m.ClientReady("host_a")))
    b.send(encode(m.ClientReady("host_b")))
    acks = [receive(a), receive(b)]
    assert {ack.node_id for ack in acks} == {"host_a", "host_b"}
    assert {r.worker_id for r in loops.coordinator.registry.all()} == {"host_a", "host_b"}
    a.close()
    b.close()


def test_malformed_frames_are_counted_and_the_loop_goes_on(loops: MasterLoops) -> None:
    """Garbage, multi-part and non-UTF-8 identities are counted; a worker still registers."""
    bad = dealer("bad_1", loops.transport.port)
    for frame in (b"\x00garbage", b"\x93\x01\x02\x03", b""):
        bad.send(frame)
    bad.send_multipart([b"one", b"two"])
    weird = dealer(b"\xff\xfe", loops.transport.port)
    weird.send(encode(m.ClientReady("x")))
    good = dealer("host_good", loops.transport.port)
    good.send(encode(m.ClientReady("host_good")))
    assert isinstance(receive(good), m.Ack)
    counters = loops.coordinator.counters
    with gevent.Timeout(5):
        while sum(v for k, v in counters.items() if k.startswith("malformed")) < 5:
            gevent.sleep(0.01)
    assert counters["malformed_frames"] == 1
    assert counters["malformed_identity"] == 1
    assert counters["malformed_msgpack"] + counters.get("malformed_shape", 0) >= 3
    for sock in (bad, weird, good):
        sock.close()


def malformed(loops: MasterLoops) -> int:
    return sum(v for k, v in loops.coordinator.counters.items() if k.startswith("malformed"))


def test_a_pause_wakes_the_receive_loop_and_waits_for_its_batch(
    quiet_loops: MasterLoops, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long job's pause cuts the receive loop's wait short: queued frames are handled."""
    loops = quiet_loops
    monkeypatch.setattr(loops_module, "HOLD_RATE_MAX", 0.0)  # batch always, as when busy
    monkeypatch.setattr(loops_module, "RECEIVE_PAUSE", 60.0)  # without a nudge: a minute
    monkeypatch.setattr(loops_module, "PAUSE_MAX", 60.0)
    sender = dealer("host_x", loops.transport.port)
    sender.send(b"\x00zero")  # the loop starts out receiving: this one is handled
    with gevent.Timeout(5):
        while malformed(loops) < 1:
            gevent.sleep(0.01)
    handled = 1
    # Now the loop waits out its receive pause and a frame stays queued; unless the
    # timer's first pass paused while "zero" was queued and left a nudge behind, which
    # the loop uses up at once: then the next frame finds it waiting.
    for frame in (b"\x00one", b"\x00two"):
        sender.send(frame)
        with gevent.Timeout(5):
            while malformed(loops) == handled and not loops.transport.pending():
                gevent.sleep(0.01)
        if malformed(loops) == handled:
            break
        handled = malformed(loops)
    assert loops.transport.pending()
    with gevent.Timeout(5):
        loops.pause()
    assert malformed(loops) == handled + 1  # handled before the pause returned
    sender.close()


def settle(loops: MasterLoops) -> None:
    """Wait until the loops' first passes are over: a stranger's heartbeat is answered."""
    stranger = dealer("host_settle", loops.transport.port)
    stranger.send(encode(m.WorkerHeartbeat("host_settle", "ready", 1.0, 1024)))
    assert isinstance(receive(stranger), m.Reconnect)
    stranger.close()


def wait_until_queued(transport: RouterTransport) -> None:
    """Wait, without letting the receive loop run, until a frame is queued on ``transport``."""
    deadline = time.monotonic() + 5
    while not transport.pending():
        assert time.monotonic() < deadline, "no frame arrived"
        time.sleep(0.001)


def hold_a_frame_and_queue_a_heartbeat(
    loops: MasterLoops, monkeypatch: pytest.MonkeyPatch, *, due: bool = False
) -> tuple[zmq.Socket, zmq.Socket]:
    """Have the quiet receive loop hold one frame (for a minute, or ``due`` at its next
    round; a pause waits a minute for its turn), then queue a stranger's heartbeat without
    letting the loop run; return the two sockets."""
    monkeypatch.setattr(loops_module, "RECEIVE_PAUSE", 60.0)
    monkeypatch.setattr(loops_module, "PAUSE_MAX", 60.0)
    settle(loops)
    sender = dealer("host_x", loops.transport.port)
    sender.send(b"\x00zero")
    with gevent.Timeout(5):
        while loops.held() < 1:
            gevent.sleep(0.01)
    if due:
        monkeypatch.setattr(loops_module, "RECEIVE_PAUSE", 0.0)
    stranger = dealer("host_y", loops.transport.port)
    stranger.send(encode(m.WorkerHeartbeat("host_y", "ready", 1.0, 1024)))
    wait_until_queued(loops.transport)
    return sender, stranger


def test_a_pause_lets_the_receive_loop_answer_a_heartbeat_while_frames_are_held(
    quiet_loops: MasterLoops, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long job's pause returns once a queued heartbeat is answered; held frames wait."""
    loops = quiet_loops
    sender, stranger = hold_a_frame_and_queue_a_heartbeat(loops, monkeypatch)
    with gevent.Timeout(5):
        loops.pause()
    assert loops.coordinator.counters["unknown_worker"] == 2  # answered before it returned
    assert (loops.held(), malformed(loops)) == (1, 0)
    assert isinstance(receive(stranger), m.Reconnect)
    sender.close()
    stranger.close()


def test_a_paused_long_job_goes_on_before_the_held_frames_are_handled(
    quiet_loops: MasterLoops, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The round a pause waits for only answers heartbeats; due held frames come after."""
    loops = quiet_loops
    sender, stranger = hold_a_frame_and_queue_a_heartbeat(loops, monkeypatch, due=True)
    with gevent.Timeout(5):
        loops.pause()
    assert loops.coordinator.counters["unknown_worker"] == 2  # the heartbeat is answered
    assert malformed(loops) == 0  # the held frame is not handled yet
    with gevent.Timeout(5):
        while malformed(loops) < 1:  # but soon after
            gevent.sleep(0.01)
    sender.close()
    stranger.close()


def test_a_heartbeat_is_answered_at_once_unless_its_sender_has_frames_held(
    quiet_loops: MasterLoops, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While frames are held, a heartbeat goes ahead of them, but never ahead of its sender's."""
    loops = quiet_loops
    monkeypatch.setattr(loops_module, "RECEIVE_PAUSE", 60.0)
    settle(loops)
    early = dealer("host_a", loops.transport.port)
    early.send(encode(m.ClientReady("host_a")))
    early.send(encode(m.WorkerHeartbeat("host_a", "ready", 1.0, 1024)))
    with gevent.Timeout(5):
        while loops.held() < 2:
            gevent.sleep(0.01)
    stranger = dealer("host_b", loops.transport.port)
    stranger.send(encode(m.WorkerHeartbeat("host_b", "ready", 1.0, 1024)))
    assert isinstance(receive(stranger), m.Reconnect)  # not held for a minute
    assert loops.held() == 2  # host_a's heartbeat still waits behind its registration
    assert loops.coordinator.counters["unknown_worker"] == 2  # settle's and host_b's
    early.close()
    stranger.close()


def test_a_pause_with_nothing_to_receive_only_yields(
    loops: MasterLoops, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no frame queued there is no batch to wait for: the pause returns at once."""
    monkeypatch.setattr(loops_module, "PAUSE_MAX", 60.0)
    ran = []
    gevent.spawn(ran.append, 1)
    with gevent.Timeout(5):  # would wait a minute for a batch that never comes
        loops.pause()
    assert ran == [1]  # other greenlets got their turn


def test_a_pacer_pauses_once_per_budget_of_work() -> None:
    """Calls within the budget do nothing; the first call past it pauses and starts anew."""
    now = [0.0]
    pauses: list[float] = []
    pacer = Pacer(lambda: pauses.append(now[0]), budget=0.004, clock=lambda: now[0])
    for t in (0.001, 0.003, 0.0039, 0.004, 0.005, 0.0079, 0.0081, 0.02):
        now[0] = t
        pacer()
    assert pauses == [0.004, 0.0081, 0.02]
    assert pacer.pauses == 3


def test_asking_whether_a_frame_is_queued_wakes_a_receive_waiting_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``pending`` reads the edge-triggered signal a waiting receive needs, so it wakes it."""
    monkeypatch.setattr(transport_module, "WAIT_RECHECK", 60.0)  # no recheck to save us
    transport = router()
    transport.open()
    waiting = gevent.spawn(transport.recv_many, 10, None)
    gevent.sleep(0)  # it waits now
    sender = dealer("host_x", transport.port)
    sender.send(b"frame")
    wait_until_queued(transport)
    with gevent.Timeout(5):
        assert waiting.get() == [[b"host_x", b"frame"]]
    sender.close()
    transport.close()


def test_long_jobs_slice_finer_while_heartbeats_are_answered_at_once() -> None:
    """A pacer's slice is short while frames arrive slowly, longer once they are batched."""
    from horde.master.process import Scheduling

    coordinator = Coordinator(MasterSettings(), [UserClassSpec("U", 1, 0)], lambda w, msg: None)
    scheduling = Scheduling(lambda batch: None)
    master = MasterLoops(coordinator, [router()], scheduling=scheduling)
    slow = master.pacer()
    scheduling.update("loop", fast=True)
    fast = master.pacer()
    assert (slow._budget, fast._budget) == (
        loops_module.SLICE_SECONDS,
        loops_module.SLICE_SECONDS_BATCHED,
    )
    assert slow._budget < fast._budget
