"""Helpers for process-level tests: free ports, child processes, HTTP calls, waiting,
and CURVE key sets made by ``horde keygen``.

Every wait is on a condition with a deadline; every process a test starts is stopped by
PID when the test ends.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import zmq
import zmq.auth as zauth

T = TypeVar("T")
SCRIPTS = Path(__file__).parent / "scripts"
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    condition: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05
) -> T:
    """Poll ``condition`` until it returns a truthy value; fail naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (OSError, ValueError, KeyError) as exc:  # server not up yet, partial data
            last_error = exc
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout} s waiting for {what} (last error: {last_error})"
    )


def get_json(url: str, timeout: float = 5.0) -> Any:
    """GET ``url`` and decode its JSON body."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def post(
    url: str, fields: dict[str, Any] | None = None, *, as_json: bool = False, timeout: float = 5.0
) -> tuple[int, Any]:
    """POST a form (or JSON) and return (status, decoded JSON or text)."""
    if as_json:
        body = json.dumps(fields or {}).encode()
        headers = {"Content-Type": "application/json"}
    else:
        body = urllib.parse.urlencode(fields or {}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


class Processes:
    """Starts child processes and stops exactly those, by PID.

    Each child's output goes to a temporary file (a pipe nobody reads could fill and
    block the child); :meth:`output` reads it, and failures print it.
    """

    def __init__(self) -> None:
        self.children: list[subprocess.Popen[str]] = []
        self._logs: dict[int, IO[str]] = {}

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start ``args`` with stdout and stderr captured."""
        log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in stop_all
        proc = subprocess.Popen(
            list(args),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        self.children.append(proc)
        self._logs[proc.pid] = log
        return proc

    def horde(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start ``python -m horde ARGS``."""
        return self.start(sys.executable, "-m", "horde", *args, env=env)

    def output(self, proc: subprocess.Popen[str]) -> str:
        """Everything ``proc`` printed so far."""
        log = self._logs[proc.pid]
        log.flush()
        log.seek(0)
        return log.read()

    def stop_all(self) -> None:
        """SIGTERM, then SIGKILL what is left, of our own children only."""
        for proc in self.children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in self.children:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def dump(self) -> str:
        """All children's output, for a failing test's report."""
        parts = []
        for proc in self.children:
            args = proc.args if isinstance(proc.args, list) else [proc.args]
            parts.append(f"--- pid {proc.pid}: {' '.join(map(str, args))[:200]}")
            parts.append(self.output(proc)[-4000:])
        return "\n".join(parts)

    def close(self) -> None:
        """Close the captured output files."""
        for log in self._logs.values():
            log.close()


@contextmanager
def processes() -> Iterator[Processes]:
    """A process group for one test, always cleaned up."""
    group = Processes()
    try:
        yield group
    except BaseException:
        group.stop_all()
        print(group.dump())
        raise
    finally:
        group.stop_all()
        group.close()


def start_target(procs: Processes) -> str:
    """Start horde's demo target on a free loopback port and return its base URL."""
    port = free_port()
    target = procs.horde("target", "--port", str(port))
    wait_for(lambda: "listening" in procs.output(target), 20, "the demo target")
    return f"http://127.0.0.1:{port}"


@dataclass(frozen=True)
class Master:
    """A ``horde master`` process the test started, with its ports."""

    proc: subprocess.Popen[str]
    zmq_port: int
    web_port: int

    @property
    def web(self) -> str:
        """Its web API's base URL (plain HTTP, no base path)."""
        return f"http://127.0.0.1:{self.web_port}"


def start_master(
    procs: Processes,
    script: str | Path,
    *extra: str,
    zmq_port: int | None = None,
    web_port: int | None = None,
    env: dict[str, str] | None = None,
    wait: bool = True,
) -> Master:
    """Start ``horde master -f SCRIPT`` on loopback ports (free ones unless given).

    ``script`` is a path or a name under ``tests/scripts``. With ``wait``, return once
    ``/stats/requests`` answers (pass ``wait=False`` for masters behind auth or TLS).
    """
    path = script if isinstance(script, Path) or "/" in str(script) else SCRIPTS / script
    zmq_port = zmq_port or free_port()
    web_port = web_port or free_port()
    proc = procs.horde(
        "master",
        "-f",
        str(path),
        "--bind",
        f"tcp://127.0.0.1:{zmq_port}",
        "--web-port",
        str(web_port),
        *extra,
        env=env,
    )
    master = Master(proc, zmq_port, web_port)
    if wait:
        wait_for(lambda: get_json(f"{master.web}/stats/requests"), 30, "the master's web API")
    return master


def run_headless(
    script: str | Path, target: str, *extra: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``horde run -f SCRIPT --headless -H TARGET --workers 1 --web-port 0 EXTRA...``
    to its end (bounded by ``timeout``) and return what it printed."""
    path = script if isinstance(script, Path) or "/" in str(script) else SCRIPTS / script
    command = [sys.executable, "-m", "horde", "run", "-f", str(path), "--headless", "-H", target]
    command += ["--workers", "1", "--web-port", "0", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


@dataclass(frozen=True)
class Keys:
    """The key files ``horde keygen ROOT --workers 2`` wrote, as the flags that use them."""

    root: Path

    @classmethod
    def make(cls, root: Path) -> Keys:
        """Run ``horde keygen`` into ``root`` (a master pair and two worker pairs)."""
        command = [sys.executable, "-m", "horde", "keygen", str(root), "--workers", "2"]
        subprocess.run(command, check=True, capture_output=True, timeout=30)
        return cls(root)

    def master_args(self) -> tuple[str, ...]:
        """``horde master`` flags for a CURVE server allowing both workers' keys."""
        return (
            "--secret-key",
            str(self.root / "master.key_secret"),
            "--allow-keys",
            str(self.root / "workers"),
        )

    def worker_args(self, n: int = 1) -> tuple[str, ...]:
        """``horde worker`` flags for worker ``n``'s key pair."""
        return (
            "--secret-key",
            str(self.root / f"worker-{n}.key_secret"),
            "--master-key",
            str(self.root / "master.key"),
        )

    def fingerprint(self, n: int = 1) -> str:
        """Worker ``n``'s key fingerprint, as the master shows it (8 Z85 characters)."""
        public, _ = zauth.load_certificate(self.root / "workers" / f"worker-{n}.key")
        return public[:8].decode()

    def curve_client(self, sock: zmq.Socket, n: int) -> None:
        """Make ``sock`` (before it connects) a CURVE client holding worker ``n``'s pair."""
        public, secret = zauth.load_certificate(self.root / f"worker-{n}.key_secret")
        master_public, _ = zauth.load_certificate(self.root / "master.key")
        assert secret is not None
        sock.curve_publickey, sock.curve_secretkey = public, secret
        sock.curve_serverkey = master_public


def probe_env(log: Path, **extra: str) -> dict[str, str]:
    """The environment of a run whose probe script notes what it sees in ``log``
    ($EVENTS_LOG); Locust children may monkey-patch themselves (the suite's process may not)."""
    skip = {"LOCUST_SKIP_MONKEY_PATCH": ""}
    return {**os.environ, **skip, "EVENTS_LOG": str(log), "PYTHONUNBUFFERED": "1", **extra}


def as_locust_script(script: Path, folder: Path) -> Path:
    """``script`` (horde imports) written into ``folder`` with Locust's: the porting rule
    backwards, so the same file runs under Locust."""
    ported = folder / f"{script.stem}_locust.py"
    ported.write_text(script.read_text().replace("from horde", "from locust"))
    return ported


def run_locust_fleet(
    script: Path, target: str, flags: Sequence[str], env: dict[str, str], timeout: float = 60
) -> tuple[int, int]:
    """Run ``script`` under a headless Locust 2.47 master with one Locust worker, both on
    loopback, until both have exited; return the master's exit code and PID. ``flags``
    go to the master (say ``-u 1 -r 10 -t 2s``)."""
    port = str(free_port())
    locust = [sys.executable, "-m", "locust", "-f", str(script)]
    with processes() as procs:
        master = procs.start(
            *locust, "--headless", "--master", "--master-bind-host", "127.0.0.1",
            "--master-bind-port", port, "--expect-workers", "1", "-H", target, *flags, env=env,
        )  # fmt: skip
        procs.start(
            *locust, "--worker", "--master-host", "127.0.0.1", "--master-port", port, env=env
        )
        wait_for(lambda: master.poll() is not None, timeout, "Locust's master to finish")
        wait_for(lambda: all(p.poll() is not None for p in procs.children), 30, "its worker")
        return int(master.returncode), master.pid
