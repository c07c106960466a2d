"""A seeded mutation fuzzer against a live master, and oversized frames on real sockets.

The fuzzer mutates valid encoded messages (bit flips, truncations, splices, type swaps,
wrong shapes and types, unknown types, random bytes, empty and multi-part frames, deep
nesting, lying length headers, msgpack extension types, frames near and over the 16 MiB
limit) and sends more than 100,000 of them from several DEALER identities, one of which
names a real worker in every payload's ``node_id``. Every frame is also decoded locally
with horde's codec, so the master's per-reason rejection counters can be checked exactly.

The fuzzer and the oversized-frame test also run against a CURVE master: there the fuzzer
holds an allowed key (worker 2's; the real worker has worker 1's), and its rejection
counts must be the very ones the plain run predicts and counts.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

from horde.protocol import messages as m
from horde.protocol.codec import DEFAULT_MAX_FRAME, decode_downstream, decode_upstream, encode
from horde.protocol.errors import ProtocolError
from horde.worker.stats import RequestRecorder
from tests.fault_support import SECURITY, Cluster, Sampler, cluster, events, keys_for, rejected
from tests.support import Keys, post, wait_for

pytestmark = pytest.mark.process

SEED = 20261126
STRANGER_FRAMES = 100_000
KNOWN_FRAMES = 12_000
OVERSIZED_FRAMES = 2
#: Decode failures the codec and the receive loop classify (the exact-count reasons).
CODEC_REASONS = ("msgpack", "shape", "type", "field", "size", "frames", "identity")
#: The allowed key pair (of ``horde keygen --workers 2``) the fuzzer holds on a CURVE master.
FUZZER_KEY = 2
#: Drops for a frame's key rather than its bytes (CURVE only): none of the fuzzer's.
KEY_REASONS = ("wrong_key", "revoked_key")
UTF8_IDENTITIES = (b"fuzz-0", b"fuzz-1", b"fuzz-2")
SPOOF_IDENTITY = b"fuzz-spoof"
BAD_IDENTITY = b"\xfe\xff-not-utf8"
KNOWN_IDENTITY = b"fuzz-known"
TYPES = [str(t) for t in m.MessageType]


# --- the corpus ----------------------------------------------------------------------------


def _recorded() -> RequestRecorder:
    recorder = RequestRecorder()
    for i in range(30):
        recorder.record("GET", "/fast", 1.5 + i * 0.7, 3, None, 1000.0 + i * 0.1)
    recorder.record("POST", "/login", 12.0, 0, "ConnectionError('refused')", 1001.0)
    return recorder


def valid_messages(node: str) -> list[m.Message]:
    """One valid example of every message a worker sends."""
    horde_delta = _recorded().take_horde_delta(
        run_id="0123456789ab",
        epoch=0,
        seq=1,
        now=1003.0,
        user_classes_count={"Reader": 2},
        user_count=2,
    )
    locust_report = _recorded().take_locust_report(
        now=1003.0, user_classes_count={"Reader": 2}, user_count=2
    )
    return [
        m.ClientReady(node),
        m.WorkerHeartbeat(node, "running", 12.5, 50_000_000, user_count=2, loop_lag=0.01, beat=7),
        m.WorkerHeartbeat(node, "ready", 0.0, 1),
        m.Spawning(node),
        m.WorkerSpawningComplete(node, {"Reader": 2}, 2),
        m.LocustStats(node, locust_report),
        m.HordeStats(node, horde_delta),
        m.ClientStopped(node),
        m.WorkerQuit(node),
        m.ExceptionReport(node, "boom", "Traceback (most recent call last):\n  x\n"),
        m.LocustfileRequest(node),
        m.Logs(node, ("a log line", "another")),
    ]


def _random_value(rng: random.Random, depth: int = 0) -> Any:  # noqa: PLR0911 - a menu
    kind = rng.randrange(16 if depth < 3 else 11)
    if kind == 0:
        return rng.choice([0, -1, 1, 2**31, 2**63 - 1, -(2**63), 2**64 - 1, 10**18])
    if kind == 1:
        return rng.choice([float("nan"), float("inf"), -float("inf"), -0.0, 1e308, -1.5])
    if kind == 2:
        return rng.choice(["", "x" * rng.randrange(1, 3000), "é\u2603\U0001f600", "\x00", "a_b"])
    if kind == 3:
        return rng.randbytes(rng.randrange(0, 40))
    if kind == 4:
        return rng.choice([None, True, False])
    if kind == 5:
        return rng.choice(TYPES)
    if kind == 6:
        return msgpack.ExtType(rng.randrange(0, 128), rng.randbytes(rng.randrange(0, 9)))
    if kind == 7:
        return msgpack.Timestamp(rng.randrange(0, 2**33), rng.randrange(0, 10**9))
    if kind == 8:
        stamp = rng.choice(["20260101T00:00:00.000000", "garbage", "", 5])
        return {"__datetime__": True, "as_str": stamp}
    if kind == 9:
        return rng.random() * rng.choice([1, 1e6, -1])
    if kind == 10:
        return rng.randrange(-1000, 1000)
    if kind in (11, 12):
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(0, 5))]
    return {_random_key(rng): _random_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))}


def _random_key(rng: random.Random) -> Any:
    return rng.choice(["state", "user_count", "", "x" * 300, 0, -1, 2**64 - 1, 1.5, None, b"k"])


def _mutate_structure(rng: random.Random, value: Any, depth: int = 0) -> Any:
    """Change one place deep inside ``value``: a field's value, a missing or extra key."""
    if isinstance(value, dict) and value and depth < 6:
        data = dict(value)
        key = rng.choice(list(data))
        action = rng.randrange(4)
        if action == 0:
            del data[key]
        elif action == 1:
            data[_random_key(rng)] = _random_value(rng)
        elif action == 2:
            data[key] = _random_value(rng)
        else:
            data[key] = _mutate_structure(rng, data[key], depth + 1)
        return data
    if isinstance(value, list | tuple) and value and depth < 6:
        items = list(value)
        index = rng.randrange(len(items))
        action = rng.randrange(4)
        if action == 0:
            del items[index]
        elif action == 1:
            items.insert(index, _random_value(rng))
        elif action == 2:
            items[index] = _random_value(rng)
        else:
            items[index] = _mutate_structure(rng, items[index], depth + 1)
        return items
    return _random_value(rng)


