"""Real processes on loopback: a horde master, horde and Locust workers, a target, HTTP control."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    SCRIPTS,
    VENV_BIN,
    Processes,
    free_port,
    get_json,
    post,
    processes,
    start_master,
    start_target,
    wait_for,
)

pytestmark = pytest.mark.process


@dataclass
class Cluster:
    """A running target and master, plus the process group to add workers to."""

    procs: Processes
    master: subprocess.Popen[str]
    target: str
    web: str
    zmq_port: int

    def report(self) -> dict[str, Any]:
        return get_json(f"{self.web}/stats/requests")  # type: ignore[no-any-return]

    def worker(self, *extra: str, script: str | None = "basic.py") -> subprocess.Popen[str]:
        args = ["worker", "--master", f"127.0.0.1:{self.zmq_port}", *extra]
        if script is not None:
            args += ["-f", str(SCRIPTS / script)]
        return self.procs.horde(*args)

    def wait_workers(self, count: int, state: str | None = None) -> list[dict[str, Any]]:
        def ready() -> list[dict[str, Any]] | None:
            workers = [w for w in self.report()["workers"] if state is None or w["state"] == state]
            return workers if len(workers) == count else None

        return wait_for(ready, 20, f"{count} workers{' ' + state if state else ''}")


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    script = getattr(request, "param", "basic.py")
    with processes() as procs:
        target = start_target(procs)
        master = start_master(procs, script, "--host", target)
        yield Cluster(procs, master.proc, target, master.web, master.zmq_port)


def test_master_and_two_workers_run_a_test_over_http(cluster: Cluster) -> None:
    """Two workers share 20 users 10/10, heartbeat CPU and memory, and requests add up."""
    w1, w2 = cluster.worker(), cluster.worker()
    cluster.wait_workers(2, "ready")
    status, body = post(
        f"{cluster.web}/swarm", {"user_count": 20, "spawn_rate": 10, "host": cluster.target}
    )
    assert status == 200 and body["success"] is True and body["host"] == cluster.target

    def split_10_10() -> dict[str, Any] | None:
        report = cluster.report()
        counts = sorted(w["user_count"] for w in report["workers"])
        return report if counts == [10, 10] and report["user_count"] == 20 else None

    report = wait_for(split_10_10, 30, "20 users split 10/10")
    assert report["state"] == "running"
    first = report["stats"][-1]["num_requests"]
    report = wait_for(
        lambda: (r := cluster.report()) and r["stats"][-1]["num_requests"] > first + 50 and r,
        30,
        "growing request counts",
    )
    names = {(e["method"], e["name"]) for e in report["stats"]}
    assert ("GET", "/fast") in names and ("", "Aggregated") in names
    for worker in report["workers"]:
        assert worker["memory_usage"] > 10_000_000
        assert worker["cpu_usage"] >= 0
        assert worker["horde"] is True
    wait_for(
        lambda: all(w["cpu_usage"] > 0 for w in cluster.report()["workers"]),
        10,
        "CPU figures from both workers",
    )

    killed_at = time.monotonic()
    w2.send_signal(signal.SIGKILL)
    w2.wait(5)
    wait_for(
        lambda: any(w["state"] == "missing" for w in cluster.report()["workers"]),
        10,
        "the killed worker shown missing",
    )
    detected = time.monotonic() - killed_at
    assert detected < 5.0, f"missing only after {detected:.1f} s"
    wait_for(
        lambda: sorted(w["user_count"] for w in cluster.report()["workers"]) == [0, 20],
        10,
        "the survivor running all 20 users",
    )

    status, body = post(f"{cluster.web}/stop")
    assert (status, body["success"]) == (200, True)
    wait_for(lambda: cluster.report()["state"] == "stopped", 20, "the test stopped")
    assert w1.poll() is None


def test_bad_swarm_fields_get_400_naming_the_field(cluster: Cluster) -> None:
    """Bad form fields are refused with Locust's body and status 400."""
    cluster.worker()
    cluster.wait_workers(1, "ready")
    for fields, name in [
        ({"user_count": "many", "spawn_rate": 1}, "user_count"),
        ({"user_count": 5, "spawn_rate": 0}, "spawn_rate"),
        ({"user_count": 5, "spawn_rate": 1, "host": "ftp://x"}, "host"),
        ({"user_count": 5, "spawn_rate": 1, "run_time": "soon"}, "run_time"),
        ({"user_count": 10**9, "spawn_rate": 1}, "user_count"),
    ]:
        status, body = post(f"{cluster.web}/swarm", fields)
        assert status == 400, fields
        assert body["success"] is False and name in body["message"]
    status, body = post(
        f"{cluster.web}/swarm", {"user_count": 2, "spawn_rate": 5, "run_time": "2s"}, as_json=True
    )
    assert status == 200 and body["run_time"] == 2.0
    wait_for(lambda: cluster.report()["state"] == "stopped", 20, "run_time to stop the test")
    assert cluster.report()["stats"][-1]["num_requests"] > 0


