"""Simulated workers for master capacity runs: many DEALERs in one process, one thread.

Each simulated worker is a DEALER with its own identity and TCP connection that says on
the wire what a real worker says: ``client_ready``, heartbeats every ``--heartbeat``
seconds, ``spawning``/``spawning_complete`` for every ``spawn``, and a stats delta of
``--entries`` entries every ``--stats`` seconds once a run is going, in horde's format
(``horde.stats``, numbered, re-sent names after each new run or epoch) or Locust's
(``stats``). Sends are spread evenly: worker ``i`` of ``N`` sends at ``i/N`` of each
interval. Payloads are encoded once and only the varying parts (beat, seq, sent_at, the
per-second block) are msgpack-encoded and concatenated per message.

The simulator keeps up or says it did not: every scheduled send records its lateness
(how long after its due time it left), and every send is ``NOBLOCK``; a would-block is
counted as a drop. Runs whose p99 lateness is above 100 ms, or with any drop, are invalid.

Measures (only between SIGUSR1 and SIGTERM, so the caller picks the steady window):

- heartbeat reply latency: horde workers match the master's echo of ``beat``; Locust
  workers match replies first-in first-out (Locust's master answers each heartbeat of a
  known worker with an empty ``heartbeat``, in order on the connection);
- horde ack lag: arrival of a ``horde.stats_ack`` minus ``sent_at`` of each delta it
  acknowledges (wall clock, as the master sees ``sent_at``);
- the send time of every delta (measuring or not), so the caller can compare with the
  master's count of merged deltas: entry 0 of every delta is the marker
  ``GET /_capacity_marker`` with one request, so the marker's ``num_requests`` in
  ``/stats/requests`` is the number of deltas merged.

SIGUSR2 stops the deltas (heartbeats go on) and writes ``--out`` plus ``.sent``: the
number of deltas sent and the requests they carried, for the caller to check the
master's totals against once they are all merged.

With ``--curve-keys FILE`` (JSON: ``{"server": master public key, "pairs": [[public,
secret], ...]}``, one Z85 pair per simulated worker) each DEALER is a CURVE client with
its own key pair, as a horde worker given ``--secret-key`` and ``--master-key`` is. The
caller puts the public keys on the master's allow-list. Either way the figures carry the
wall-clock times of the first and the last ``connect`` and of the moment every worker
had its first ``ack`` (the handshakes admitted: CURVE and ZAP, then registration).

A worker whose ``client_ready`` goes unanswered sends it again on a fresh socket (a new
connection, so a new handshake): after 5 s (``--retry fixed``) or on a horde worker's own
schedule (``--retry horde``: 0.25 s, 0.5 s, 1 s, 2 s, then every 3 s).

Run as a script (``python bench/simulate_workers.py --help``) or import :func:`run`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import select
import signal
import socket
import time
import uuid
from array import array
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import msgpack
import zmq

from horde.protocol.histogram import bucket_index, bucket_low
from horde.protocol.link import apply_link_options
from horde.protocol.packed import PACKED_KEY, pack_entries
from horde.protocol.stats import EntryDelta
from horde.worker.config import DEFAULT_REGISTER_RETRY
from horde.worker.transport import register_delay

HORDE_VERSION = "2.47.0+horde.1"
LOCUST_VERSION = "2.47.0"
MARKER_NAME = "/_capacity_marker"
USER_CLASS = "Reader"
BUCKETS_PER_ENTRY = 10
"""Distinct histogram buckets per entry and delta: ~10-20 requests an entry per 3 s."""
SECONDS_PER_DELTA = 3
RETRY_REGISTER = 5.0
"""Seconds without an ack before client_ready is sent again, on a fresh socket
(``--retry fixed``; ``--retry horde`` waits as a horde worker does: 0.25 s, doubling up to
its ``register_retry``)."""
RETRY_SCAN = {"fixed": 3.0, "horde": 0.05}
"""Seconds between looks for workers to register again, by ``--retry``."""
_packb = msgpack.packb


def _str(value: str) -> bytes:
    return _packb(value)


@dataclass(slots=True)
class Sim:
    """One simulated worker's state."""

    index: int
    node_id: str
    sock: zmq.Socket
    head_hb: bytes = b""
    tail: bytes = b""
    registered: bool = False
    horde: bool = False
    ready_sent: float = 0.0
    attempts: int = 0
    """client_ready sent since the worker last started registering."""
    state: str = "ready"
    users: int = 0
    run_id: str = ""
    epoch: int = 0
    seq: int = 0
    names_due: bool = True
    beat: int = 0
    beat_sent: dict[int, float] = field(default_factory=dict)
    fifo: deque[float] = field(default_factory=deque)
    unacked: dict[int, float] = field(default_factory=dict)
    last_spawn_ts: float = 0.0
    acked_at: float = 0.0
    """Wall-clock time of this worker's first ``ack`` (0: none yet)."""