def _pack(value: Any) -> bytes:
    packed = msgpack.packb(value, default=str, strict_types=False)
    assert isinstance(packed, bytes)
    return packed


@dataclass
class Corpus:
    """Valid messages, as envelopes and as encoded frames, with the node id they name."""

    envelopes: list[tuple[str, Any, str]]
    frames: list[bytes]

    @classmethod
    def for_node(cls, node: str) -> Corpus:
        """The valid messages of :func:`valid_messages` as sent by ``node``."""
        messages = valid_messages(node)
        envelopes = [(msg.type, msg.to_data(), node) for msg in messages]
        return cls(envelopes, [encode(msg) for msg in messages])


def mutate(rng: random.Random, corpus: Corpus) -> list[bytes]:  # noqa: PLR0911, PLR0912 - a menu
    """One hostile message (a list of frames: usually one) derived from ``corpus``."""
    kind = rng.randrange(100)
    frame = rng.choice(corpus.frames)
    type_, data, node = rng.choice(corpus.envelopes)
    if kind < 14:  # bit flips
        raw = bytearray(frame)
        for _ in range(rng.randrange(1, 9)):
            raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
        return [bytes(raw)]
    if kind < 22:  # truncation
        return [frame[: rng.randrange(len(frame))]]
    if kind < 28:  # splices: insert, delete, duplicate, append garbage
        cut = rng.randrange(len(frame) + 1)
        choice = rng.randrange(4)
        if choice == 0:
            return [frame[:cut] + rng.randbytes(rng.randrange(1, 16)) + frame[cut:]]
        if choice == 1:
            return [frame[:cut] + frame[cut + rng.randrange(1, 16) :]]
        if choice == 2:
            return [frame[:cut] + frame[cut // 2 :]]
        return [frame + rng.randbytes(rng.randrange(1, 8))]
    if kind < 38:  # another message's type on this payload
        return [_pack([rng.choice(TYPES), data, node])]
    if kind < 50:  # a field of the payload given a wrong type or shape, removed or added
        return [_pack([type_, _mutate_structure(rng, data), node])]
    if kind < 56:  # a payload of a random type
        return [_pack([type_, _random_value(rng), node])]
    if kind < 64:  # a wrong envelope
        return [_wrong_envelope(rng, type_, data, node)]
    if kind < 70:  # an unknown message type
        unknown = rng.choice(["bogus", "", "x" * 5000, "HEARTBEAT", "heartbeat ", "horde.x"])
        return [_pack([unknown, data, node])]
    if kind < 78:  # random bytes
        return [rng.randbytes(rng.randrange(0, 300))]
    if kind < 80:
        return [b""]
    if kind < 85:  # several frames in one message
        parts = [rng.choice(corpus.frames) for _ in range(rng.randrange(2, 5))]
        return rng.choice([parts, [b"", *parts], [*parts[:1], b""]])
    if kind < 88:  # deep nesting
        depth = rng.choice([100, 1000, 5000, 100_000])
        return [rng.choice([b"\x91", b"\x81\xa1k"]) * depth + b"\xc0"]
    if kind < 91:  # length headers that lie
        head = rng.choice(
            [b"\xdd", b"\xdf", b"\xdb", b"\xc6", b"\x93\xdb", b"\x93\xa9heartbeat\xdf"]
        )
        return [head + rng.choice([b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff"]) + rng.randbytes(4)]
    if kind < 92 and rng.random() < 0.05:  # large but within the limit (rare: they are slow)
        return [_pack([type_, "y" * rng.randrange(1 << 20, 4 << 20), node])]
    return [frame]  # valid as it is (a stranger's valid frame is still not accepted)


def _wrong_envelope(rng: random.Random, type_: str, data: Any, node: str) -> bytes:
    shapes: list[Callable[[], Any]] = [
        lambda: [],
        lambda: [type_],
        lambda: [type_, data],
        lambda: [type_, data, node, "extra"],
        lambda: {"type": type_, "data": data, "node_id": node},
        lambda: [type_.encode(), data, node],
        lambda: [type_, data, node.encode()],
        lambda: [rng.randrange(-5, 5), data, node],
        lambda: [type_, data, None],
        lambda: [type_, data, [node]],
        lambda: [[type_], data, node],
        lambda: type_,
        lambda: rng.randrange(-(2**63), 2**63),
        lambda: None,
    ]
    return _pack(rng.choice(shapes)())


# --- prediction: what the master must count for each message -------------------------------


def predict(identity: bytes, frames: list[bytes]) -> str:
    """The master's verdict on one message: a rejection reason, or ``decoded:<type>``."""
    if len(frames) != 1:
        return "frames"
    try:
        identity.decode()
    except UnicodeDecodeError:
        return "identity"
    try:
        message = decode_upstream(frames[0], max_size=DEFAULT_MAX_FRAME)
    except ProtocolError as exc:
        return exc.reason
    if isinstance(message, m.UnknownMessage):
        return "unknown_type"
    return f"decoded:{message.type}"


@dataclass
class Plan:
    """The messages each identity sends, in order, and the verdicts they should get."""

    sends: dict[bytes, list[list[bytes]]] = field(default_factory=dict)
    verdicts: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        """Messages in the plan."""
        return sum(len(v) for v in self.sends.values())


def stranger_plan(rng: random.Random, real_node: str) -> Plan:
    """100,000 hostile messages from identities the master never registered.

    Messages that decode to ``client_ready`` (a registration any peer may make) or
    ``locustfile`` (the end marker) are drawn again.
    """
    plan = Plan()
    corpora = {ident: Corpus.for_node(ident.decode()) for ident in UTF8_IDENTITIES}
    corpora[SPOOF_IDENTITY] = Corpus.for_node(real_node)  # names a real worker
    corpora[BAD_IDENTITY] = Corpus.for_node("bad")
    identities = list(corpora)
    for ident in identities:
        plan.sends[ident] = []
    while plan.total < STRANGER_FRAMES - OVERSIZED_FRAMES:
        ident = rng.choice(identities)
        frames = mutate(rng, corpora[ident])
        verdict = predict(ident, frames)
        if verdict in ("decoded:client_ready", "decoded:locustfile"):
            continue
        plan.sends[ident].append(frames)
        plan.verdicts[verdict] += 1
    for _ in range(OVERSIZED_FRAMES):  # over the codec's limit, under the socket's
        size = DEFAULT_MAX_FRAME + rng.randrange(1, DEFAULT_MAX_FRAME // 2)
        frames = [_pack(["heartbeat", "z" * size, real_node])]
        plan.sends[UTF8_IDENTITIES[0]].append(frames)
        plan.verdicts[predict(UTF8_IDENTITIES[0], frames)] += 1
    return plan


def known_plan(rng: random.Random, real_node: str) -> Plan:
    """Hostile messages from an identity that registered first, naming itself or others."""
    plan = Plan(sends={KNOWN_IDENTITY: []})
    own = Corpus.for_node(KNOWN_IDENTITY.decode())
    spoof = Corpus.for_node(real_node)
    while plan.total < KNOWN_FRAMES:
        frames = mutate(rng, rng.choice([own, own, spoof]))
        verdict = predict(KNOWN_IDENTITY, frames)
        if verdict == "decoded:locustfile":
            continue
        plan.sends[KNOWN_IDENTITY].append(frames)
        plan.verdicts[verdict] += 1
    return plan


# --- sending -------------------------------------------------------------------------------


class Fuzzers:
    """One DEALER per identity, with deep queues; collects what the master answers.

    With ``keys``, every DEALER is a CURVE client holding the allowed pair ``FUZZER_KEY``.
    """

    def __init__(self, port: int, identities: list[bytes], keys: Keys | None = None) -> None:
        self.context = zmq.Context()
        self.sockets: dict[bytes, zmq.Socket] = {}
        self.replies: dict[bytes, list[bytes]] = {ident: [] for ident in identities}
        for ident in identities:
            sock = self.context.socket(zmq.DEALER)
            sock.setsockopt(zmq.IDENTITY, ident)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SNDHWM, 0)  # no limit: the master's RCVHWM paces us
            sock.setsockopt(zmq.RCVHWM, 0)
            if keys is not None:
                keys.curve_client(sock, FUZZER_KEY)
            sock.connect(f"tcp://127.0.0.1:{port}")
            self.sockets[ident] = sock

    def send_plan(self, plan: Plan, deadline: float) -> None:
        """Send every message of ``plan``, interleaving identities, until done or deadline."""
        queues = {ident: iter(msgs) for ident, msgs in plan.sends.items()}
        while queues:
            for ident in list(queues):
                for _ in range(200):
                    frames = next(queues[ident], None)
                    if frames is None:
                        del queues[ident]
                        break
                    self._send(ident, frames, deadline)
            self.drain()

    def _send(self, ident: bytes, frames: list[bytes], deadline: float) -> None:
        sock = self.sockets[ident]
        while True:
            try:
                sock.send_multipart(frames, flags=zmq.NOBLOCK, copy=len(frames[0]) < 65536)
                return
            except zmq.Again:
                self.drain()
                if time.monotonic() > deadline:
                    raise AssertionError("the master stopped reading our frames") from None
                sock.poll(100, zmq.POLLOUT)

    def drain(self) -> None:
        """Read whatever the master sent back, without waiting."""
        for ident, sock in self.sockets.items():
            while True:
                try:
                    self.replies[ident].append(sock.recv(zmq.NOBLOCK))
                except zmq.Again:
                    break

    def reply_types(self, ident: bytes) -> Counter[str]:
        """The types of the master's replies to ``ident`` so far."""
        out: Counter[str] = Counter()
        for raw in self.replies[ident]:
            try:
                out[decode_downstream(raw).type] += 1
            except ProtocolError:
                out["undecodable"] += 1
        return out

    def close(self) -> None:
        """Close every socket and the context."""
        for sock in self.sockets.values():
            sock.close(linger=0)
        self.context.term()


def _codec_counts(c: Cluster) -> dict[str, int]:
    counts = rejected(c.metrics())
    return {reason: counts.get(reason, 0) for reason in CODEC_REASONS}


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def _handler_failures(output: str, limit: int = 5) -> str:
    """The exception lines of the master's 'message handler failed' log entries."""
    found = re.findall(r"^\s*(\w+(?:Error|Exception): .*)$", output, flags=re.MULTILINE)
    where = re.findall(r"^\d\d:\d\d:\d\d.*message handler failed.*$", output, flags=re.MULTILINE)
    return "\n".join([*where[:limit], *sorted(set(found))[:limit]])


def _master_health(c: Cluster, real: str) -> Callable[[], dict[str, Any]]:
    def probe() -> dict[str, Any]:
        report = c.report(timeout=10)
        rows = {row["id"]: row for row in report["workers"]}
        return {"state": report["state"], "real": rows.get(real), "rows": rows}

    return probe


@pytest.fixture
def curve() -> bool:
    """The worker channel is plain unless a test is parametrised with ``SECURITY``."""
    return False


@pytest.fixture
def running_cluster(curve: bool, tmp_path: Path) -> Iterator[tuple[Cluster, str]]:
    """A master, the demo target, and one real worker running 2 users (with CURVE keys
    when ``curve`` is on)."""
    with cluster(keys=keys_for(curve, tmp_path)) as c:
        c.start_master()
        worker = c.worker()
        real = c.node_id(worker)
        c.wait_workers([real])
        status, _ = post(f"{c.web}/swarm", {"user_count": 2, "spawn_rate": 100})
        assert status == 200
        wait_for(
            lambda: c.rows()[real]["user_count"] == 2 and c.total_requests() > 10,
            30,
            "the real worker running 2 users",
        )
        yield c, real
        assert worker.poll() is None, "the real worker died"


@SECURITY
@pytest.mark.no_cover  # what it tests runs in the master's process; tracing the fuzzer costs 6 s
def test_seeded_fuzzer_over_100k_frames_leaves_the_master_serving(
    running_cluster: tuple[Cluster, str], curve: bool
) -> None:
    """A live master (plain, or CURVE with the fuzzer holding an allowed key) survives
    112,000 mutated frames, counts each rejection exactly, keeps its real worker running,
    and then runs a test with a newly joined worker."""
    c, real = running_cluster
    rng = random.Random(SEED)
    started = time.monotonic()
    strangers = stranger_plan(rng, real)
    known = known_plan(rng, real)
    generated = time.monotonic() - started
    before_codec = _codec_counts(c)
    before_all = {**rejected(c.metrics()), **events(c.metrics())}
    fuzz = Fuzzers(c.zmq_port, [*strangers.sends, KNOWN_IDENTITY], c.keys)
    try:
        with Sampler(_master_health(c, real), interval=0.1) as health:
            # Phase 1: strangers. Each UTF-8 identity ends with a locustfile request; its
            # reply proves the master has handled everything that identity sent before.
            flood_at = time.monotonic()
            fuzz.send_plan(strangers, deadline=flood_at + 45)
            markers = [i for i in strangers.sends if i != BAD_IDENTITY]
            for ident in markers:
                fuzz.sockets[ident].send(encode(m.LocustfileRequest(ident.decode())))
            expected = {r: before_codec[r] + strangers.verdicts.get(r, 0) for r in CODEC_REASONS}

            def markers_answered() -> bool:
                fuzz.drain()
                return all(fuzz.reply_types(i)["locustfile"] for i in markers)

            wait_for(markers_answered, 45, "the master to answer every stranger's marker", 0.2)
            wait_for(
                lambda: sum(_codec_counts(c).values()) >= sum(expected.values()),
                30,
                "the master to count every undecodable stranger frame",
                0.2,
            )
            phase1 = time.monotonic() - flood_at
            phase1_counts = _codec_counts(c)
            phase1_end = time.monotonic()
            # Phase 2: an identity that registered, sending mutated frames as a worker.
            fuzz.sockets[KNOWN_IDENTITY].send(encode(m.ClientReady(KNOWN_IDENTITY.decode())))
            wait_for(lambda: KNOWN_IDENTITY.decode() in c.rows(), 10, "the fuzzer registered")
            known_at = time.monotonic()
            fuzz.send_plan(known, deadline=known_at + 30)
            fuzz.sockets[KNOWN_IDENTITY].send(encode(m.LocustfileRequest("fuzz-known")))

            def known_marker_answered() -> int:
                fuzz.drain()
                return fuzz.reply_types(KNOWN_IDENTITY)["locustfile"]

            wait_for(known_marker_answered, 30, "the master to handle every fuzzer frame", 0.2)
            phase2 = time.monotonic() - known_at
    finally:
        fuzz.close()
    after_all = {**rejected(c.metrics()), **events(c.metrics())}
    total = strangers.total + known.total
    print(
        f"\nfuzzer: seed {SEED}, generated {total} messages in {generated:.1f} s;"
        f" strangers {strangers.total} handled in {phase1:.2f} s"
        f" ({strangers.total / phase1:,.0f} frames/s); registered fuzzer {known.total}"
        f" in {phase2:.2f} s ({known.total / phase2:,.0f} frames/s)"
    )
    print(f"fuzzer: predicted stranger verdicts {dict(sorted(strangers.verdicts.items()))}")
    print(
        f"fuzzer ({'curve' if curve else 'plain'}): stranger rejections counted"
        f" {_delta(phase1_counts, before_codec)}; master counter growth"
        f" {_delta(after_all, before_all)}"
    )
    latencies = [s.took for s in health.values()]
    print(
        f"fuzzer: /stats/requests during the flood: {len(latencies)} answers, "
        f"max {max(latencies):.2f} s, {len(health.errors())} failures"
    )

    # Checked at the end, so that one finding does not hide the others.
    problems = []
    if phase1_counts != expected:
        problems.append(f"rejections by reason: master {phase1_counts}, predicted {expected}")
    if health.errors():
        problems.append(f"/stats/requests failed during the flood: {health.errors()[:3]}")
    if max(latencies) >= 2.0:
        problems.append(f"/stats/requests stalled for {max(latencies):.2f} s during the flood")
    real_rows = [s.value["real"] for s in health.values()]
    if not all(r is not None and r["state"] != "missing" for r in real_rows):
        problems.append("the real worker was missing or removed during the flood")
    during_phase1 = [s.value["real"] for s in health.values() if s.at < phase1_end]
    if {r and r["user_count"] for r in during_phase1} != {2}:
        problems.append("strangers changed the real worker's users")
    key_drops = {r: after_all.get(r, 0) - before_all.get(r, 0) for r in KEY_REASONS}
    if any(key_drops.values()):
        problems.append(f"frames under the fuzzer's allowed key dropped as a key's: {key_drops}")
    if after_all.get("handler_error", 0) != before_all.get("handler_error", 0):
        problems.append(
            "a decoded message made a handler raise (a validation gap):\n"
            + _handler_failures(c.procs.output(c.master) if c.master else "")
        )
    assert total >= 100_000

    # The registered fuzzer goes silent and is declared missing (or quit); then a new
    # worker joins and a fresh test runs on both real workers.
    wait_for(
        lambda: c.rows().get("fuzz-known", {"state": "missing"})["state"] == "missing",
        10,
        "the silent fuzzer to be missing",
    )
    post(f"{c.web}/stop")
    wait_for(lambda: c.report()["state"] == "stopped", 20, "the test stopped")
    newcomer = c.worker()
    new_id = c.node_id(newcomer)
    c.wait_workers([real, new_id])
    status, _ = post(f"{c.web}/swarm", {"user_count": 4, "spawn_rate": 100})
    assert status == 200
    rows = wait_for(
        lambda: (r := c.rows())[new_id]["requests"] > 10 and r[real]["requests"] > 10 and r,
        30,
        "requests from both real workers in the new test",
    )
    assert rows[new_id]["user_count"] == 2 and rows[real]["user_count"] == 2
    assert c.master is not None and c.master.poll() is None
    assert not problems, "\n".join(problems)


def test_spoofed_node_id_and_stolen_identity_leave_a_real_worker_alone(
    running_cluster: tuple[Cluster, str],
) -> None:
    """Frames naming a real worker in ``node_id``, or presenting its socket identity, do
    not stop, remove or re-count it: the live connection's identity decides."""
    c, real = running_cluster
    attacks = [
        m.WorkerQuit(real),
        m.ClientStopped(real),
        m.WorkerSpawningComplete(real, {"Reader": 0}, 0),
        m.WorkerHeartbeat(real, "stopped", 0.0, 0, user_count=0),
    ]
    before = events(c.metrics()).get("unknown_worker", 0)
    context = zmq.Context()
    spoofer = context.socket(zmq.DEALER)
    spoofer.setsockopt(zmq.IDENTITY, b"spoofer")
    thief = context.socket(zmq.DEALER)
    thief.setsockopt(zmq.IDENTITY, real.encode())  # the real worker's socket identity
    try:
        for sock in (spoofer, thief):
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(f"tcp://127.0.0.1:{c.zmq_port}")
        with Sampler(_master_health(c, real), interval=0.05) as health:
            for message in attacks:
                spoofer.send(encode(message))
                thief.send(encode(message))
            # The spoofer's frames are handled as a stranger's, and answered as one.
            wait_for(
                lambda: events(c.metrics()).get("unknown_worker", 0) >= before + len(attacks),
                10,
                "the spoofed frames counted as a stranger's",
            )
            # Watch the real worker while it reports 30 more requests.
            mark = c.total_requests()
            wait_for(lambda: c.total_requests() > mark + 30, 20, "more requests")
    finally:
        spoofer.close(linger=0)
        thief.close(linger=0)
        context.term()
    seen = [s.value["real"] for s in health.values()]
    assert seen and not health.errors()
    assert all(r is not None for r in seen), "the real worker was removed"
    assert {r["state"] for r in seen} <= {"running"}, {r["state"] for r in seen}
    assert {r["user_count"] for r in seen} == {2}
    assert "spoofer" not in c.rows()


@SECURITY
def test_oversized_frames_are_counted_or_cut_off_without_touching_others(
    running_cluster: tuple[Cluster, str],
) -> None:
    """A frame over 16 MiB is counted and dropped; one over 32 MiB disconnects only its
    sender (which may reconnect, with CURVE through a new handshake); the real worker and
    the HTTP API carry on."""
    c, real = running_cluster
    before = rejected(c.metrics()).get("size", 0)
    before_strangers = events(c.metrics()).get("unknown_worker", 0)
    context = zmq.Context()
    counted = context.socket(zmq.DEALER)
    counted.setsockopt(zmq.IDENTITY, b"big-counted")
    cut = context.socket(zmq.DEALER)
    cut.setsockopt(zmq.IDENTITY, b"big-cut")
    monitor = cut.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
    try:
        for sock in (counted, cut):
            sock.setsockopt(zmq.LINGER, 0)
            if c.keys is not None:
                c.keys.curve_client(sock, FUZZER_KEY)
            sock.connect(f"tcp://127.0.0.1:{c.zmq_port}")
        assert recv_monitor_message(monitor)["event"] == zmq.EVENT_CONNECTED
        with Sampler(_master_health(c, real), interval=0.1) as health:
            counted.send(b"\x00" * (DEFAULT_MAX_FRAME + 1))
            wait_for(
                lambda: rejected(c.metrics()).get("size", 0) == before + 1,
                20,
                "the 16 MiB+1 frame counted as oversized",
            )
            cut_at = time.monotonic()
            cut.send(b"\x00" * (2 * DEFAULT_MAX_FRAME + (1 << 20)))
            assert monitor.poll(10_000), "the sender of 33 MiB was not disconnected"
            event = recv_monitor_message(monitor)
            assert event["event"] == zmq.EVENT_DISCONNECTED
            print(
                f"\noversized: 33 MiB sender disconnected after {time.monotonic() - cut_at:.2f} s"
            )
            # The same peer reconnects and is heard again: only its connection was cut.
            cut.send(encode(m.WorkerHeartbeat("big-cut", "ready", 0.0, 0)))
            assert cut.poll(10_000), "no answer after reconnecting"
            assert decode_downstream(cut.recv()).type == "reconnect"
            mark = c.total_requests()
            wait_for(lambda: c.total_requests() > mark + 20, 20, "more requests")
    finally:
        monitor.close(linger=0)
        counted.close(linger=0)
        cut.close(linger=0)
        context.term()
    assert rejected(c.metrics()).get("size", 0) == before + 1
    assert events(c.metrics()).get("unknown_worker", 0) >= before_strangers + 1
    seen = [s.value["real"] for s in health.values()]
    assert seen and not health.errors()
    assert {r["state"] for r in seen} == {"running"} and {r["user_count"] for r in seen} == {2}
    assert c.master is not None and c.master.poll() is None
