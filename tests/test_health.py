"""The health endpoints: the liveness and routing decisions as tables, and ``/healthz`` and
``/readyz`` of real masters and workers (headless, without the web API) before and after
a worker registers, while a master's loop is blocked, and after the run."""

from __future__ import annotations

import math
import socket
import urllib.error
import urllib.request

import pytest

from horde.health import STALL_AFTER, HealthSettings, answer, stamp_liveness
from horde.healthserver import response
from horde.protocol.errors import ConfigError
from tests.support import SCRIPTS, free_port, processes, start_target, wait_for

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(
    ("last_turn", "now", "running", "verdict"),
    [
        (100.0, 100.0, True, None),
        (100.0, 100.0 + STALL_AFTER, True, None),
        (100.0, 100.0 + STALL_AFTER + 0.01, True, "stalled"),
        (math.inf, 100.0, True, "ended"),
        (100.0, 100.0, False, "ended"),
    ],
)
def test_liveness_follows_the_last_turn(
    last_turn: float, now: float, running: bool, verdict: str | None
) -> None:
    """Alive up to STALL_AFTER seconds after the loop's last turn; a loop that ended is not."""
    assert stamp_liveness(last_turn, now, running=running) == verdict


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("GET /healthz HTTP/1.1", (200, "ok")),
        ("HEAD /healthz HTTP/1.1", (200, "ok")),
        ("GET /readyz HTTP/1.1", (503, "unregistered")),
        ("GET /readyz?verbose HTTP/1.0", (503, "unregistered")),
        ("GET / HTTP/1.1", (404, "not found")),
        ("GET /healthz/x HTTP/1.1", (404, "not found")),
        ("POST /healthz HTTP/1.1", (404, "not found")),
        ("", (404, "not found")),
        ("garbage", (404, "not found")),
    ],
)
def test_requests_map_to_a_status_and_one_word(line: str, expected: tuple[int, str]) -> None:
    """/healthz and /readyz answer their probe's verdict (200 ok or 503 and the reason);
    anything else is 404."""
    assert answer(line, lambda: None, lambda: "unregistered") == expected


def test_responses_close_and_carry_no_body_for_head() -> None:
    """An answer is plain text with its length and closes the connection; HEAD has no body."""
    full = response(503, "stalled")
    assert full.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"Content-Length: 8\r\n" in full and b"Connection: close\r\n" in full
    assert full.endswith(b"\r\n\r\nstalled\n")
    assert response(200, "ok", head_only=True).endswith(b"\r\n\r\n")


def test_health_settings_are_off_by_default_and_check_the_port() -> None:
    """No port (or 0) serves nothing; a port out of range is refused."""
    assert not HealthSettings().enabled and not HealthSettings(port=0).enabled
    assert HealthSettings(port=8081).enabled
    with pytest.raises(ConfigError, match="--health-port"):
        HealthSettings(port=70000)


def probe(port: int, path: str) -> tuple[int, str]:
    """GET ``path`` on a health port: (status, body)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def answers(port: int, path: str, expected: tuple[int, str]) -> bool:
    """Whether ``path`` answers ``expected`` now (False while nothing listens)."""
    try:
        return probe(port, path) == expected
    except OSError:
        return False


def test_a_worker_is_ready_once_registered_and_both_serve_headless_without_web() -> None:
    """A worker is alive but not ready until its master comes; a headless --no-web master
    is alive and ready while bound; both stop serving when the run ends, the worker exiting 0."""
    master_port, worker_health, master_health = free_port(), free_port(), free_port()
    with processes() as procs:
        target = start_target(procs)
        worker = procs.horde(
            *("worker", "-f", str(SCRIPTS / "basic.py"), "--master", f"127.0.0.1:{master_port}"),
            *("--health-port", str(worker_health), "--health-host", "127.0.0.1"),
        )
        wait_for(lambda: answers(worker_health, "/healthz", (200, "ok\n")), 30, "worker alive")
        assert probe(worker_health, "/readyz") == (503, "unregistered\n")
        assert probe(worker_health, "/metrics")[0] == 404
        master = procs.horde(
            *("master", "-f", str(SCRIPTS / "basic.py"), "--headless", "--no-web", "-t", "4"),
            *("-H", target, "--bind", f"tcp://127.0.0.1:{master_port}"),
            env={"HORDE_HEALTH_PORT": str(master_health), "HORDE_HEALTH_HOST": "127.0.0.1"},
        )
        wait_for(lambda: answers(master_health, "/readyz", (200, "ok\n")), 30, "master ready")
        assert probe(master_health, "/healthz") == (200, "ok\n")
        wait_for(lambda: answers(worker_health, "/readyz", (200, "ok\n")), 30, "worker ready")
        assert master.wait(timeout=60) == 0, procs.output(master)
        assert worker.wait(timeout=20) == 0, procs.output(worker)
        for port in (master_health, worker_health):
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_a_master_whose_loop_is_blocked_is_not_alive_until_it_turns_again() -> None:
    """While a script listener blocks the master's gevent loop, /healthz answers 503
    stalled (the server's own thread still answers); once it turns again, 200."""
    master_port, health = free_port(), free_port()
    with processes() as procs:
        target = start_target(procs)
        stall = f"{STALL_AFTER + 4:g}"
        master = procs.horde(
            *("master", "-f", str(SCRIPTS / "stalling.py"), "--headless", "--no-web", "-t", "30"),
            *("-H", target, "--bind", f"tcp://127.0.0.1:{master_port}"),
            *("--health-port", str(health), "--health-host", "127.0.0.1"),
            env={"STALL_SECONDS": stall},
        )
        wait_for(lambda: answers(health, "/healthz", (200, "ok\n")), 30, "master alive")
        script = str(SCRIPTS / "stalling.py")
        procs.horde("worker", "-f", script, "--master", f"127.0.0.1:{master_port}")
        wait_for(lambda: answers(health, "/healthz", (503, "stalled\n")), 30, "a stalled master")
        assert probe(health, "/readyz") == (200, "ok\n")  # still bound: it only stalls
        wait_for(lambda: answers(health, "/healthz", (200, "ok\n")), 30, "alive again")
        assert master.poll() is None