@pytest.mark.parametrize("cluster", ["blocking.py"], indirect=True)
def test_worker_blocked_for_5s_keeps_its_lease_and_users(cluster: Cluster) -> None:
    """A task that blocks the event loop for 5 s (an unpatched time.sleep) silences neither
    the heartbeat nor the lease: the worker stays registered, its user runs on, and the
    heartbeat reports a loop lag of at least 4 s."""
    worker_proc = cluster.worker(script="blocking.py")
    cluster.wait_workers(1, "ready")
    status, _ = post(f"{cluster.web}/swarm", {"user_count": 1, "spawn_rate": 1})
    assert status == 200
    wait_for(lambda: cluster.report()["workers"][0]["state"] == "running", 10, "the user")
    lags = []
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        worker = cluster.report()["workers"][0]
        assert (worker["state"], worker["user_count"]) == ("running", 1), worker
        lags.append(worker["loop_lag"] or 0)
        time.sleep(0.25)
    assert max(lags) >= 4.0, f"the heartbeat should report the blocked loop: {max(lags)}"
    output = cluster.procs.output(worker_proc)
    assert "lease expired" not in output, output[-4000:]


def test_worker_without_script_runs_the_masters(cluster: Cluster) -> None:
    """A worker started without -f fetches the master's script and runs its users."""
    cluster.worker(script=None)
    cluster.wait_workers(1, "ready")
    post(f"{cluster.web}/swarm", {"user_count": 2, "spawn_rate": 10})
    wait_for(lambda: cluster.report()["stats"][-1]["num_requests"] > 10, 30, "requests")


def test_locust_worker_joins_a_horde_master(cluster: Cluster) -> None:
    """A real locust --worker (2.47.0) registers, gets users from /swarm and its requests show."""
    locust = shutil.which("locust", path=str(VENV_BIN)) or "locust"
    cluster.procs.start(
        locust,
        "-f",
        str(SCRIPTS / "locust_basic.py"),
        "--worker",
        "--master-host",
        "127.0.0.1",
        "--master-port",
        str(cluster.zmq_port),
        env={"LOCUST_SKIP_MONKEY_PATCH": ""},
    )
    (worker,) = cluster.wait_workers(1, "ready")
    assert worker["horde"] is False
    post(f"{cluster.web}/swarm", {"user_count": 3, "spawn_rate": 10})
    wait_for(lambda: cluster.report()["workers"][0]["user_count"] == 3, 30, "3 Locust users")
    wait_for(
        lambda: cluster.report()["stats"][-1]["num_requests"] > 20,
        30,
        "the Locust worker's requests",
    )
    post(f"{cluster.web}/stop")
    wait_for(lambda: cluster.report()["state"] == "stopped", 30, "the test stopped")


@pytest.mark.parametrize("cluster", ["raising.py"], indirect=True)
def test_task_exceptions_reach_the_master_with_tracebacks(cluster: Cluster) -> None:
    """Exceptions raised in tasks are grouped on the master with their traceback."""
    cluster.worker(script="raising.py")
    cluster.wait_workers(1, "ready")
    post(f"{cluster.web}/swarm", {"user_count": 1, "spawn_rate": 1})

    def reported() -> list[dict[str, Any]] | None:
        rows = get_json(f"{cluster.web}/exceptions")["exceptions"]
        return rows if rows and rows[0]["count"] >= 3 else None

    (row,) = wait_for(reported, 20, "three reported exceptions")
    assert row["msg"] == "division by zero"  # str(exception), as Locust sends it
    assert "divide" in row["traceback"]
    assert row["nodes"].startswith(socket.gethostname())


