"""Helpers for the fault and fuzz tests: a master-and-workers cluster (plain, or with
CURVE keys), a counting target, a background sampler and a reader for the master's
``/metrics``.

Everything runs on loopback. Every wait is on a condition with a deadline; every process
is started through :class:`tests.support.Processes` and stopped by PID.
"""

from __future__ import annotations

import csv
import re
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import (
    SCRIPTS,
    Keys,
    Processes,
    free_port,
    get_json,
    processes,
    start_master,
    wait_for,
)

NODE_ID = re.compile(r"node_id=(\S+)")
#: Run a test with the worker channel plain and with CURVE on (``curve`` is the flag).
SECURITY = pytest.mark.parametrize(
    "curve", [False, True], ids=lambda on: "curve" if on else "plain"
)


def keys_for(curve: bool, root: Path) -> Keys | None:
    """A fresh key set under ``root`` when ``curve`` is on, else ``None`` (plain)."""
    return Keys.make(root) if curve else None


# --- a target that counts what it serves --------------------------------------------------


class _CountingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the workers' client expects

    def do_GET(self) -> None:
        self.server.record(self.path)  # type: ignore[attr-defined]
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


class _CountingServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _CountingHandler)
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.last_seen: dict[str, float] = {}

    def record(self, path: str) -> None:
        with self.lock:
            self.counts[path] += 1
            self.last_seen[path] = time.monotonic()


@dataclass
class CountingTarget:
    """An HTTP server in the test process that answers 200 to any GET and counts by path."""

    server: _CountingServer

    @property
    def url(self) -> str:
        """The base URL workers send requests to."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def counts(self) -> Counter[str]:
        """Requests served so far, by path."""
        with self.server.lock:
            return Counter(self.server.counts)

    def total(self) -> int:
        """Requests served so far."""
        with self.server.lock:
            return sum(self.server.counts.values())

    def last_request(self) -> float:
        """``time.monotonic()`` of the latest request served (0 before the first)."""
        with self.server.lock:
            return max(self.server.last_seen.values(), default=0.0)


@contextmanager
def counting_target() -> Iterator[CountingTarget]:
    """Serve a :class:`CountingTarget` on a free loopback port for the block's duration."""
    server = _CountingServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield CountingTarget(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- the cluster ---------------------------------------------------------------------------


@dataclass
class Cluster:
    """One master (restartable on the same ports) plus the workers a test adds."""

    procs: Processes
    target: str
    zmq_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    master: subprocess.Popen[str] | None = None
    keys: Keys | None = None

    @property
    def web(self) -> str:
        """The master's web API base URL."""
        return f"http://127.0.0.1:{self.web_port}"

    def start_master(
        self, *extra: str, script: str = "basic.py", wait: bool = True
    ) -> subprocess.Popen[str]:
        """Start ``horde master`` on this cluster's ports (a CURVE server if the cluster has
        keys); wait for its web API unless told."""
        security = self.keys.master_args() if self.keys else ()
        self.master = start_master(
            self.procs,
            script,
            "--host",
            self.target,
            *security,
            *extra,
            zmq_port=self.zmq_port,
            web_port=self.web_port,
            wait=wait,
        ).proc
        return self.master

    def worker(self, *extra: str, script: str = "basic.py", key: int = 1) -> subprocess.Popen[str]:
        """Start a ``horde worker`` for this cluster's master (with worker ``key``'s key pair
        if the cluster has keys)."""
        return self.procs.horde(
            "worker",
            "--master",
            f"127.0.0.1:{self.zmq_port}",
            "-f",
            str(SCRIPTS / script),
            *(self.keys.worker_args(key) if self.keys else ()),
            *extra,
        )

    def node_id(self, worker: subprocess.Popen[str]) -> str:
        """The node id a worker logged when it started (also its socket identity)."""
        match = wait_for(
            lambda: NODE_ID.search(self.procs.output(worker)), 30, "the worker's node id"
        )
        return match.group(1)

    def report(self, timeout: float = 5.0) -> dict[str, Any]:
        """``GET /stats/requests``."""
        report: dict[str, Any] = get_json(f"{self.web}/stats/requests", timeout=timeout)
        return report

    def rows(self) -> dict[str, dict[str, Any]]:
        """The master's worker rows by worker id."""
        return {row["id"]: row for row in self.report()["workers"]}

    def total_requests(self) -> int:
        """The master's ``Aggregated`` request count."""
        return int(self.report()["stats"][-1]["num_requests"])

    def wait_workers(
        self, ids: list[str], state: str = "ready", timeout: float = 30
    ) -> dict[str, dict[str, Any]]:
        """Wait until every worker in ``ids`` shows ``state``; return the rows."""

        def ready() -> dict[str, dict[str, Any]] | None:
            rows = self.rows()
            return rows if all(rows.get(i, {}).get("state") == state for i in ids) else None

        return wait_for(ready, timeout, f"workers {ids} {state}")

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """``GET /metrics`` as ``{(sample name, sorted labels): value}``."""
        with urllib.request.urlopen(f"{self.web}/metrics", timeout=5) as response:
            text = response.read().decode()
        return parse_metrics(text)


def parse_metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text as ``{(sample name, sorted labels): value}``."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def rejected(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, int]:
    """``horde_master_rejected_frames_total`` by reason."""
    out = {}
    for (name, labels), value in metrics.items():
        if name == "horde_master_rejected_frames_total":
            out[dict(labels)["reason"]] = int(value)
    return out


def events(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, int]:
    """``horde_master_events_total`` by event."""
    out = {}
    for (name, labels), value in metrics.items():
        if name == "horde_master_events_total":
            out[dict(labels)["event"]] = int(value)
    return out


@contextmanager
def cluster(target: str | None = None, keys: Keys | None = None) -> Iterator[Cluster]:
    """A process group with a demo target (unless ``target`` is given) and no master yet;
    with ``keys``, its master and workers speak CURVE."""
    from tests.support import start_target

    with processes() as procs:
        yield Cluster(procs, target or start_target(procs), keys=keys)


# --- sampling in the background ------------------------------------------------------------


@dataclass
class Sample:
    """One observation: when it was taken, how long it took, and what (or what failed)."""

    at: float
    took: float
    value: Any = None
    error: str | None = None


class Sampler:
    """Calls ``probe`` every ``interval`` seconds in a thread and keeps every result."""

    def __init__(self, probe: Callable[[], Any], interval: float = 0.05) -> None:
        self.probe = probe
        self.interval = interval
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                sample = Sample(started, 0.0, self.probe())
            except Exception as exc:  # record and keep sampling: failures are data here
                sample = Sample(started, 0.0, error=f"{type(exc).__name__}: {exc}")
            sample.took = time.monotonic() - started
            self.samples.append(sample)
            self._stop.wait(max(0.0, self.interval - sample.took))

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def values(self, since: float = 0.0) -> list[Sample]:
        """Successful samples taken at or after ``since``."""
        return [s for s in list(self.samples) if s.error is None and s.at >= since]

    def errors(self) -> list[Sample]:
        """Failed samples."""
        return [s for s in list(self.samples) if s.error is not None]


# --- outputs -------------------------------------------------------------------------------


def csv_aggregated(path: Path) -> dict[str, str]:
    """The ``Aggregated`` row of a ``PREFIX_stats.csv`` file."""
    with path.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("Name") == "Aggregated"]
    assert rows, f"no Aggregated row in {path}"
    return rows[-1]
