"""The worker's link thread against a scripted master ROUTER on loopback (real sockets)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest
import zmq

from horde.protocol import messages as m
from horde.protocol.codec import AnyMessage, decode_upstream, encode
from horde.worker.transport import LinkStatus, WorkerLink, register_delay

NODE = "host_link"


class FakeMaster:
    """A bound ROUTER the test drives by hand (no handover, as horde's master)."""

    def __init__(self) -> None:
        self.sock = zmq.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.port = self.sock.bind_to_random_port("tcp://127.0.0.1")

    def recv(self, timeout: float = 5.0) -> AnyMessage:
        if not self.sock.poll(int(timeout * 1000)):
            raise AssertionError(f"nothing from the worker in {timeout} s")
        identity, raw = self.sock.recv_multipart()
        assert identity == NODE.encode()
        return decode_upstream(raw)

    def expect(self, kind: type[Any], timeout: float = 5.0) -> Any:
        """The next message of type ``kind``, skipping others (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.recv(max(deadline - time.monotonic(), 0.001))
            if isinstance(message, kind):
                return message

    def send(self, message: m.Message) -> None:
        self.sock.send_multipart([NODE.encode(), encode(message)])

    def close(self) -> None:
        self.sock.close(linger=0)


@pytest.fixture
def master() -> Iterator[FakeMaster]:
    fake = FakeMaster()
    yield fake
    fake.close()


@pytest.fixture
def link(master: FakeMaster) -> Iterator[WorkerLink]:
    worker = WorkerLink(
        f"tcp://127.0.0.1:{master.port}",
        NODE,
        LinkStatus(),
        heartbeat_interval=0.05,
        register_retry=0.3,
        max_frame=1 << 20,
        master_silence=0.4,
    )
    worker.start()
    yield worker
    worker.close(timeout=2)


def until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll ``condition`` (bounded); the link thread runs on its own meanwhile."""
    with gevent.Timeout(timeout):
        while not condition():
            gevent.sleep(0.005)


def received(link: WorkerLink, timeout: float = 5.0) -> AnyMessage:
    with gevent.Timeout(timeout):
        return link.recv()


def register(master: FakeMaster, link: WorkerLink, *, horde: bool = True) -> None:
    master.expect(m.ClientReady)
    ack = m.Ack(NODE, index=0, horde=m.PROTOCOL_VERSION if horde else None, lease=3.0)
    master.send(ack)
    assert isinstance(received(link), m.Ack)


def test_horde_heartbeats_are_numbered_and_echoes_renew_the_lease(
    master: FakeMaster, link: WorkerLink
) -> None:
    """Beats count 1, 2, 3 ...; an echo sets the deadline to that beat's send time + lease."""
    register(master, link)
    beats = [master.expect(m.WorkerHeartbeat).beat for _ in range(3)]
    assert beats == sorted(beats) and len(set(beats)) == 3 and beats[0] >= 1
    lease = link.status.lease
    assert lease.seconds == 3.0 and lease.deadline is None
    before = time.monotonic()
    beat = master.expect(m.WorkerHeartbeat).beat
    master.send(m.MasterHeartbeat(NODE, beat=beat))
    until(lambda: lease.deadline is not None)
    assert lease.deadline is not None
    assert before - 0.5 < lease.deadline - 3.0 <= time.monotonic()


def test_a_locust_master_gets_no_beat_and_grants_no_lease(
    master: FakeMaster, link: WorkerLink
) -> None:
    """Without the horde extension heartbeats carry no beat and no lease is in force."""
    register(master, link, horde=False)
    heartbeat = master.expect(m.WorkerHeartbeat)
    assert (heartbeat.beat, heartbeat.user_count) == (None, None)
    assert not link.status.lease.in_force


def test_a_reconnect_while_registering_is_ignored(master: FakeMaster, link: WorkerLink) -> None:
    """A reconnect that answers a stale heartbeat is not acted on while registering."""
    master.expect(m.ClientReady)
    master.send(m.Reconnect(NODE))
    master.send(m.Ack(NODE, index=0, horde=m.PROTOCOL_VERSION))
    assert isinstance(received(link), m.Ack)  # the reconnect never reached the agent
    master.expect(m.WorkerHeartbeat)
    assert link.status.registered


def test_a_reconnect_when_registered_rebuilds_and_registers_again(
    master: FakeMaster, link: WorkerLink
) -> None:
    """A reconnect from the master makes the worker register again on a new socket."""
    register(master, link)
    master.expect(m.WorkerHeartbeat)
    master.send(m.Reconnect(NODE))
    assert isinstance(received(link), m.Reconnect)
    master.expect(m.ClientReady)
    assert not link.status.registered


def test_reregister_sends_client_ready_after_what_was_queued(
    master: FakeMaster, link: WorkerLink
) -> None:
    """reregister() follows the sends before it, then registers until the master acks."""
    register(master, link)
    link.send(m.ClientStopped(NODE))
    link.reregister()
    master.expect(m.ClientStopped)
    master.expect(m.ClientReady)
    master.send(m.Ack(NODE, index=0, horde=m.PROTOCOL_VERSION))
    assert isinstance(received(link), m.Ack)
    until(lambda: link.status.registered)


def test_an_unanswered_client_ready_is_retried(master: FakeMaster, link: WorkerLink) -> None:
    """The worker keeps sending client_ready every register_retry until a master acks."""
    for _ in range(3):
        master.expect(m.ClientReady)
    master.send(m.Ack(NODE, index=0, horde=m.PROTOCOL_VERSION))
    assert isinstance(received(link), m.Ack)


def test_a_silent_horde_master_is_registered_with_again(
    master: FakeMaster, link: WorkerLink
) -> None:
    """A registered worker that hears nothing from a horde master registers again."""
    register(master, link)
    master.expect(m.WorkerHeartbeat)
    master.expect(m.ClientReady, timeout=5)
    assert not link.status.registered


@pytest.mark.parametrize(
    ("attempts", "retry", "delay"),
    [
        (1, 3.0, 0.25),
        (2, 3.0, 0.5),
        (3, 3.0, 1.0),
        (4, 3.0, 2.0),
        (5, 3.0, 3.0),
        (99, 3.0, 3.0),
        (1, 0.1, 0.1),
        (10_000, 60.0, 60.0),
    ],
)
def test_client_ready_retries_start_quick_and_settle_at_register_retry(
    attempts: int, retry: float, delay: float
) -> None:
    """The wait after the n-th unanswered client_ready doubles from 0.25 s up to register_retry."""
    assert register_delay(attempts, retry) == delay
