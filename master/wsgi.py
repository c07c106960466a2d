"""gevent's WSGI server with TCP_NODELAY on every connection, and optional TLS.

pywsgi writes a response's headers and body in separate sends; without TCP_NODELAY,
Nagle's algorithm and the client's delayed ACK add about 40 ms to every keep-alive
response after the first. Used by the master's HTTP shim and by the demo target.

TLS: :func:`start_server` takes a certificate chain and a private key, loads them before
binding (:func:`tls_context`), so a missing, unreadable, encrypted or mismatched file is a
:class:`~horde.protocol.errors.ConfigError` at start rather than a failure on the first
connection. A client that fails the handshake (plain HTTP on the TLS port, a scanner, a
stalled peer) has its connection closed quietly after at most :data:`HANDSHAKE_TIMEOUT`.

Imports: the standard library, gevent and horde.protocol.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
from typing import Any

from gevent import ssl as gevent_ssl
from gevent.pywsgi import WSGIHandler, WSGIServer

from horde.protocol.errors import ConfigError

__all__ = [
    "HANDSHAKE_TIMEOUT",
    "HordeWSGIServer",
    "NoDelayHandler",
    "start_server",
    "tls_context",
]

HANDSHAKE_TIMEOUT = 10.0
"""Seconds a client gets to complete the TLS handshake before its connection is closed."""

PathLike = str | os.PathLike[str]


class NoDelayHandler(WSGIHandler):
    """A pywsgi handler that turns Nagle's algorithm off for its connection."""

    def handle(self) -> None:
        """Set TCP_NODELAY, then serve the connection as pywsgi does."""
        with contextlib.suppress(OSError):  # not a TCP socket (a Unix socket, say)
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle()


class HordeWSGIServer(WSGIServer):
    """pywsgi's server, with a bounded, quiet TLS handshake.

    gevent's own TLS path lets a failed handshake escape to the hub, which prints a
    traceback for every plain-HTTP probe, and waits for a silent client forever.
    """

    def wrap_socket_and_handle(self, client_socket: Any, address: Any) -> Any:
        """Handshake within :data:`HANDSHAKE_TIMEOUT`, then serve; close on failure."""
        try:
            client_socket.settimeout(HANDSHAKE_TIMEOUT)
            tls_socket = self.wrap_socket(client_socket, **self.ssl_args)
        except OSError:  # ssl.SSLError, a reset, or the handshake timing out
            with contextlib.suppress(OSError):
                client_socket.close()
            return None
        with contextlib.closing(tls_socket):
            tls_socket.settimeout(None)  # pywsgi's plain connections block, so do these
            return self.handle(tls_socket, address)


def _refuse_password() -> bytes:
    """``load_cert_chain``'s password callback: an encrypted key is a configuration error."""
    raise ConfigError("the TLS private key is encrypted; horde needs an unencrypted key file")


def tls_context(
    certfile: PathLike | None, keyfile: PathLike | None
) -> gevent_ssl.SSLContext | None:
    """A server TLS context loaded from ``certfile`` and ``keyfile``; None if both are None.

    Raises ConfigError when only one is given, a file is missing, or the pair does not
    load (not PEM, encrypted, or a key that does not match the certificate).
    """
    if certfile is None and keyfile is None:
        return None
    if certfile is None or keyfile is None:
        given, missing = ("key", "certificate") if certfile is None else ("certificate", "key")
        raise ConfigError(
            f"TLS needs both a certificate (--tls-cert) and a private key (--tls-key); "
            f"got a {given} without a {missing}"
        )
    for what, path in (("certificate", certfile), ("private key", keyfile)):
        if not os.path.isfile(path):
            raise ConfigError(f"TLS {what} file {os.fspath(path)!r} does not exist")
    context = gevent_ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile, keyfile, password=_refuse_password)
    except OSError as exc:  # ssl.SSLError (bad PEM, mismatch) or an unreadable file
        raise ConfigError(
            f"cannot load the TLS certificate {os.fspath(certfile)!r} with the key "
            f"{os.fspath(keyfile)!r}: {exc}"
        ) from None
    return context


def start_server(
    host: str,
    port: int,
    app: Any,
    *,
    certfile: PathLike | None = None,
    keyfile: PathLike | None = None,
    **kwargs: Any,
) -> WSGIServer:
    """Start serving ``app`` on ``host:port`` (0 picks a free port); returns the server.

    With ``certfile`` and ``keyfile`` the server speaks HTTPS only; both are loaded before
    the port is bound (ConfigError if they cannot be). Other keyword arguments go to
    :class:`~gevent.pywsgi.WSGIServer`.
    """
    context = tls_context(certfile, keyfile)
    if context is not None:
        kwargs["ssl_context"] = context
    options: dict[str, Any] = {"log": None, "handler_class": NoDelayHandler, **kwargs}
    server = HordeWSGIServer((host, port), app, **options)
    server.start()
    return server
