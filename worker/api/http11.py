"""A lean HTTP/1.1 keep-alive connection on gevent sockets: what ``HttpSession`` sends on.

:class:`Connection` talks to one (scheme, host, port): it connects (TLS through
``gevent.ssl`` for https) with a connection timeout, sends one request as bytes built by the
caller, and reads one whole response under a network timeout: the status line, the headers
(a case-insensitive :class:`Headers`), and a body delimited by Content-Length, chunked
transfer-encoding or the connection's close; HEAD, 1xx, 204 and 304 responses have none.
The connection stays open unless the server (or HTTP/1.0) says otherwise.

A reused connection that the server closed while it was idle fails before any byte of the
response arrives; :meth:`Connection.exchange` raises :class:`StaleConnection` then, so the
caller retries once on a fresh connection. A response that breaks the protocol raises
:class:`BadResponse`. Nothing here decodes content encodings or follows redirects.

Imports: the standard library and gevent.
"""

from __future__ import annotations

import _socket
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any

import gevent
import gevent.socket
import gevent.ssl
from gevent.hub import Waiter

__all__ = [
    "MAX_HEADER_BYTES",
    "BadResponse",
    "Connection",
    "Headers",
    "RawResponse",
    "StaleConnection",
    "tls_context",
]

MAX_HEADER_BYTES = 65536
"""The longest status line plus header block accepted."""
RECV_SIZE = 65536
_NO_BODY_STATUS = frozenset({204, 304})


class BadResponse(Exception):
    """The server's answer is not valid HTTP/1.x (recorded as a failed request)."""


class StaleConnection(ConnectionError):
    """A reused keep-alive connection was closed before any byte of the response came."""


class Headers(MutableMapping[str, str]):
    """Header fields with case-insensitive names; repeated fields join with ", ".

    Iteration gives the names as they were first written. :meth:`get_all` gives every
    value of a repeated field (``Set-Cookie``), as ``email.message.Message`` does.
    """

    __slots__ = ("_multi", "_store")

    def __init__(
        self, fields: Iterable[tuple[str, str]] | MutableMapping[str, str] | None = None
    ) -> None:
        self._store: dict[str, tuple[str, str]] = {}
        self._multi: dict[str, list[str]] | None = None
        if fields is not None:
            pairs = fields.items() if isinstance(fields, MutableMapping | dict) else fields
            for name, value in pairs:
                self.add(name, value)

    def add(self, name: str, value: str) -> None:
        """Append a field; a repeated name keeps every value (see :meth:`get_all`)."""
        key = name.lower()
        seen = self._store.get(key)
        if seen is None:
            self._store[key] = (name, value)
            return
        if self._multi is None:
            self._multi = {}
        self._multi.setdefault(key, [seen[1]]).append(value)
        self._store[key] = (seen[0], f"{seen[1]}, {value}")

    def get_all(self, name: str, default: list[str] | None = None) -> list[str] | None:
        """Every value of field ``name`` (``default`` if absent)."""
        key = name.lower()
        if self._multi is not None and key in self._multi:
            return list(self._multi[key])
        seen = self._store.get(key)
        return default if seen is None else [seen[1]]

    def __getitem__(self, name: str) -> str:
        return self._store[name.lower()][1]

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        """The value of ``name`` (joined if repeated), else ``default``."""
        seen = self._store.get(name.lower())
        return default if seen is None else seen[1]

    def __setitem__(self, name: str, value: str) -> None:
        key = name.lower()
        self._store[key] = (name, value)
        if self._multi is not None:
            self._multi.pop(key, None)

    def __delitem__(self, name: str) -> None:
        key = name.lower()
        del self._store[key]
        if self._multi is not None:
            self._multi.pop(key, None)

    def discard(self, name: str) -> None:
        """Remove ``name`` if present."""
        if name.lower() in self._store:
            del self[name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._store

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._store.values())

    def __len__(self) -> int:
        return len(self._store)

    def __repr__(self) -> str:
        return f"Headers({list(self._store.values())!r})"


