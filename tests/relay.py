"""A TCP relay for tests, between ZeroMQ peers on loopback: it records, cuts and tampers.

:class:`Relay` listens on a free 127.0.0.1 port and forwards each connection it accepts to
the target port (a master's ZeroMQ port), in one thread with a selector loop. It

- records every byte of both directions, for the relay's whole life
  (:attr:`Relay.upstream`: client to target, :attr:`Relay.downstream`: target to client,
  and per connection in :attr:`Relay.connections`);
- cuts: :meth:`Relay.cut` closes every current connection and closes each new one at once
  until :meth:`Relay.restore`, so a client is cut off from the target and later comes back;
- tampers: :meth:`Relay.tamper_next_upstream` flips one bit in the last byte of the body of
  the next upstream ZeroMQ *message* frame. The relay follows each connection's ZMTP 3
  framing (the 64-byte greeting, then frames of a flags byte, a 1- or 8-byte size and a
  body), so the flip never lands in the greeting, a handshake command or a frame header:
  only in a message frame's body, or with CURVE in the encrypted box of a ``MESSAGE``
  command. :attr:`Relay.tampered` reports each flip.

Everything is bounded: sends time out, the loop wakes at least every 50 ms, and
:meth:`Relay.close` (or leaving the ``with`` block) closes every socket and joins the thread.

Imports: the standard library only.
"""

from __future__ import annotations

import selectors
import socket
import threading
from dataclasses import dataclass, field
from types import TracebackType

GREETING = 64
"""Bytes of a ZMTP 3 greeting, before the first frame."""
_LONG = 0x02
_COMMAND = 0x04
_CURVE_MESSAGE = b"\x07MESSAGE"
"""The start of a CURVE ``MESSAGE`` command's body: the frames that carry messages."""
_TICK = 0.05
_SEND_TIMEOUT = 5.0


@dataclass(frozen=True)
class Tamper:
    """One flip: the connection, the byte's offset in its upstream, the frame body's size."""

    connection: int
    offset: int
    body_size: int


@dataclass
class Connection:
    """One relayed connection: its two sockets, its bytes, and who closed it."""

    index: int
    client: socket.socket
    server: socket.socket
    up: bytearray = field(default_factory=bytearray)
    down: bytearray = field(default_factory=bytearray)
    closed_by: str | None = None
    """``"client"``, ``"target"`` (the end that closed first), ``"cut"`` or ``"relay"``."""
    _next_frame: int = GREETING
    _flip: Tamper | None = None

    def message_bodies(self) -> list[tuple[int, int]]:
        """(start, end) of each upstream message body whose header arrived since last asked."""
        data, found = self.up, []
        while len(data) >= self._next_frame + 2:
            pos = self._next_frame
            flags = data[pos]
            if flags & _LONG:
                if len(data) < pos + 9:
                    break
                size, start = int.from_bytes(data[pos + 1 : pos + 9], "big"), pos + 9
            else:
                size, start = data[pos + 1], pos + 2
            command = flags & _COMMAND
            if command and len(data) < start + min(size, len(_CURVE_MESSAGE)):
                break  # its name is not here yet
            if not command or data[start : start + len(_CURVE_MESSAGE)] == _CURVE_MESSAGE:
                found.append((start, start + size))
            self._next_frame = start + size
        return found


class Relay:
    """Forwards ``127.0.0.1:port`` to ``127.0.0.1:target_port``; use as a context manager."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.connections: list[Connection] = []
        self.tampered: list[Tamper] = []
        self.refused = 0
        """Connections closed at once because the relay was cut."""
        self._lock = threading.Lock()
        self._cut = False
        self._closing = False
        self._tamper_min_body: int | None = None
        self._tamper_done = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._run, name="test-relay", daemon=True)

    @property
    def endpoint(self) -> str:
        """``host:port`` for a worker's ``--master``."""
        return f"127.0.0.1:{self.port}"

    @property
    def upstream(self) -> bytes:
        """Every byte clients sent, all connections in order of acceptance."""
        with self._lock:
            return b"".join(bytes(c.up) for c in self.connections)

    @property
    def downstream(self) -> bytes:
        """Every byte the target sent, all connections in order of acceptance."""
        with self._lock:
            return b"".join(bytes(c.down) for c in self.connections)

    def open_connections(self) -> list[Connection]:
        """Connections still relaying."""
        with self._lock:
            return [c for c in self.connections if c.closed_by is None]

    def cut(self) -> None:
        """Close every connection now and each new one at once, until :meth:`restore`."""
        with self._lock:
            self._cut = True
            for conn in self.connections:
                self._close(conn, "cut")

    def restore(self) -> None:
        """Relay new connections again."""
        with self._lock:
            self._cut = False

    def tamper_next_upstream(self, min_body: int = 0) -> threading.Event:
        """Flip a bit in the next upstream message body of at least ``min_body`` bytes.

        Returns an event set once the flip has been forwarded (see :attr:`tampered`).
        """
        with self._lock:
            self._tamper_done.clear()
            self._tamper_min_body = min_body
        return self._tamper_done

    # --- the loop -----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._closing:
            for key, _ in self._selector.select(_TICK):
                with self._lock:
                    if key.fileobj is self._listener:
                        self._accept()
                    elif key.data[0].closed_by is None:  # not cut since select returned
                        self._forward(*key.data)

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        if self._cut:
            self.refused += 1
            client.close()
            return
        try:
            server = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
        except OSError:
            client.close()
            return
        conn = Connection(len(self.connections), client, server)
        self.connections.append(conn)
        for sock, upward in ((client, True), (server, False)):
            sock.settimeout(_SEND_TIMEOUT)
            self._selector.register(sock, selectors.EVENT_READ, (conn, upward))

    def _forward(self, conn: Connection, upward: bool) -> None:
        source, sink = (conn.client, conn.server) if upward else (conn.server, conn.client)
        try:
            chunk = bytearray(source.recv(65536))
        except OSError:
            chunk = bytearray()
        if not chunk:
            self._close(conn, "client" if upward else "target")
            return
        if upward:
            start = len(conn.up)
            conn.up += chunk
            self._tamper(conn, start, chunk)
        else:
            conn.down += chunk
        try:
            sink.sendall(chunk)
        except OSError:
            self._close(conn, "target" if upward else "client")

    def _tamper(self, conn: Connection, start: int, chunk: bytearray) -> None:
        """Flip the armed bit if it falls in ``chunk``, which sits at ``start`` in ``conn.up``."""
        for body_start, body_end in conn.message_bodies():
            size = body_end - body_start
            if (
                self._tamper_min_body is not None
                and conn._flip is None
                and size >= self._tamper_min_body
            ):
                conn._flip = Tamper(conn.index, body_end - 1, size)
                self._tamper_min_body = None
        flip = conn._flip
        if flip is not None and start <= flip.offset < start + len(chunk):
            chunk[flip.offset - start] ^= 0x01
            conn._flip = None
            self.tampered.append(flip)
            self._tamper_done.set()

    def _close(self, conn: Connection, by: str) -> None:
        if conn.closed_by is not None:
            return
        conn.closed_by = by
        for sock in (conn.client, conn.server):
            self._selector.unregister(sock)
            sock.close()

    # --- life -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close every socket and stop the thread."""
        self._closing = True
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        with self._lock:
            for conn in self.connections:
                self._close(conn, "relay")
        self._selector.close()
        self._listener.close()

    def __enter__(self) -> Relay:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
