"""The master's ROUTER socket: bind, receive ``(identity, payload)``, send to one worker.

ZeroMQ errors become :class:`TransportError` subclasses, so loops catch one family.
The kernel drops connections whose peer vanished (``horde.protocol.link``), which frees
the identity for a worker that reconnects after a link cut. ``ROUTER_HANDOVER`` stays
off: with it on, any peer presenting a known identity would take over that worker's
route (a hijack); with it off, a duplicate identity is refused while the original
connection lives.
``ROUTER_MANDATORY`` is on, so a send to a worker that is gone raises instead of
vanishing silently.

Given :class:`~horde.protocol.security.ServerKeys`, the socket is a CURVE server: a
:class:`~horde.master.zap.ZapHandler` (started before the bind) admits only the allowed
keys, and every received message is judged by a :class:`~horde.master.keybind.KeyGate`
on the key it came under (its ``User-Id``) before anything reads it; a refused one is
reported to ``on_refused`` and never returned.

Imports: zmq.green (this module runs on the master's gevent loop), gevent's timeout for a
receive that waits at most so long, zmq's plain socket methods for calls that never wait,
structlog, horde.master (zap, keybind) and horde.protocol.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gevent
import structlog
import zmq as _zmq
import zmq.green as zmq

from horde.master.keybind import KeyGate
from horde.master.zap import ZAP_DOMAIN, ZapHandler
from horde.protocol.errors import ReceiveError, SendError, TransportError
from horde.protocol.link import apply_link_options
from horde.protocol.security import ServerKeys, fingerprint

log = structlog.get_logger("horde.master")

#: Messages queued per peer before sends to it fail fast (a slow worker cannot grow us).
DEFAULT_SEND_HWM = 1000
DEFAULT_RECV_HWM = 100_000
#: Longest a waiting receive trusts gevent's readiness signal before it looks again. A
#: non-blocking send can consume libzmq's edge-triggered signal; zmq.green's own default
#: (11.6 s) would then stall the receive loop, this bounds the stall.
WAIT_RECHECK = 0.05

# zmq.green wraps every call in readiness bookkeeping (about 20 µs a message); sends and
# the draining of already queued messages never wait, so they use the plain calls (1-2 µs).
_raw_recv = _zmq.backend.Socket.recv
_raw_send = _zmq.backend.Socket.send
_raw_get = _zmq.backend.Socket.get
_NOBLOCK = zmq.NOBLOCK
_SNDMORE = zmq.SNDMORE
_RCVMORE = zmq.RCVMORE


class RouterTransport:
    """A bound ROUTER socket; nothing happens until :meth:`open`."""

    def __init__(
        self,
        bind: str,
        *,
        max_frame: int,
        context: zmq.Context | None = None,
        curve: ServerKeys | None = None,
        on_refused: Callable[[bytes, str], None] = lambda identity, reason: None,
        on_handshake_refused: Callable[[], None] = lambda: None,
    ) -> None:
        self._bind = bind
        self._max_frame = max_frame
        self._context = context
        self._socket: zmq.Socket | None = None
        self.endpoint = ""
        self.curve = curve
        self.zap = (
            ZapHandler(curve.allow, on_reject=on_handshake_refused) if curve is not None else None
        )
        """The ZAP handler of a CURVE transport (None on a plain one)."""
        self.gate = KeyGate(self._allowed) if curve is not None else None
        """Which key may speak for which identity (None on a plain transport)."""
        self._on_refused = on_refused

    def _allowed(self) -> frozenset[str]:
        return self.zap.allowed if self.zap is not None else frozenset()

    def open(self) -> str:
        """Bind the socket and return the endpoint actually bound (port resolved)."""
        context = self._context or zmq.Context.instance()
        if self.zap is not None:
            self.zap.start(context)
        sock = context.socket(zmq.ROUTER)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            if self.curve is not None:
                sock.setsockopt(zmq.CURVE_SERVER, 1)
                sock.setsockopt_string(zmq.CURVE_SECRETKEY, self.curve.secret)
                sock.setsockopt_string(zmq.CURVE_PUBLICKEY, self.curve.public)
                sock.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN)
                sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)  # no handler: refuse, not admit
            sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
            sock.setsockopt(zmq.SNDHWM, DEFAULT_SEND_HWM)
            sock.setsockopt(zmq.RCVHWM, DEFAULT_RECV_HWM)
            apply_link_options(sock, zmq)
            # Twice the codec's limit: the codec counts and logs the oversize frames it
            # sees; only grossly oversized ones are cut off at the socket.
            sock.setsockopt(zmq.MAXMSGSIZE, 2 * self._max_frame)
            if self._bind.endswith(":0"):
                port = sock.bind_to_random_port(self._bind[: -len(":0")])
                self.endpoint = f"{self._bind[: -len(':0')]}:{port}"
            else:
                sock.bind(self._bind)
                self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            if self.zap is not None:
                self.zap.stop()
            raise TransportError(f"cannot bind {self._bind}: {exc}") from exc
        sock._gevent_bug_timeout = WAIT_RECHECK
        self._socket = sock
        return self.endpoint

    @property
    def port(self) -> int:
        """The TCP port bound."""
        return int(self.endpoint.rsplit(":", 1)[1])

    def recv(self) -> list[bytes]:
        """Wait for the next message; return its frames (identity first)."""
        if self._socket is None:
            raise ReceiveError("transport is not open")
        while True:
            try:
                if self.gate is None:
                    return self._socket.recv_multipart(copy=True)
                frames = self._admitted(self._socket.recv_multipart(copy=False))
            except zmq.ZMQError as exc:
                raise ReceiveError(f"receive failed: {exc}") from exc
            if frames is not None:
                return frames

    def pending(self) -> bool:
        """Whether a message is queued for :meth:`recv_many` now (never waits).

        Asked through zmq.green's ``get``, which then wakes a receive waiting on the
        socket: reading ``EVENTS`` can consume libzmq's edge-triggered signal that the
        receive waits for. (``getsockopt`` is pyzmq's plain ``get``, which wakes nothing:
        the receive would then sleep until :data:`WAIT_RECHECK`.)
        """
        sock: Any = self._socket
        if sock is None:
            return False
        try:
            events: Any = sock.get(zmq.EVENTS)
            return bool(events & zmq.POLLIN)
        except zmq.ZMQError:
            return False

    def recv_many(self, limit: int, timeout: float | None = None) -> list[list[bytes]]:
        """Wait for the next message; return it and up to ``limit - 1`` more already queued.

        With a ``timeout`` (seconds) it waits at most that long, and returns an empty list
        if nothing came.
        """
        if self._socket is None:
            raise ReceiveError("transport is not open")
        batch = self._drain(limit)
        if batch or (timeout is not None and timeout <= 0):
            return batch
        try:
            with gevent.Timeout(timeout, False):  # None: no limit; on expiry, nothing came
                if self.gate is None:
                    batch.append(self._socket.recv_multipart(copy=True))
                else:  # a refused message ends the wait like a timeout
                    frames = self._admitted(self._socket.recv_multipart(copy=False))
                    if frames is not None:
                        batch.append(frames)
        except zmq.ZMQError as exc:
            raise ReceiveError(f"receive failed: {exc}") from exc
        if batch:
            batch += self._drain(limit - 1)
        return batch

    def _drain(self, limit: int) -> list[list[bytes]]:
        """Up to ``limit`` messages that are queued now, without waiting (on a CURVE socket,
        each judged by the key it came under: a refused one is left out)."""
        sock: Any = self._socket
        judged = self.gate is not None
        copy = not judged  # a judged message's frames are read with their properties
        batch: list[Any] = []
        try:
            while len(batch) < limit:
                frames: Any = [_raw_recv(sock, _NOBLOCK, copy)]
                while _raw_get(sock, _RCVMORE):
                    frames.append(_raw_recv(sock, _NOBLOCK, copy))
                if judged:
                    frames = self._admitted(frames)
                    if frames is None:
                        continue
                batch.append(frames)
        except zmq.Again:
            pass
        except zmq.ZMQError as exc:
            if not batch:
                raise ReceiveError(f"receive failed: {exc}") from exc
        return batch

    def _admitted(self, parts: list[Any]) -> list[bytes] | None:
        """A received message's frames if its key may speak for its identity, else None."""
        gate: Any = self.gate
        frames = [part.bytes for part in parts]
        key = parts[-1].get("User-Id")
        reason = gate.judge(frames[0], key, time.monotonic())
        if gate.bound:
            for identity, bound in gate.bound:
                log.info(
                    "worker key", worker=identity.decode("utf-8", "replace"), key=fingerprint(bound)
                )
            gate.bound.clear()
        if reason is None:
            return frames
        self._on_refused(frames[0], reason)
        return None

    def send(self, identity: str, payload: bytes) -> None:
        """Send ``payload`` to the worker whose socket identity is ``identity``."""
        sock: Any = self._socket
        if sock is None:
            raise SendError("transport is not open")
        try:
            _raw_send(sock, identity.encode(), _NOBLOCK | _SNDMORE)
            _raw_send(sock, payload, _NOBLOCK)
        except zmq.ZMQError as exc:
            raise SendError(f"send to {identity} failed: {exc}") from exc

    def close(self) -> None:
        """Close the socket; later sends and receives raise ``TransportError``."""
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        if self.zap is not None:
            self.zap.stop()