class RawResponse:
    """One response as read off the wire (body still content-encoded)."""

    __slots__ = ("body", "headers", "keep_alive", "reason", "status")

    def __init__(
        self, status: int, reason: str, headers: Headers, body: bytes, keep_alive: bool
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive


_contexts: dict[bool, gevent.ssl.SSLContext] = {}


def tls_context(insecure: bool) -> gevent.ssl.SSLContext:
    """The shared client TLS context: verifying, or not checking certificates at all."""
    context = _contexts.get(insecure)
    if context is None:
        # gevent's own SSLContext class: the stdlib one (which create_default_context
        # returns in an unpatched process) would block the whole hub during a handshake
        context = gevent.ssl.SSLContext(gevent.ssl.PROTOCOL_TLS_CLIENT)
        if insecure:
            context.check_hostname = False
            context.verify_mode = gevent.ssl.CERT_NONE
        else:
            context.load_default_certs()
        _contexts[insecure] = context
    return context


def _parse_head(head: str) -> tuple[str, int, str, Headers]:
    """Version, status, reason and headers from a status line and header block."""
    lines = head.split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if (
        not version.startswith("HTTP/1.")
        or len(code) != 3
        or not (code.isascii() and code.isdigit())
    ):
        raise BadResponse(f"malformed status line: {lines[0][:100]!r}")
    headers = Headers()
    store = headers._store
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name[-1] in " \t":
            raise BadResponse(f"malformed header line: {line[:100]!r}")
        value = value.strip()
        key = name.lower()
        if key in store:
            headers.add(name, value)
        else:
            store[key] = (name, value)
    return version, int(code), reason, headers


class Connection:
    """One keep-alive connection to ``host:port`` (TLS with ``tls``); opens on first use.

    Plain connections skip gevent's socket wrapper on the hot path: the socket is a
    non-blocking ``_socket.socket`` and a blocked read or write parks the greenlet on this
    connection's own io watchers, with one reusable timer for the network timeout (gevent's
    socket starts a new ``Timeout`` object for every wait). TLS connections use gevent's
    SSL socket.
    """

    __slots__ = (
        "_buf",
        "_raw",
        "_reader",
        "_sock",
        "_timer",
        "_writer",
        "connection_timeout",
        "host",
        "network_timeout",
        "port",
        "requests",
        "tls",
    )

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: gevent.ssl.SSLContext | None = None,
        connection_timeout: float | None = None,
        network_timeout: float | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.connection_timeout = connection_timeout
        self.network_timeout = network_timeout
        self.requests = 0  # exchanges completed on the current socket
        self._sock: Any = None  # gevent's SSL socket, for TLS
        self._raw: _socket.socket | None = None  # a non-blocking plain socket
        self._reader: Any = None
        self._writer: Any = None
        self._timer: Any = None
        self._buf = bytearray()

    @property
    def is_open(self) -> bool:
        """Whether a socket is open (it may still have been closed by the peer)."""
        return self._sock is not None or self._raw is not None

    def close(self) -> None:
        """Close the socket; the next exchange opens a new one."""
        self.requests = 0
        self._buf.clear()
        for watcher in (self._reader, self._writer, self._timer):
            if watcher is not None:
                watcher.stop()
                watcher.close()
        self._reader = self._writer = self._timer = None
        sock, self._sock = self._sock, None
        raw, self._raw = self._raw, None
        if sock is not None:
            sock.close()
        if raw is not None:
            raw.close()

    def _connect(self) -> None:
        sock = gevent.socket.create_connection((self.host, self.port), self.connection_timeout)
        try:
            sock.setsockopt(gevent.socket.IPPROTO_TCP, gevent.socket.TCP_NODELAY, 1)
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_hostname=self.host)
                sock.settimeout(self.network_timeout)
                self._sock = sock
                return
            raw = _socket.socket(fileno=sock.detach())
        except BaseException:
            sock.close()
            raise
        raw.setblocking(False)
        loop = gevent.get_hub().loop
        self._reader = loop.io(raw.fileno(), 1)
        self._writer = loop.io(raw.fileno(), 2)
        if self.network_timeout is not None:
            self._timer = loop.timer(self.network_timeout)
        self._raw = raw

    def _wait(self, watcher: Any) -> None:
        """Park the greenlet until ``watcher`` fires, or raise ``TimeoutError``."""
        waiter = Waiter()
        watcher.start(waiter.switch, None)
        timer = self._timer
        if timer is not None:
            timer.start(self._time_out, waiter)
        try:
            waiter.get()
        finally:
            watcher.stop()
            if timer is not None:
                timer.stop()

    def _time_out(self, waiter: Waiter) -> None:
        waiter.throw(TimeoutError(f"no network activity for {self.network_timeout} s"))

    def _recv(self) -> bytes:
        raw = self._raw
        if raw is None:
            return bytes(self._sock.recv(RECV_SIZE))
        while True:
            try:
                return raw.recv(RECV_SIZE)
            except BlockingIOError:
                self._wait(self._reader)

    def _sendall(self, data: bytes) -> None:
        raw = self._raw
        if raw is None:
            self._sock.sendall(data)
            return
        view = memoryview(data)
        sent = 0
        while sent < len(data):
            try:
                sent += raw.send(view[sent:])
            except BlockingIOError:
                self._wait(self._writer)

    def exchange(
        self,
        request: bytes,
        head_only: bool = False,
        on_head: Callable[[], object] | None = None,
    ) -> RawResponse:
        """Send ``request`` (head and body) and read the whole response.

        ``head_only`` (a HEAD request) means the response has no body; ``on_head`` is called
        once the final response's head is read, before its body. Raises
        :class:`StaleConnection` if a reused connection turns out closed before the
        response starts, :class:`BadResponse` for a malformed answer, ``OSError`` for
        socket failures and timeouts. The connection is closed on any error.
        """
        try:
            response = self._exchange(request, head_only, on_head)
        except BaseException:
            self.close()
            raise
        if response.keep_alive:
            self.requests += 1
        else:
            self.close()
        return response

    def _exchange(
        self, request: bytes, head_only: bool, on_head: Callable[[], object] | None
    ) -> RawResponse:
        reused = self.is_open
        if not reused:
            self._connect()
        try:
            self._sendall(request)
        except (BrokenPipeError, ConnectionResetError) as exc:
            if reused:
                raise StaleConnection(str(exc)) from exc
            raise
        while True:
            version, status, reason, headers = self._read_head(reused)
            if status >= 200 or status == 101:
                break
            reused = False  # an interim 1xx response: the final one follows
        if on_head is not None:
            on_head()
        keep_alive = status != 101 and self._keeps_alive(version, headers)
        if head_only or status < 200 or status in _NO_BODY_STATUS:
            body = b""
        elif "chunked" in (headers.get("transfer-encoding") or "").lower():
            body = self._read_chunked()
        else:
            length = headers.get("content-length")
            if length is not None:
                body = self._read_exact(_content_length(length))
            else:
                body = self._read_to_close()
                keep_alive = False
        return RawResponse(status, reason, headers, body, keep_alive)

    @staticmethod
    def _keeps_alive(version: str, headers: Headers) -> bool:
        connection = headers.get("connection")
        if connection is None:
            return version == "HTTP/1.1"
        tokens = connection.lower()
        if "close" in tokens:
            return False
        return version == "HTTP/1.1" or "keep-alive" in tokens

    def _read_head(self, reused: bool) -> tuple[str, int, str, Headers]:
        buf = self._buf
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(buf) > MAX_HEADER_BYTES:
                raise BadResponse(f"response head longer than {MAX_HEADER_BYTES} bytes")
            try:
                chunk = self._recv()
            except ConnectionResetError as exc:
                if reused and not buf:
                    raise StaleConnection(str(exc)) from exc
                raise
            if not chunk:
                if reused and not buf:
                    raise StaleConnection("connection closed before the response")
                raise BadResponse("connection closed before the response head ended")
            buf += chunk
        head = buf[:end].decode("latin-1")
        del buf[: end + 4]
        return _parse_head(head)

    def _read_exact(self, length: int) -> bytes:
        buf = self._buf
        while len(buf) < length:
            chunk = self._recv()
            if not chunk:
                raise BadResponse(f"connection closed {length - len(buf)} bytes before the end")
            buf += chunk
        body = bytes(buf[:length])
        del buf[:length]
        return body

    def _read_line(self) -> bytes:
        buf = self._buf
        while True:
            end = buf.find(b"\r\n")
            if end >= 0:
                line = bytes(buf[:end])
                del buf[: end + 2]
                return line
            if len(buf) > MAX_HEADER_BYTES:
                raise BadResponse("chunk-size line too long")
            chunk = self._recv()
            if not chunk:
                raise BadResponse("connection closed inside a chunked body")
            buf += chunk

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            line = self._read_line()
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise BadResponse(f"malformed chunk size {line[:40]!r}") from None
            if size < 0:
                raise BadResponse(f"malformed chunk size {line[:40]!r}")
            if size == 0:
                while self._read_line():  # trailer fields, up to the empty line
                    pass
                return b"".join(parts)
            parts.append(self._read_exact(size))
            if self._read_exact(2) != b"\r\n":
                raise BadResponse("chunk not followed by CRLF")

    def _read_to_close(self) -> bytes:
        buf = self._buf
        while True:
            chunk = self._recv()
            if not chunk:
                break
            buf += chunk
        body = bytes(buf)
        buf.clear()
        return body


def _content_length(text: str) -> int:
    values = {part.strip() for part in text.split(",")}
    if len(values) != 1:
        raise BadResponse(f"conflicting Content-Length {text!r}")
    value = values.pop()
    if not (value.isascii() and value.isdigit()):
        raise BadResponse(f"malformed Content-Length {text!r}")
    return int(value)