@dataclass
class Figures:
    """What the simulator measured (samples only while measuring)."""

    measuring: bool = False
    hb_latency_ms: array = field(default_factory=lambda: array("d"))
    ack_lag_ms: array = field(default_factory=lambda: array("d"))
    lateness_ms: array = field(default_factory=lambda: array("d"))
    delta_sent_at: array = field(default_factory=lambda: array("d"))
    would_block: int = 0
    heartbeats: int = 0
    deltas: int = 0
    received: int = 0
    reconnects: int = 0
    rebuilds: int = 0
    spawns: int = 0
    unanswered_beats: int = 0
    connect_first: float = 0.0
    """Wall-clock time of the first DEALER's ``connect``."""
    connect_last: float = 0.0
    """Wall-clock time of the last DEALER's ``connect``."""
    first_acks: int = 0
    """Workers that have had an ``ack``."""
    all_acked: float = 0.0
    """Wall-clock time when the last worker had its first ``ack`` (0: not yet)."""
    admit_cpu: float = 0.0
    """CPU seconds of this process (all threads) from the first connect to ``all_acked``."""


class Payloads:
    """Pre-encoded message parts shared by every simulated worker of one process."""

    def __init__(
        self, fmt: str, entries: int, buckets: int = BUCKETS_PER_ENTRY, seed: int = 7
    ) -> None:
        self.fmt = fmt
        rng = random.Random(seed)
        self.names = [("GET", MARKER_NAME)] + [("GET", f"/api/item/{k}") for k in range(1, entries)]
        # per entry: (nreq, buckets as [(bucket idx or ms key, count)]) - fixed per delta
        self.shapes: list[tuple[int, list[tuple[int, int]]]] = [(1, [(1000, 1)])]
        for _ in range(1, entries):
            idxs = sorted(rng.sample(range(1200, 2400), buckets))
            counts = [rng.randint(1, 5) for _ in idxs]
            self.shapes.append((sum(counts), list(zip(idxs, counts, strict=True))))
        self._block_sec = -1
        self._block = b""

    def block(self, sec: int) -> bytes:
        """The encoded entries (horde) or stats + stats_total (Locust) for deltas at ``sec``."""
        if sec != self._block_sec:
            self._block_sec = sec
            self._block = self._horde_block(sec) if self.fmt == "horde" else self._locust_block(sec)
        return self._block

    @staticmethod
    def _split(n: int) -> list[int]:
        base = n // SECONDS_PER_DELTA
        parts = [base] * SECONDS_PER_DELTA
        parts[-1] += n - base * SECONDS_PER_DELTA
        return parts

    def _horde_block(self, sec: int) -> bytes:
        entries = []
        for eid, (nreq, pairs) in enumerate(self.shapes):
            if eid == 0:
                flat = [bucket_index(1000), 1]
                total = low = high = 1000
            else:
                flat = [v for pair in pairs for v in pair]
                lows = [bucket_low(i) for i, _ in pairs]
                total = sum(bucket_low(i) * c for i, c in pairs)
                low, high = min(lows), max(lows)
            per_sec: list[int] = []
            for k, n in enumerate(self._split(nreq)):
                per_sec += [sec - SECONDS_PER_DELTA + k, n, 0]
            entries.append(
                EntryDelta(
                    eid, nreq, 0, 0, total, low, high, nreq * 100, tuple(flat), tuple(per_sec)
                )
            )
        # as a horde worker sends them: packed (the delta's "entries" list stays empty)
        return _packb([]) + _str(PACKED_KEY) + _packb(pack_entries(entries))

    def _locust_block(self, sec: int) -> bytes:
        stats = []
        t_times: dict[int, int] = {}
        t_req: dict[int, int] = {}
        t_total = 0.0
        t_n = 0
        for (method, name), (nreq, pairs) in zip(self.names, self.shapes, strict=True):
            times = {max(1, i // 20): c for i, c in pairs} if name != MARKER_NAME else {1: 1}
            reqs = {sec - SECONDS_PER_DELTA + k: n for k, n in enumerate(self._split(nreq))}
            total = float(sum(k * c for k, c in times.items()))
            stats.append(
                {
                    "name": name,
                    "method": method,
                    "last_request_timestamp": sec - 0.5,
                    "start_time": sec - SECONDS_PER_DELTA + 0.1,
                    "num_requests": nreq,
                    "num_none_requests": 0,
                    "num_failures": 0,
                    "total_response_time": total,
                    "max_response_time": float(max(times)),
                    "min_response_time": float(min(times)),
                    "total_content_length": nreq * 100,
                    "response_times": times,
                    "num_reqs_per_sec": reqs,
                    "num_fail_per_sec": {},
                }
            )
            for k, c in times.items():
                t_times[k] = t_times.get(k, 0) + c
            for s, c in reqs.items():
                t_req[s] = t_req.get(s, 0) + c
            t_total += total
            t_n += nreq
        total_entry = dict(stats[-1])
        total_entry.update(
            name="Aggregated",
            method="",
            num_requests=t_n,
            total_response_time=t_total,
            max_response_time=float(max(t_times)),
            min_response_time=float(min(t_times)),
            total_content_length=t_n * 100,
            response_times=t_times,
            num_reqs_per_sec=t_req,
        )
        # map keys "stats", "stats_total" with their values, pre-encoded
        return _str("stats") + _packb(stats) + _str("stats_total") + _packb(total_entry)


class Simulator:
    """N simulated workers driven by one epoll loop; nothing starts until :meth:`run`."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.fmt = args.format
        self.n = args.workers
        self.payloads = Payloads(self.fmt, args.entries, args.buckets)
        self.fig = Figures()
        self.ctx = zmq.Context(io_threads=1)
        self.ctx.set(zmq.MAX_SOCKETS, 2 * self.n + 64)  # rebuilt sockets close late
        self.sims: list[Sim] = []
        self.by_fd: dict[int, Sim] = {}
        self.epoll = select.epoll()
        self.stop = False
        self.quiet = False
        """Set by SIGUSR2: no more deltas."""
        host = socket.gethostname()
        self.prefix = f"{host}-sim{args.tag}"
        self.curve = load_curve_keys(args.curve_keys, self.n) if args.curve_keys else None

    # --- setup ---------------------------------------------------------------------------

    def connect_all(self) -> None:
        """Create and connect the DEALERs in batches (the master's accept backlog is finite)."""
        self.fig.connect_first = time.time()
        self.fig.admit_cpu = -time.process_time()
        for i in range(self.n):
            node_id = f"{self.prefix}w{i}_{uuid.uuid4().hex}"
            sim = Sim(i, node_id, self._dealer(i, node_id), tail=_str(node_id))
            self.sims.append(sim)
            self._watch(sim)
            self._send(sim, self._envelope("client_ready", _packb(self._version()), sim))
            sim.ready_sent, sim.attempts = time.monotonic(), 1
            if i % 100 == 99:
                self._pump(0.02)
        self.fig.connect_last = time.time()

    def _dealer(self, index: int, node_id: str) -> zmq.Socket:
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, node_id.encode())
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 1000)
        sock.setsockopt(zmq.RECONNECT_IVL, 200)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        if self.fmt == "horde":  # as a horde worker's link
            apply_link_options(sock, zmq)
        else:  # as Locust's
            sock.setsockopt(zmq.TCP_KEEPALIVE, 1)
            sock.setsockopt(zmq.TCP_KEEPALIVE_IDLE, 30)
        if self.curve is not None:
            server, pairs = self.curve
            sock.curve_publickey, sock.curve_secretkey = pairs[index]
            sock.curve_serverkey = server
        sock.connect(self.args.master)
        return sock

    def _watch(self, sim: Sim) -> None:
        fd = sim.sock.getsockopt(zmq.FD)
        self.by_fd[fd] = sim
        self.epoll.register(fd, select.EPOLLIN)

    def _rebuild(self, sim: Sim) -> None:
        """A fresh DEALER, same identity (what a real worker does after an unanswered try)."""
        fd = sim.sock.getsockopt(zmq.FD)
        self.epoll.unregister(fd)
        self.by_fd.pop(fd, None)
        sim.sock.close(linger=0)
        sim.sock = self._dealer(sim.index, sim.node_id)
        self._watch(sim)
        self.fig.rebuilds += 1

    def _envelope(self, mtype: str, data: bytes, sim: Sim) -> bytes:
        return b"\x93" + _str(mtype) + data + sim.tail

    # --- sending -------------------------------------------------------------------------

    def _send(self, sim: Sim, payload: bytes) -> None:
        try:
            sim.sock.send(payload, zmq.NOBLOCK)
        except zmq.Again:
            self.fig.would_block += 1
            return
        if sim.sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            self._drain(sim)

    def _heartbeat(self, sim: Sim, now: float) -> None:
        state = (  # the keys both formats send; a horde worker adds three
            _str("state")
            + _str(sim.state)
            + _str("current_cpu_usage")
            + _packb(1.5)
            + _str("current_memory_usage")
            + _packb(52_000_000)
        )
        if self.fmt == "horde":
            sim.beat += 1
            data = b"\x86" + state + _str("user_count") + _packb(sim.users)
            data += _str("loop_lag") + _packb(0.0) + _str("beat") + _packb(sim.beat)
            if self.fig.measuring:
                sim.beat_sent[sim.beat] = now
        else:
            data = b"\x83" + state
            sim.fifo.append(now if self.fig.measuring else -1.0)
            if len(sim.fifo) > 64:
                sim.fifo.popleft()
                self.fig.unanswered_beats += 1
        self._send(sim, self._envelope("heartbeat", data, sim))
        self.fig.heartbeats += 1

    def _stats(self, sim: Sim, wall: float) -> None:
        block = self.payloads.block(int(wall))
        counts = b"\x81" + _str(USER_CLASS) + _packb(sim.users)
        if self.fmt == "horde":
            sim.seq += 1
            names = b"\x90"
            if sim.names_due:
                names = _packb([[k, m, n] for k, (m, n) in enumerate(self.payloads.names)])
                sim.names_due = False
            data = b"".join(
                (
                    b"\x8a",  # 9 keys + "packed", which the entries block carries
                    _str("run_id"),
                    _str(sim.run_id),
                    _str("epoch"),
                    _packb(sim.epoch),
                    _str("seq"),
                    _packb(sim.seq),
                    _str("sent_at"),
                    _packb(wall),
                    _str("names"),
                    names,
                    _str("entries"),
                    block,
                    _str("errors"),
                    b"\x90",
                    _str("user_classes_count"),
                    counts,
                    _str("user_count"),
                    _packb(sim.users),
                )
            )
            sim.unacked[sim.seq] = wall if self.fig.measuring else -1.0
            self._send(sim, self._envelope("horde.stats", data, sim))
        else:
            data = b"".join(
                (
                    b"\x85",
                    block,
                    _str("errors"),
                    b"\x80",
                    _str("user_classes_count"),
                    counts,
                    _str("user_count"),
                    _packb(sim.users),
                )
            )
            self._send(sim, self._envelope("stats", data, sim))
        self.fig.deltas += 1
        self.fig.delta_sent_at.append(wall)  # all of them: the caller counts merged ones

    # --- receiving -----------------------------------------------------------------------

    def _drain(self, sim: Sim) -> None:
        sock = sim.sock
        while sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            try:
                raw = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.fig.received += 1
            try:
                mtype, data, _node = msgpack.unpackb(raw, raw=False, strict_map_key=False)
            except Exception:  # a bad frame is skipped, never fatal
                continue
            self._on(sim, mtype, data)

    def _on(self, sim: Sim, mtype: str, data: Any) -> None:
        now = time.monotonic()
        if mtype == "heartbeat":
            self._on_heartbeat_reply(sim, data, now)
        elif mtype == "horde.stats_ack":
            self._on_ack(sim, data)
        elif mtype == "ack":
            if not sim.registered:
                sim.registered = True
                sim.horde = isinstance(data, dict) and data.get("horde") is not None
            if not sim.acked_at:
                self._first_ack(sim)
        elif mtype == "spawn":
            self._on_spawn(sim, data)
        elif mtype == "horde.epoch":
            if isinstance(data, dict) and data.get("run_id") == sim.run_id:
                sim.epoch = int(data.get("epoch", 0))
                sim.names_due = True
        elif mtype == "reconnect":
            self.fig.reconnects += 1
            sim.registered = False
            sim.names_due = True
            self._send(sim, self._envelope("client_ready", _packb(self._version()), sim))
            sim.ready_sent, sim.attempts = now, 1
        elif mtype == "stop":
            sim.state, sim.users = "ready", 0
            self._send(sim, self._envelope("client_stopped", b"\xc0", sim))
            self._send(sim, self._envelope("client_ready", _packb(self._version()), sim))

    def _first_ack(self, sim: Sim) -> None:
        sim.acked_at = time.time()
        self.fig.first_acks += 1
        if self.fig.first_acks == self.n:
            self.fig.all_acked = sim.acked_at
            self.fig.admit_cpu += time.process_time()

    def _version(self) -> str:
        return HORDE_VERSION if self.fmt == "horde" else LOCUST_VERSION

    def _on_heartbeat_reply(self, sim: Sim, data: Any, now: float) -> None:
        if self.fmt == "horde":
            beat = data.get("beat") if isinstance(data, dict) else None
            sent = sim.beat_sent.pop(beat, None) if beat is not None else None
        else:
            sent = sim.fifo.popleft() if sim.fifo else None
        if sent is not None and sent >= 0 and self.fig.measuring:
            self.fig.hb_latency_ms.append((now - sent) * 1000.0)

    def _on_ack(self, sim: Sim, data: Any) -> None:
        if not isinstance(data, dict) or data.get("run_id") != sim.run_id:
            return
        seq = data.get("seq", 0)
        wall = time.time()
        for s in [s for s in sim.unacked if s <= seq]:
            sent = sim.unacked.pop(s)
            if sent >= 0 and self.fig.measuring:
                self.fig.ack_lag_ms.append((wall - sent) * 1000.0)

    def _on_spawn(self, sim: Sim, data: Any) -> None:
        self.fig.spawns += 1
        self._send(sim, self._envelope("spawning", b"\xc0", sim))
        if not isinstance(data, dict):
            return
        run_id = data.get("run_id") or ""
        if run_id != sim.run_id and self.fmt == "horde":
            sim.run_id, sim.seq, sim.names_due = run_id, 0, True
            sim.epoch = int(data.get("epoch", 0))
            sim.unacked.clear()
        counts = data.get("user_classes_count") or {}
        sim.users = int(sum(counts.values()))
        sim.state = "running"
        body = _packb({"user_classes_count": counts, "user_count": sim.users})
        self._send(sim, self._envelope("spawning_complete", body, sim))

    def _pump(self, timeout: float) -> None:
        for fd, _ in self.epoll.poll(timeout):
            sim = self.by_fd.get(fd)
            if sim is not None:
                self._drain(sim)

    # --- the loop ------------------------------------------------------------------------

    def run(self) -> None:
        """Connect, then send on schedule until SIGTERM (or ``--duration``)."""
        self.connect_all()
        a = self.args
        start = time.monotonic()
        end = start + a.duration if a.duration else float("inf")
        n = self.n
        hb_step, st_step = a.heartbeat / n, a.stats / n
        hb_k = st_k = 0  # global send counters: worker k % n, due start + k * step
        scan = RETRY_SCAN[a.retry]
        retry_at = start + scan
        announced = False
        while not self.stop:
            now = time.monotonic()
            if now >= end:
                break
            # heartbeats
            due = start + hb_k * hb_step
            while due <= now:
                sim = self.sims[hb_k % n]
                if sim.registered:
                    self._heartbeat(sim, now)
                    if self.fig.measuring:
                        self.fig.lateness_ms.append((time.monotonic() - due) * 1000.0)
                hb_k += 1
                due = start + hb_k * hb_step
            next_due = due
            due = start + st_k * st_step
            if self.quiet:
                self._write_sent()
                due = float("inf")
            while due <= now:
                sim = self.sims[st_k % n]
                if sim.registered and sim.state == "running" and (sim.run_id or not sim.horde):
                    self._stats(sim, time.time())
                    if self.fig.measuring:
                        self.fig.lateness_ms.append((time.monotonic() - due) * 1000.0)
                st_k += 1
                due = start + st_k * st_step
            next_due = min(next_due, due)
            if now >= retry_at:
                retry_at = now + scan
                self._retry_registration(now)
                registered = sum(1 for s in self.sims if s.registered)
                if registered == n and not announced:
                    announced = True
                    print(f"registered {n}", flush=True)
            self._pump(max(0.0, next_due - time.monotonic()))
        self.close()

    def _write_sent(self) -> None:
        """Once quiet: write how many deltas were sent and the requests they carried."""
        path = self.args.out + ".sent"
        if not self.args.out or os.path.exists(path):
            return
        per_delta = sum(nreq for nreq, _ in self.payloads.shapes)
        sent = {"deltas": self.fig.deltas, "requests": self.fig.deltas * per_delta}
        with open(path + ".tmp", "w") as fh:
            json.dump(sent, fh)
        os.replace(path + ".tmp", path)

    def _retry_registration(self, now: float) -> None:
        fixed = self.args.retry == "fixed"
        for sim in self.sims:
            if sim.registered:
                continue
            wait = RETRY_REGISTER if fixed else register_delay(sim.attempts, DEFAULT_REGISTER_RETRY)
            if now - sim.ready_sent > wait:
                self._rebuild(sim)
                self._send(sim, self._envelope("client_ready", _packb(self._version()), sim))
                sim.ready_sent = now
                sim.attempts += 1

    def close(self) -> None:
        """Close every socket."""
        for sim in self.sims:
            sim.sock.close(linger=0)
        self.ctx.term()

    def summary(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict (raw samples rounded to 0.1 ms)."""
        f = self.fig

        def pct(values: array, p: float) -> float | None:
            if not values:
                return None
            ordered = sorted(values)
            return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

        unanswered = sum(len(s.beat_sent) for s in self.sims) + f.unanswered_beats
        return {
            "format": self.fmt,
            "workers": self.n,
            "registered": sum(1 for s in self.sims if s.registered),
            "running": sum(1 for s in self.sims if s.state == "running"),
            "heartbeats": f.heartbeats,
            "deltas": f.deltas,
            "received": f.received,
            "spawns": f.spawns,
            "reconnects": f.reconnects,
            "rebuilds": f.rebuilds,
            "would_block": f.would_block,
            "unanswered_beats": unanswered,
            "curve": self.curve is not None,
            "connect_first": f.connect_first,
            "connect_last": f.connect_last,
            "first_acks": f.first_acks,
            "all_acked": f.all_acked or None,
            "admit_cpu": f.admit_cpu if f.all_acked else None,
            "lateness_p99_ms": pct(f.lateness_ms, 0.99),
            "lateness_max_ms": max(f.lateness_ms) if f.lateness_ms else None,
            "hb_latency_ms": [round(v, 1) for v in f.hb_latency_ms],
            "ack_lag_ms": [round(v, 1) for v in f.ack_lag_ms],
            "delta_sent_at": [round(v, 3) for v in f.delta_sent_at],
        }


def load_curve_keys(path: str, n: int) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The master's public key and ``n`` (public, secret) Z85 pairs from ``path``'s JSON."""
    with open(path) as fh:
        doc = json.load(fh)
    pairs = [(public.encode(), secret.encode()) for public, secret in doc["pairs"]]
    if len(pairs) < n:
        raise SystemExit(f"{path} holds {len(pairs)} key pairs for {n} workers")
    return doc["server"].encode(), pairs


def raise_fd_limit() -> int:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the simulator's flags."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--master", default="tcp://127.0.0.1:5557")
    p.add_argument("--workers", type=int, default=100)
    p.add_argument("--format", choices=("horde", "locust"), default="horde")
    p.add_argument("--heartbeat", type=float, default=1.0, help="heartbeat interval (s)")
    p.add_argument("--stats", type=float, default=3.0, help="stats interval (s)")
    p.add_argument("--entries", type=int, default=100, help="entries per delta")
    p.add_argument(
        "--buckets", type=int, default=BUCKETS_PER_ENTRY, help="histogram buckets per entry"
    )
    p.add_argument("--duration", type=float, default=0.0, help="seconds (0: until SIGTERM)")
    p.add_argument("--measure-after", type=float, default=-1.0, help="start measuring after")
    p.add_argument("--tag", default="0", help="distinguishes node ids of several processes")
    p.add_argument("--out", default="", help="write the JSON figures here")
    p.add_argument(
        "--retry",
        choices=tuple(RETRY_SCAN),
        default="fixed",
        help="unanswered client_ready: a fresh socket after 5 s (fixed) or on a horde"
        " worker's schedule (0.25 s, doubling up to 3 s)",
    )
    p.add_argument(
        "--curve-keys",
        default="",
        help="JSON with the master's public key and one CURVE key pair per worker",
    )
    return p.parse_args(argv)


def run(argv: list[str] | None = None) -> dict[str, Any]:
    """Run a simulator with ``argv`` flags; return (and maybe write) its figures."""
    args = parse_args(argv)
    limit = raise_fd_limit()
    if limit < 3 * args.workers + 64:
        raise SystemExit(f"RLIMIT_NOFILE {limit} is too low for {args.workers} DEALERs")
    sim = Simulator(args)

    def start_measuring(*_: object) -> None:
        sim.fig.measuring = True

    def stop(*_: object) -> None:
        sim.stop = True

    def go_quiet(*_: object) -> None:
        sim.quiet = True

    signal.signal(signal.SIGUSR1, start_measuring)
    signal.signal(signal.SIGUSR2, go_quiet)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.measure_after >= 0:
        signal.setitimer(signal.ITIMER_REAL, max(args.measure_after, 0.001))
        signal.signal(signal.SIGALRM, start_measuring)
    sim.run()
    summary = sim.summary()
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(summary, fh)
        os.replace(tmp, args.out)
    return summary


def main() -> None:
    """Script entry point: print a one-line summary."""
    s = run()
    short = {k: v for k, v in s.items() if not isinstance(v, list)}
    short["hb_samples"] = len(s["hb_latency_ms"])
    print(json.dumps(short), flush=True)


if __name__ == "__main__":
    main()
