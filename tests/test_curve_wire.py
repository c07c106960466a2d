"""The worker channel as a TCP relay sees it: nothing readable with CURVE, tampering and
hijacking dropped, and every request still counted exactly.

A :class:`tests.relay.Relay` sits between one worker and the master's ZeroMQ port: it
records both directions, cuts the worker off and lets it back, and flips one bit inside an
upstream message body. The first tests check the relay itself on in-process pyzmq sockets;
the others run real ``horde master`` and ``horde worker`` processes against a counting
target, with keys from ``horde keygen``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import zmq

from horde.protocol import messages as m
from horde.protocol.codec import encode
from horde.worker.stats import RequestRecorder
from tests.fault_support import Cluster, CountingTarget, counting_target, events, rejected
from tests.relay import Relay
from tests.support import Keys, Processes, post, processes, wait_for

MARKER = "wire-marker-5f1c9e"
"""A string only the wire script's text holds (a credential, in a real script)."""
ENTRY = "/wire-entry-5f1c9e"
USER_CLASS = "WireReaderUser"
USERS = 2
REQUESTS_PER_USER = 50
WIRE_SCRIPT = f'''"""Each user makes {REQUESTS_PER_USER} requests and stops; its text, entry
and class are easy to spot: {MARKER}."""

from horde import HttpUser, StopUser, constant, task

TOKEN = "{MARKER}"


class {USER_CLASS}(HttpUser):
    wait_time = constant(0.02)

    def on_start(self) -> None:
        self.made = 0

    @task
    def hit(self) -> None:
        if self.made >= {REQUESTS_PER_USER}:
            raise StopUser()
        self.made += 1
        self.client.get("{ENTRY}")
'''
MESSAGE_TYPES = ("client_ready", "heartbeat", "spawn", "spawning_complete", "stats", "ack")
STATS_INTERVAL = "0.5"
STATS_BODY = 250
"""Bytes of a message body (CURVE adds 33) above any heartbeat's and below any stats delta's."""


# --- the relay itself (in-process pyzmq, no horde) -------------------------------------------


@dataclass
class Pair:
    """A ROUTER bound on loopback and a DEALER connected to it through a relay."""

    router: zmq.Socket
    dealer: zmq.Socket
    relay: Relay

    def roundtrip(self, payload: bytes, timeout: float = 5.0) -> bytes | None:
        """Send ``payload`` up; return what the ROUTER received (None if nothing came)."""
        self.dealer.send(payload)
        if not self.router.poll(int(timeout * 1000)):
            return None
        _, received = self.router.recv_multipart()
        return bytes(received)


@contextmanager
def _connected(curve: bool) -> Iterator[Pair]:
    """A ROUTER (a CURVE server, or plain) and a DEALER connected to it through a relay."""
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    dealer = context.socket(zmq.DEALER)
    router.linger = dealer.linger = 0
    dealer.setsockopt(zmq.RECONNECT_IVL, 50)
    if curve:
        server_public, server_secret = zmq.curve_keypair()
        router.curve_server = True
        router.curve_secretkey = server_secret
        dealer.curve_publickey, dealer.curve_secretkey = zmq.curve_keypair()
        dealer.curve_serverkey = server_public
    port = router.bind_to_random_port("tcp://127.0.0.1")
    try:
        with Relay(port) as relay:
            dealer.connect(f"tcp://{relay.endpoint}")
            yield Pair(router, dealer, relay)
    finally:
        dealer.close(0)
        router.close(0)
        context.term()


def test_relay_records_both_directions() -> None:
    """Bytes a DEALER sends up and a ROUTER answers down pass the relay and are recorded."""
    with _connected(curve=False) as pair:
        assert pair.roundtrip(b"up-marker-31") == b"up-marker-31"
        pair.dealer.send(b"again")
        routing_id, _ = pair.router.recv_multipart()
        pair.router.send_multipart([routing_id, b"down-marker-47"])
        assert pair.dealer.poll(5000)
        assert pair.dealer.recv() == b"down-marker-47"
        assert b"up-marker-31" in pair.relay.upstream
        assert b"down-marker-47" in pair.relay.downstream
        assert b"down-marker-47" not in pair.relay.upstream
        assert len(pair.relay.connections) == 1


