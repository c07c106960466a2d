"""How each end of a master-worker link notices that the other end is gone: in the kernel.

Responsibility: the TCP options both transports set on their ZeroMQ sockets. Liveness of a
*worker* is the application heartbeat's job (``master/registry.py``, the worker's lease);
these options only make a connection whose peer vanished (a cut cable, a host that died
without closing its sockets) fail, so libzmq closes it, the worker reconnects, and the
master frees the worker's identity for that new connection.

Kernel keepalive and ``TCP_USER_TIMEOUT`` (libzmq's ``TCP_MAXRT``) do this with no work
in user space: a link that carries heartbeats each second never sends a probe, and a link
whose peer is gone fails about :data:`DEAD_LINK_SECONDS` after it went quiet (keepalive,
when we have nothing to send) or after the first unacknowledged send (user timeout).
ZMTP's own PING/PONG would do the same in libzmq's I/O thread; at 5,000 workers that
thread spent more than half of the master's core on them.

Imports: nothing (option names are looked up on the caller's zmq module).
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEAD_LINK_SECONDS", "LINK_OPTIONS", "apply_link_options"]

DEAD_LINK_SECONDS = 5
"""A link whose peer is gone fails after about this long."""
_KEEPALIVE_IDLE = 2
_KEEPALIVE_INTERVAL = 1
LINK_OPTIONS: tuple[tuple[str, int], ...] = (
    ("TCP_KEEPALIVE", 1),
    ("TCP_KEEPALIVE_IDLE", _KEEPALIVE_IDLE),
    ("TCP_KEEPALIVE_INTVL", _KEEPALIVE_INTERVAL),
    ("TCP_KEEPALIVE_CNT", (DEAD_LINK_SECONDS - _KEEPALIVE_IDLE) // _KEEPALIVE_INTERVAL),
    ("TCP_MAXRT", DEAD_LINK_SECONDS * 1000),
)
"""(zmq option name, value) pairs; set them before ``bind`` or ``connect``."""


def apply_link_options(sock: Any, zmq: Any) -> None:
    """Set :data:`LINK_OPTIONS` on the ZeroMQ socket ``sock`` (``zmq``: its module)."""
    for name, value in LINK_OPTIONS:
        sock.setsockopt(getattr(zmq, name), value)
