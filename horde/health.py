"""Health endpoints' decisions: is the process alive, is it ready, and what a probe gets.

Responsibility: the pure half of ``--health-port`` (the server is
:mod:`horde.healthserver`). :class:`HealthSettings` is the flags' frozen form;
:func:`stamp_liveness` decides liveness from the last time a loop turned (the master's
timer loop, the worker's heartbeat thread) at ``now``; :func:`answer` maps a request line
to a status and a body: ``GET /healthz`` is 200 ``ok`` while alive, ``GET /readyz`` 200
while ready, else 503 with one word of reason; anything else 404. No authentication and
no data: nothing here reveals more than those words, which is why the endpoints are
exempt from the rule that refuses an unauthenticated web API beyond loopback.

Imports: the standard library and horde.protocol.errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from horde.protocol.errors import ConfigError

__all__ = [
    "DEFAULT_HEALTH_HOST",
    "STALL_AFTER",
    "HealthSettings",
    "Probe",
    "Verdict",
    "answer",
    "stamp_liveness",
]

DEFAULT_HEALTH_HOST = "0.0.0.0"
"""``--health-host``: every interface (a kubelet probes the pod's own address)."""
STALL_AFTER = 5.0
"""Seconds without a turn of the watched loop after which the process is not alive.

The master's timer loop turns at least every sweep interval (0.25 s) and the worker's
heartbeat thread at least every 0.2 s; a probe's ``failureThreshold`` adds its own slack."""

Verdict = str | None
"""None: healthy; else one word saying why not (``stalled``, ``unregistered`` ...)."""
Probe = Callable[[], Verdict]
"""A check run for one request: liveness or readiness, at the present moment."""

LIVE_PATH = "/healthz"
READY_PATH = "/readyz"
OK = "ok"


@dataclass(frozen=True, slots=True)
class HealthSettings:
    """``--health-host`` and ``--health-port`` (None or 0: no health endpoints)."""

    host: str = DEFAULT_HEALTH_HOST
    port: int | None = None

    def __post_init__(self) -> None:
        if self.port is not None and not 0 <= self.port <= 65535:
            raise ConfigError(f"--health-port must be a TCP port, got {self.port}")

    @property
    def enabled(self) -> bool:
        """Whether endpoints are served (a port other than 0 was given)."""
        return bool(self.port)


def stamp_liveness(
    last_turn: float, now: float, *, running: bool = True, limit: float = STALL_AFTER
) -> Verdict:
    """Alive while the watched loop runs and turned within ``limit`` seconds of ``now``.

    ``last_turn`` is the loop's last stamp (same clock as ``now``); an infinite one, or
    ``running`` False, is a loop that has ended.
    """
    if not running or math.isinf(last_turn):
        return "ended"
    if now - last_turn > limit:
        return "stalled"
    return None


def answer(request_line: str, live: Probe, ready: Probe) -> tuple[int, str]:
    """``(status, body)`` for one request line (``GET /readyz HTTP/1.1``).

    Only the path counts (a query string is ignored); GET and HEAD are served, any
    other method or path is 404.
    """
    parts = request_line.split()
    if len(parts) < 2 or parts[0] not in ("GET", "HEAD"):
        return 404, "not found"
    path = parts[1].partition("?")[0]
    if path == LIVE_PATH:
        verdict = live()
    elif path == READY_PATH:
        verdict = ready()
    else:
        return 404, "not found"
    return (200, OK) if verdict is None else (503, verdict)