def test_relay_flips_the_last_byte_of_a_message_body_only() -> None:
    """Armed, the relay flips one bit in the last byte of the next message body of the size
    asked for (a short and a long ZMTP frame), never in the greeting, handshake or headers."""
    with _connected(curve=False) as pair:
        assert pair.roundtrip(b"A" * 20) == b"A" * 20
        done = pair.relay.tamper_next_upstream()
        assert pair.roundtrip(b"B" * 100) == b"B" * 99 + b"C"  # 0x42 ^ 1
        assert done.wait(5)
        done = pair.relay.tamper_next_upstream(min_body=1000)
        assert pair.roundtrip(b"D" * 300) == b"D" * 300  # too small: left alone
        assert pair.roundtrip(b"F" * 1000) == b"F" * 999 + b"G"  # a long (8-byte size) frame
        assert done.wait(5)
        assert pair.roundtrip(b"H" * 100) == b"H" * 100  # once only
        flips = pair.relay.tampered
        assert [(t.connection, t.body_size) for t in flips] == [(0, 100), (0, 1000)]
        upstream = pair.relay.connections[0].up  # recorded as the DEALER sent it
        assert [upstream[t.offset] for t in flips] == [ord("B"), ord("F")]


def test_relay_cut_closes_connections_and_refuses_until_restored() -> None:
    """A cut closes the open connection and turns reconnects away; after restore the DEALER
    reconnects through the relay on its own and its messages arrive again."""
    with _connected(curve=False) as pair:
        assert pair.roundtrip(b"before") == b"before"
        pair.relay.cut()
        assert pair.relay.connections[0].closed_by == "cut"
        wait_for(lambda: pair.relay.refused >= 2, 5, "reconnects refused while cut")
        assert not pair.relay.open_connections()
        pair.relay.restore()
        wait_for(pair.relay.open_connections, 5, "a new connection after restore")
        assert pair.roundtrip(b"after") == b"after"


def test_relay_tamper_makes_libzmq_drop_a_curve_connection() -> None:
    """With CURVE, a flipped bit fails the message's authentication: libzmq closes the
    connection, the message is lost, and the DEALER reconnects and is heard again."""
    with _connected(curve=True) as pair:
        assert pair.roundtrip(b"first") == b"first"
        done = pair.relay.tamper_next_upstream()
        assert pair.roundtrip(b"tampered", timeout=0.5) is None
        assert done.wait(5)
        wait_for(lambda: pair.relay.connections[0].closed_by == "target", 5, "the drop")
        wait_for(pair.relay.open_connections, 5, "the DEALER's reconnection")
        assert pair.roundtrip(b"after") == b"after"
        assert b"first" not in pair.relay.upstream


# --- horde processes through the relay -----------------------------------------------------