def test_garbage_frames_do_not_stop_the_master(cluster: Cluster) -> None:
    """Hostile frames are counted and dropped; a real worker still joins and runs users."""
    import msgpack
    import zmq

    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.IDENTITY, b"attacker_1")
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"tcp://127.0.0.1:{cluster.zmq_port}")
    frames = [
        b"",
        b"\xc1\xc1",
        b"\x93",
        msgpack.packb([1, 2, 3]),
        msgpack.packb(["heartbeat"]),
        msgpack.packb(["heartbeat", {"state": 1}, "x"]),
        msgpack.packb(["stats", [], "x"]),
        msgpack.packb(["horde.stats", {"run_id": 5}, "x"]),
        msgpack.packb({"a": 1}),
        msgpack.packb(["client_ready", [], "x"]),
    ]
    for _ in range(20):
        for frame in frames:
            sock.send(frame)
    sock.send_multipart([b"two", b"parts"])
    wait_for(
        lambda: "malformed frame dropped" in cluster.procs.output(cluster.master),
        10,
        "the master to log the dropped frames",
    )
    sock.close()
    context.term()
    cluster.worker()
    cluster.wait_workers(1, "ready")
    post(f"{cluster.web}/swarm", {"user_count": 2, "spawn_rate": 10})
    wait_for(lambda: cluster.report()["stats"][-1]["num_requests"] > 10, 30, "requests")
    assert cluster.master.poll() is None


def test_horde_worker_joins_a_locust_master(tmp_path: Path) -> None:
    """A horde worker serves a real Locust master (2.47.0) in Locust's formats."""
    locust = shutil.which("locust", path=str(VENV_BIN)) or "locust"
    result = tmp_path / "locust.json"
    with processes() as procs:
        target = start_target(procs)
        port = free_port()
        master = procs.start(
            locust,
            "-f",
            str(SCRIPTS / "locust_basic.py"),
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--headless",
            "--expect-workers",
            "1",
            "-u",
            "3",
            "-r",
            "3",
            "-t",
            "4s",
            "-H",
            target,
            "--json-file",
            str(result.with_suffix("")),
            env={"LOCUST_SKIP_MONKEY_PATCH": ""},
        )
        worker = procs.horde(
            "worker", "-f", str(SCRIPTS / "basic.py"), "--master", f"127.0.0.1:{port}"
        )
        master.wait(timeout=60)
        worker.wait(timeout=30)
        entries = json.loads(result.read_text())
        (entry,) = [e for e in entries if e["name"] == "/fast"]
        assert entry["num_requests"] > 20 and entry["num_failures"] == 0
        assert worker.returncode == 0, procs.output(worker)


def test_horde_demo_exits_zero_with_requests_from_two_workers() -> None:
    """`horde demo` runs to completion and its summary counts requests."""
    with processes() as procs:
        demo = procs.horde("demo", "-t", "4s")
        demo.wait(timeout=90)
        output = procs.output(demo)
        assert demo.returncode == 0, output[-3000:]
        totals = re.findall(r"Aggregated\s+(\d+)\s+\d+\(", output)
        assert totals and int(totals[-1]) > 50
        quitters = set(re.findall(r"worker quit\s+process=demo worker=(\S+)", output))
        assert len(quitters) == 2, output[-3000:]


def test_headless_run_exits_1_when_requests_fail() -> None:
    """`horde run --headless` exits with --exit-code-on-error when any request failed."""
    with processes() as procs:
        target = start_target(procs)
        run = procs.horde(
            "run",
            "-f",
            str(SCRIPTS / "basic.py"),
            "--headless",
            "-u",
            "2",
            "-r",
            "10",
            "-t",
            "2s",
            "-H",
            f"{target}/missing",
            "--workers",
            "1",
            "--no-web",
            "--exit-code-on-error",
            "3",
        )
        run.wait(timeout=60)
        assert run.returncode == 3, procs.output(run)[-3000:]


def test_version_and_help_explain_themselves() -> None:
    """`horde --version` and `horde run --help` answer without starting anything."""
    out = subprocess.run(
        [sys.executable, "-m", "horde", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert out.stdout.startswith("horde ")
    out = subprocess.run(
        [sys.executable, "-m", "horde", "run", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "--spawn-rate" in out.stdout and "--workers" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "-f", str(SCRIPTS / "basic.py"), "-t", "soon", "--headless"], "--run-time"),
        (["worker", "--master", "host:port"], "--master must be HOST[:PORT]"),
    ],
)
def test_bad_command_lines_get_a_clear_error(args: list[str], message: str) -> None:
    """Unusable flags end with exit code 2 and one line naming the problem, no traceback."""
    out = subprocess.run(
        [sys.executable, "-m", "horde", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr


def test_a_script_that_does_not_load_ends_with_1_as_in_locust() -> None:
    """A missing (or failing) script: exit 1 and one line naming it, no traceback."""
    out = subprocess.run(
        [sys.executable, "-m", "horde", "master", "-f", "/nonexistent/script.py", "--insecure"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 1
    assert "script not found" in out.stderr and "Traceback" not in out.stderr
