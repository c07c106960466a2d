"""The master's loops on real ZeroMQ sockets in this process (gevent, no monkey-patching)."""

from __future__ import annotations

from collections.abc import Iterator

import gevent
import pytest
import zmq.green as zmq

from horde.master import loops as loops_module
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
