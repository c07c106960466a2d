"""Shared helpers of the benchmarks: a private nginx target, pinned processes, counters.

Every benchmark measures load generators by one independent counter: the requests a
private nginx served (its ``stub_status`` page), read before and after a steady window. The
helpers here start that nginx (Debian's ``/usr/sbin/nginx``, ``worker_processes 1``, a
config in a temporary directory, a free port on 127.0.0.1, pinned to a core with
``taskset``), start other processes pinned to a core, read a process's CPU time and RSS
(psutil), and stop only the processes they started, by PID.

The benchmarks need nginx (with the stub_status module, as Debian's nginx has), wrk and
taskset; :func:`require_tools` says to run ``make bench`` (which installs them) when one is
missing.
"""

from __future__ import annotations

import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import psutil

T = TypeVar("T")
NGINX = "/usr/sbin/nginx"
VENV_BIN = Path(sys.executable).parent
BODY = "hello from nginx\n"

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 16384; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location = /nginx_status {{ stub_status; }}
    location / {{ return 200 "{body}"; }}
  }}
}}
"""


class BenchError(RuntimeError):
    """A benchmark cannot run (missing tool, process that did not start, ...)."""


def require_tools(*tools: str) -> None:
    """Fail with a clear message if nginx, wrk or taskset (as named) is missing."""
    missing = [tool for tool in tools if not _have(tool)]
    if missing:
        raise BenchError(
            f"missing {', '.join(missing)}: run `make bench`, which installs them"
            " (Debian packages nginx, wrk and util-linux)"
        )


def _have(tool: str) -> bool:
    if tool == "nginx":
        return Path(NGINX).exists()
    return shutil.which(tool) is not None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``condition`` every 50 ms until it is truthy; raise :class:`BenchError` after
    ``timeout`` seconds, naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (OSError, ValueError, KeyError) as exc:
            last, value = exc, None
        if value:
            return value
        time.sleep(0.05)
    raise BenchError(f"timed out after {timeout} s waiting for {what} (last error: {last})")


def start_pinned(
    command: Sequence[str], core: int, log: Path | None = None, **popen: Any
) -> subprocess.Popen[bytes]:
    """Start ``command`` on CPU ``core`` (taskset execs it, so the PID is the command's)."""
    out: Any = subprocess.DEVNULL if log is None else log.open("wb")
    return subprocess.Popen(
        ["taskset", "-c", str(core), *command], stdout=out, stderr=subprocess.STDOUT, **popen
    )


def stop(process: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """Terminate a process this benchmark started (by its PID), killing it if it lingers."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds used so far by process ``pid`` (all its threads)."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def rss_bytes(pid: int) -> int:
    """The resident set size of process ``pid``."""
    return int(psutil.Process(pid).memory_info().rss)


def median(values: Sequence[float]) -> float:
    """The median of ``values`` (NaN when there are none)."""
    return statistics.median(values) if values else float("nan")


class Nginx:
    """A private nginx on a free loopback port, pinned to ``core``; use it as a context
    manager (it is stopped, by PID, on exit)."""

    def __init__(self, core: int = 0) -> None:
        self.core = core
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._dir = Path(tempfile.mkdtemp(prefix="horde-bench-nginx-"))
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Nginx:
        conf = self._dir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=self._dir, port=self.port, body=BODY.strip()))
        self._process = start_pinned(
            [NGINX, "-c", str(conf), "-p", str(self._dir)], self.core, self._dir / "out.log"
        )
        wait_for(self._up, 10, f"nginx on port {self.port} (see {self._dir}/error.log)")
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self._process)
        shutil.rmtree(self._dir, ignore_errors=True)

    def _up(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            log = (self._dir / "error.log").read_text(errors="replace")
            raise BenchError(f"nginx exited: {log[-2000:]}")
        self.served()
        return True

    def served(self) -> int:
        """Requests nginx has served so far (its own status reads included: one a call)."""
        with urllib.request.urlopen(f"{self.url}/nginx_status", timeout=5) as response:
            text = response.read().decode()
        # "Active connections: 1\nserver accepts handled requests\n 1 1 1\n..."
        return int(text.splitlines()[2].split()[2])


def measure_window(
    nginx: Nginx, pid: int, warmup: float, duration: float, alive: Callable[[], bool]
) -> tuple[float, float]:
    """Requests/s nginx served and the CPU share (%) of process ``pid`` over a window of
    ``duration`` seconds that starts ``warmup`` seconds after the first request."""
    start = nginx.served()
    wait_for(lambda: nginx.served() > start + 100 or not alive(), 60, "the first requests")
    if not alive():
        raise BenchError("the load generator exited before the window")
    time.sleep(warmup)
    count0, cpu0, wall0 = nginx.served(), cpu_seconds(pid), time.monotonic()
    time.sleep(duration)
    count1, cpu1, wall1 = nginx.served(), cpu_seconds(pid), time.monotonic()
    if not alive():
        raise BenchError("the load generator exited during the window")
    wall = wall1 - wall0
    return (count1 - count0 - 1) / wall, 100.0 * (cpu1 - cpu0) / wall
