"""The health endpoints' server: a tiny HTTP responder in a native thread of its own.

Responsibility: serve ``--health-port`` (:mod:`horde.health` decides every answer). It
runs in an OS thread on the C-level ``_socket`` module, which gevent does not patch, so it
answers even while the gevent loop is blocked: a master or worker whose loop is stuck gets
a 503 that says so, not a probe timeout. One connection at a time: it reads the request
head (at most :data:`MAX_REQUEST` bytes, for at most :data:`READ_WAIT` seconds), answers
and closes. It is not the web API (no Flask, no auth, no data).

Imports: the standard library, gevent's ``get_original`` (a native thread in a
monkey-patched process), structlog and horde.health / horde.protocol.
"""

from __future__ import annotations

import _socket
import time
from http import HTTPStatus

import structlog
from gevent.monkey import get_original

from horde.health import HealthSettings, Probe, answer
from horde.protocol.errors import ConfigError

__all__ = ["HealthServer", "response", "serve_health"]

log = structlog.get_logger("horde")
_start_native_thread = get_original("_thread", "start_new_thread")

ACCEPT_WAIT = 0.5
"""How often the thread looks up from ``accept`` to see whether it should stop (seconds)."""
READ_WAIT = 1.0
"""Longest a client gets to send its request head (seconds; a kubelet sends it at once)."""
MAX_REQUEST = 4096
"""The most bytes of a request head read."""
BACKLOG = 16


def response(status: int, body: str, *, head_only: bool = False) -> bytes:
    """The bytes of one plain-text HTTP/1.1 answer that closes the connection."""
    payload = (body + "\n").encode()
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(payload)}",
        "Cache-Control: no-store",
        "Connection: close",
    ]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return head if head_only else head + payload


class HealthServer:
    """``/healthz`` and ``/readyz`` on their own port; nothing runs until :meth:`start`."""

    def __init__(self, settings: HealthSettings, live: Probe, ready: Probe) -> None:
        self.settings = settings
        self.live = live
        self.ready = ready
        self.port: int | None = None
        """The bound port, once started."""
        self._listener: _socket.socket | None = None
        self._stopping = False

    def start(self) -> int:
        """Bind and listen (a :class:`ConfigError` if it cannot), start the thread; return
        the port."""
        host, port = self.settings.host, self.settings.port or 0
        family = _socket.AF_INET6 if ":" in host else _socket.AF_INET
        listener = _socket.socket(family, _socket.SOCK_STREAM)
        try:
            listener.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
            listener.listen(BACKLOG)
        except OSError as exc:
            listener.close()
            raise ConfigError(f"--health-port: cannot listen on {host}:{port}: {exc}") from None
        listener.settimeout(ACCEPT_WAIT)
        self._listener = listener
        self.port = int(listener.getsockname()[1])
        _start_native_thread(self._serve, (listener,))
        log.info("health endpoints", url=f"http://{host}:{self.port}/healthz", ready="/readyz")
        return self.port

    def stop(self) -> None:
        """Stop serving (the thread closes its socket within :data:`ACCEPT_WAIT`)."""
        self._stopping = True

    def _serve(self, listener: _socket.socket) -> None:
        try:
            while not self._stopping:
                try:
                    fd, _ = listener._accept()  # type: ignore[attr-defined]  # C-level: no stub
                except TimeoutError:
                    continue
                except OSError:
                    time.sleep(ACCEPT_WAIT)  # out of descriptors: let it pass
                    continue
                self._handle(_socket.socket(fileno=fd))
        finally:
            listener.close()

    def _handle(self, conn: _socket.socket) -> None:
        """Read one request head, answer it, close."""
        try:
            conn.settimeout(READ_WAIT)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < MAX_REQUEST:
                chunk = conn.recv(MAX_REQUEST - len(head))
                if not chunk:
                    break
                head += chunk
            line = head.partition(b"\r\n")[0].decode("latin-1")
            status, body = answer(line, self.live, self.ready)
            conn.sendall(response(status, body, head_only=line.startswith("HEAD ")))
            conn.shutdown(_socket.SHUT_WR)
        except OSError:
            pass  # a client that went away or never finished its request: nothing to say
        finally:
            conn.close()


def serve_health(settings: HealthSettings | None, live: Probe, ready: Probe) -> HealthServer | None:
    """A started :class:`HealthServer` when ``--health-port`` asks for one, else None."""
    if settings is None or not settings.enabled:
        return None
    server = HealthServer(settings, live, ready)
    server.start()
    return server
