"""The master's ROUTER socket: bind, receive ``(identity, payload)``, send to one worker.

ZeroMQ errors become :class:`TransportError` subclasses, so loops catch one family.
ZMTP heartbeats drop connections whose peer vanished, which frees the identity for a
worker that reconnects after a link cut. ``ROUTER_HANDOVER`` stays off: with it on, any
peer presenting a known identity would take over that worker's route (a hijack); with it
off, a duplicate identity is refused while the original connection lives.
``ROUTER_MANDATORY`` is on, so a send to a worker that is gone raises instead of
vanishing silently.

Imports: zmq.green (this module runs on the master's gevent loop) and horde.protocol.
"""

from __future__ import annotations

import zmq.green as zmq

from horde.protocol.errors import ReceiveError, SendError, TransportError

#: Messages queued per peer before sends to it fail fast (a slow worker cannot grow us).
DEFAULT_SEND_HWM = 1000
DEFAULT_RECV_HWM = 100_000


class RouterTransport:
    """A bound ROUTER socket; nothing happens until :meth:`open`."""

    def __init__(
        self,
        bind: str,
        *,
        max_frame: int,
        heartbeat_ivl: float,
        heartbeat_timeout: float,
        context: zmq.Context | None = None,
    ) -> None:
        self._bind = bind
        self._max_frame = max_frame
        self._heartbeat_ivl_ms = int(heartbeat_ivl * 1000)
        self._heartbeat_timeout_ms = int(heartbeat_timeout * 1000)
        self._context = context
        self._socket: zmq.Socket | None = None
        self.endpoint = ""

    def open(self) -> str:
        """Bind the socket and return the endpoint actually bound (port resolved)."""
        context = self._context or zmq.Context.instance()
        sock = context.socket(zmq.ROUTER)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
            sock.setsockopt(zmq.SNDHWM, DEFAULT_SEND_HWM)
            sock.setsockopt(zmq.RCVHWM, DEFAULT_RECV_HWM)
            sock.setsockopt(zmq.HEARTBEAT_IVL, self._heartbeat_ivl_ms)
            sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, self._heartbeat_timeout_ms)
            sock.setsockopt(zmq.HEARTBEAT_TTL, self._heartbeat_timeout_ms)
            sock.setsockopt(zmq.TCP_KEEPALIVE, 1)
            sock.setsockopt(zmq.TCP_KEEPALIVE_IDLE, 30)
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
            raise TransportError(f"cannot bind {self._bind}: {exc}") from exc
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
        try:
            return self._socket.recv_multipart(copy=True)
        except zmq.ZMQError as exc:
            raise ReceiveError(f"receive failed: {exc}") from exc

    def send(self, identity: str, payload: bytes) -> None:
        """Send ``payload`` to the worker whose socket identity is ``identity``."""
        if self._socket is None:
            raise SendError("transport is not open")
        try:
            self._socket.send_multipart([identity.encode(), payload], flags=zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            raise SendError(f"send to {identity} failed: {exc}") from exc

    def close(self) -> None:
        """Close the socket; later sends and receives raise ``TransportError``."""
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
