"""Helpers of the master capacity benchmark: processes, polling, percentiles, CPU time.

Starts and stops only the processes it creates (by PID, SIGTERM then SIGKILL), polls the
master's ``/stats/requests`` from a thread and reduces samples to figures.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

MARKER_NAME = "/_capacity_marker"

HORDE_SCRIPT = '''"""Capacity benchmark script: its users never run (the workers are simulated)."""

from horde import User, constant, task


class Reader(User):
    wait_time = constant(1)

    @task
    def noop(self) -> None:
        pass
'''

LOCUST_SCRIPT = '''"""Capacity benchmark locustfile: its users never run (simulated workers)."""

from locust import User, constant, task


class Reader(User):
    wait_time = constant(1)

    @task
    def noop(self):
        pass
'''


def pct(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of ``values`` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(p * len(ordered) + 0.5) - 1))]


def start(
    cmd: list[str],
    *,
    core: int,
    log: Path,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
) -> Any:
    """Start ``cmd`` pinned to ``core`` in a session of its own; output goes to ``log``."""
    fh = log.open("w")
    return subprocess.Popen(
        ["taskset", "-c", str(core), *cmd],
        cwd=cwd,
        stdout=fh,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )


def stop(proc: Any, timeout: float = 10.0) -> None:
    """SIGTERM ``proc`` (by its PID), then SIGKILL it if it is still there after ``timeout``."""
    if proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


def http_call(
    port: int, method: str, path: str, body: str = "", timeout: float = 10.0
) -> tuple[int, bytes, float]:
    """One HTTP request on a fresh connection; return (status, body, seconds taken)."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
        conn.request(method, path, body=body or None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, data, time.monotonic() - t0
    finally:
        conn.close()


def wait_http(port: int, deadline: float) -> bool:
    """Wait until the web port answers ``/worker-count``; False on timeout."""
    while time.monotonic() < deadline:
        try:
            status, _, _ = http_call(port, "GET", "/worker-count", timeout=2)
            if status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def worker_count(port: int) -> int:
    """The master's ``/worker-count`` (0 when it does not answer)."""
    try:
        status, body, _ = http_call(port, "GET", "/worker-count", timeout=20)
        return int(json.loads(body)["worker_count"]) if status == 200 else 0
    except (OSError, ValueError, KeyError):
        return 0


@dataclass
class Poll:
    """One ``/stats/requests`` answer, reduced."""

    at: float  # wall clock when the request was sent
    seconds: float
    ok: bool
    missing: int = 0
    workers: int = 0
    markers: int = 0
    rss: int = 0


@dataclass
class Poller:
    """Polls ``/stats/requests`` every ``interval`` seconds from a thread."""

    port: int
    pid: int
    interval: float = 0.5
    polls: list[Poll] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Start polling."""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _run(self) -> None:
        proc = psutil.Process(self.pid)
        next_at = time.monotonic()
        while not self._stop.is_set():
            at = time.time()
            try:
                status, body, took = http_call(self.port, "GET", "/stats/requests")
                poll = self._reduce(at, took, status, body)
            except (OSError, ValueError, http.client.HTTPException):
                poll = Poll(at, 10.0, False)
            with contextlib.suppress(psutil.Error):
                poll.rss = proc.memory_info().rss
            self.polls.append(poll)
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    @staticmethod
    def _reduce(at: float, took: float, status: int, body: bytes) -> Poll:
        if status != 200:
            return Poll(at, took, False)
        doc = json.loads(body)
        workers = doc.get("workers") or []
        markers = sum(e["num_requests"] for e in doc.get("stats", []) if e["name"] == MARKER_NAME)
        missing = sum(1 for w in workers if w.get("state") == "missing")
        return Poll(at, took, True, missing, len(workers), markers)


def settle(port: int, deltas: int, deadline: float) -> tuple[int, int]:
    """Poll ``/stats/requests`` until ``deltas`` deltas are merged (or ``deadline``, a
    monotonic time); return the deltas merged (markers) and the total's requests."""
    markers = total = -1
    while True:
        try:
            status, body, _ = http_call(port, "GET", "/stats/requests")
        except (OSError, http.client.HTTPException):
            status, body = 0, b""
        if status == 200:
            stats = json.loads(body).get("stats", [])
            markers = sum(e["num_requests"] for e in stats if e["name"] == MARKER_NAME)
            total = sum(e["num_requests"] for e in stats if e["name"] == "Aggregated")
        if markers >= deltas or time.monotonic() >= deadline:
            return markers, total
        time.sleep(0.5)


def merge_lags(polls: list[Poll], sent: list[float]) -> list[float]:
    """Age (ms) of the oldest delta not yet merged at each poll, assuming in-order merging.

    ``sent`` holds the send time of every delta sent since the run started; the k-th
    merged delta is taken to be the k-th sent. A poll's count is at most as fresh as the
    master's report cache, so the figure errs high by up to that cache's age.
    """
    ordered = sorted(sent)
    lags = []
    for poll in polls:
        if not poll.ok:
            continue
        k = poll.markers
        if k < len(ordered) and ordered[k] < poll.at:
            lags.append((poll.at - ordered[k]) * 1000.0)
        else:
            lags.append(0.0)
    return lags


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` (all its threads)."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def listen_overflows() -> int:
    """The kernel's count of connections dropped because a listening socket's accept
    queue was full (``TcpExt ListenOverflows``, system-wide; the client's SYN is then
    retransmitted after 1 s, 3 s, 7 s...)."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            fields = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return int(fields.get("ListenOverflows", 0))
    return 0


ZMQ_IO_THREAD = "ZMQbg/IO/"
"""How libzmq names its I/O threads (``/proc/PID/task/TID/comm``)."""


def threads_cpu_seconds(pid: int) -> dict[str, float]:
    """User plus system CPU seconds of each thread of ``pid``, by ``name/tid``; the main
    thread is ``main`` (libzmq's I/O threads are ``ZMQbg/IO/0/tid``...)."""
    ticks = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # from field 3, the state
        label = "main" if task.name == str(pid) else f"{name}/{task.name}"
        seconds[label] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return seconds


def thread_cpu_seconds(pid: int, prefix: str = ZMQ_IO_THREAD) -> float:
    """User plus system CPU seconds of the threads of ``pid`` whose name starts with
    ``prefix`` (by default libzmq's I/O threads, where CURVE encrypts and decrypts)."""
    return sum(v for k, v in threads_cpu_seconds(pid).items() if k.startswith(prefix))