def _worker(c: Cluster, relay: Relay, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """Start a ``horde worker`` whose master is the relay; return it and its node id."""
    worker = c.procs.horde(
        "worker", "--master", relay.endpoint, "--stats-interval", STATS_INTERVAL, *extra
    )
    return worker, c.node_id(worker)


def _swarm(c: Cluster) -> None:
    status, body = post(f"{c.web}/swarm", {"user_count": USERS, "spawn_rate": 100})
    assert status == 200, body


def _counted_exactly(c: Cluster, target: CountingTarget) -> tuple[int, int]:
    """Once every user made its requests and stopped, and the master counted at least what
    the target served, return (served, counted by the master)."""
    expected = USERS * REQUESTS_PER_USER
    wait_for(lambda: target.total() >= expected, 30, f"the target to serve {expected}")
    wait_for(
        lambda: c.report()["user_count"] == 0 and c.total_requests() >= target.total(),
        20,
        "the users to stop and the master to count every request",
    )
    served, counted = target.total(), c.total_requests()
    assert served == expected, f"the target served {served}, not {expected}"
    return served, counted


@pytest.mark.process
@pytest.mark.parametrize("curve", [True, False], ids=["curve", "plain"])
def test_nothing_readable_on_the_wire(tmp_path: Path, curve: bool) -> None:
    """With CURVE, the script's text, the node id, message types, entry and class names
    appear nowhere in a whole run's bytes between worker and master; plain, all of them do."""
    script = tmp_path / "wire.py"
    script.write_text(WIRE_SCRIPT)
    keys = Keys.make(tmp_path / "keys") if curve else None
    with counting_target() as target, processes() as procs:
        c = Cluster(procs, target.url)
        c.start_master(*(keys.master_args() if keys else ()), script=str(script))
        with Relay(c.zmq_port) as relay:
            # no -f: the worker fetches the script from the master, through the relay
            _, node = _worker(c, relay, *(keys.worker_args(1) if keys else ()))
            c.wait_workers([node])
            _swarm(c)
            served, counted = _counted_exactly(c, target)
            up, down = relay.upstream, relay.downstream
            connections = len(relay.connections)
    secrets = {MARKER, node, ENTRY, USER_CLASS, *MESSAGE_TYPES}
    found = {s for s in secrets if s.encode() in up or s.encode() in down}
    print(
        f"\nwire ({'curve' if curve else 'plain'}): {len(up)} bytes up, {len(down)} down,"
        f" {connections} connections; served {served}, counted {counted};"
        f" readable: {sorted(found)}"
    )
    assert served == counted
    assert len(up) > 1000 and len(down) > 1000, "the run's traffic did not cross the relay"
    assert found == (set() if curve else secrets)


def _wire_cluster(
    procs: Processes, target: CountingTarget, tmp_path: Path, keys: Keys | None
) -> tuple[Cluster, Path]:
    """A master for the wire script (a CURVE server when ``keys`` are given) and the script."""
    script = tmp_path / "wire.py"
    script.write_text(WIRE_SCRIPT)
    c = Cluster(procs, target.url)
    c.start_master(*(keys.master_args() if keys else ()), script=str(script))
    return c, script


@pytest.mark.process
def test_a_tampered_upstream_message_costs_a_reconnect_and_no_request(tmp_path: Path) -> None:
    """A bit flipped in an upstream stats message makes the master drop the connection; the
    worker reconnects, the master keeps serving, and it counts exactly what the target served."""
    keys = Keys.make(tmp_path / "keys")
    with counting_target() as target, processes() as procs:
        c, script = _wire_cluster(procs, target, tmp_path, keys)
        with Relay(c.zmq_port) as relay:
            worker, node = _worker(c, relay, "-f", str(script), *keys.worker_args(1))
            c.wait_workers([node])
            _swarm(c)
            wait_for(lambda: c.total_requests() > 0, 20, "a first stats delta merged")
            assert relay.tamper_next_upstream(min_body=STATS_BODY).wait(10), "nothing to tamper"
            flip = relay.tampered[0]
            tampered = relay.connections[flip.connection]
            wait_for(lambda: tampered.closed_by, 10, "the tampered connection to close")
            wait_for(
                lambda: any(x.index > flip.connection for x in relay.open_connections()),
                10,
                "the worker to reconnect through the relay",
            )
            served, counted = _counted_exactly(c, target)
            rows = c.rows()
            metrics = c.metrics()
            connections = len(relay.connections)
        assert c.master is not None and c.master.poll() is None, "the master stopped serving"
        registered = c.procs.output(worker).count("registered with master")
    print(
        f"\ntamper: flipped byte {flip.offset} of connection {flip.connection} (a"
        f" {flip.body_size}-byte message body), closed by the {tampered.closed_by};"
        f" {connections} connections, worker registered {registered} times;"
        f" served {served}, counted {counted}; stats events"
        f" { ({k: v for k, v in events(metrics).items() if 'stats' in k}) }"
    )
    assert tampered.closed_by == "target", "libzmq on the master did not drop the connection"
    assert rows[node]["state"] != "missing"
    assert counted == served


FORGED_REQUESTS = 500
FORGED_REPORTS = 3


def _forged_stats(node: str) -> bytes:
    """A Locust stats report of FORGED_REQUESTS requests, as if from ``node``."""
    recorder = RequestRecorder()
    for _ in range(FORGED_REQUESTS):
        recorder.record("GET", ENTRY, 1.0, 3, None, time.time())
    report = recorder.take_locust_report(
        now=time.time(), user_classes_count={USER_CLASS: 1}, user_count=1
    )
    return encode(m.LocustStats(node, report))


def _hijack(c: Cluster, keys: Keys, node: str) -> tuple[int, int, int]:
    """Under ``node``'s identity with worker 2's key, send heartbeats until the master
    counts one as ``wrong_key``, then forged stats; return (frames sent, the counter
    before the forged stats, after them)."""

    def wrong_key() -> int:
        return rejected(c.metrics()).get("wrong_key", 0)

    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.linger = 0
    sock.routing_id = node.encode()
    keys.curve_client(sock, 2)
    sock.connect(f"tcp://127.0.0.1:{c.zmq_port}")
    heartbeat = encode(m.WorkerHeartbeat(node, "running", 1.0, 1, user_count=1, beat=1))
    sent = 0
    try:

        def beat() -> int:
            nonlocal sent
            sock.send(heartbeat)
            sent += 1
            return wrong_key()

        before = wait_for(beat, 10, "the hijacker's heartbeat counted as wrong_key", 0.1)
        for _ in range(FORGED_REPORTS):
            sock.send(_forged_stats(node))
            sent += 1
        after = wait_for(
            lambda: (n := wrong_key()) >= before + FORGED_REPORTS and n, 10, "forged stats"
        )
    finally:
        sock.close(0)
        context.term()
    return sent, before, after


@pytest.mark.process
def test_another_allowed_key_cannot_speak_for_a_cut_off_worker(tmp_path: Path) -> None:
    """While the relay cuts the first worker off, a peer with the second worker's key under
    the first one's identity has its heartbeats and forged stats dropped and counted as
    ``wrong_key``; back, the first worker's stats are exact."""
    keys = Keys.make(tmp_path / "keys")
    with counting_target() as target, processes() as procs:
        c, script = _wire_cluster(procs, target, tmp_path, keys)
        with Relay(c.zmq_port) as relay:
            _, node = _worker(c, relay, "-f", str(script), *keys.worker_args(1))
            c.wait_workers([node])
            _swarm(c)
            wait_for(lambda: c.total_requests() > 0, 20, "a first stats delta merged")
            cut_at = time.monotonic()
            relay.cut()
            wait_for(lambda: relay.refused >= 1, 10, "the worker's reconnect turned away")
            sent, before, after = _hijack(c, keys, node)
            relay.restore()
            cut_for = time.monotonic() - cut_at
            wait_for(relay.open_connections, 10, "the first worker back through the relay")
            served, counted = _counted_exactly(c, target)
            final = rejected(c.metrics())
            rows = c.rows()
    print(
        f"\nhijack: cut for {cut_for:.2f} s, {relay.refused} reconnects refused; the hijacker"
        f" sent {sent} frames, wrong_key {before} -> {after} (final {final});"
        f" served {served}, counted {counted}"
    )
    assert before >= 1
    assert after - before >= FORGED_REPORTS, "a forged report was not counted as wrong_key"
    assert after == final["wrong_key"] <= sent, "the first worker's own frames were refused"
    assert rows[node]["key"] == keys.fingerprint(1)
    assert counted == served
