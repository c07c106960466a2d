"""gevent's WSGI server with TCP_NODELAY on every connection.

pywsgi writes a response's headers and body in separate sends; without TCP_NODELAY,
Nagle's algorithm and the client's delayed ACK add about 40 ms to every keep-alive
response after the first. Used by the master's HTTP shim and by the demo target.

Imports: the standard library and gevent.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

from gevent.pywsgi import WSGIHandler, WSGIServer


class NoDelayHandler(WSGIHandler):
    """A pywsgi handler that turns Nagle's algorithm off for its connection."""

    def handle(self) -> None:
        """Set TCP_NODELAY, then serve the connection as pywsgi does."""
        with contextlib.suppress(OSError):  # not a TCP socket (a Unix socket, say)
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle()


def start_server(host: str, port: int, app: Any, **kwargs: Any) -> WSGIServer:
    """Start serving ``app`` on ``host:port`` (0 picks a free port); returns the server."""
    server = WSGIServer((host, port), app, log=None, handler_class=NoDelayHandler, **kwargs)
    server.start()
    return server
