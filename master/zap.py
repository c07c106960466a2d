"""The master's ZAP handler: who may complete a CURVE handshake, decided in a thread of its own.

libzmq asks a ZAP handler (RFC 27, ``inproc://zeromq.zap.01`` in the socket's context)
about every CURVE handshake; without one it would admit any client that knows the
master's public key. :class:`ZapHandler` answers 200 for the public keys on the
allow-list and 400 for the rest, naming each admitted client by the Z85 text of its key
(a received frame's ``User-Id``). Refusals are counted through ``on_reject`` and logged at
a limited rate. The allow-list (:func:`horde.protocol.security.allowed_keys`) is read again
when :meth:`ZapHandler.reload` is called (SIGHUP) and when its files change: the folder is
looked at every :data:`POLL_SECONDS` (a Kubernetes Secret update sends no signal, and
swaps a link in the folder), every file every :data:`FULL_LOOK_EVERY` looks (a file
rewritten in place); a list that can no longer be read keeps the previous keys and logs
why. :attr:`ZapHandler.allowed` is replaced whole on each reload, so readers on the gevent
side see the old set or the new.

It runs in a native thread (not a greenlet) with plain zmq on a shadow of the master's
context: a burst of thousands of handshakes is answered without waiting for the master's
event loop, and the loop's stalls never delay a handshake.

Imports: zmq (plain; ``zmq.auth`` is not needed), gevent's ``get_original`` for a native
thread and lock, structlog, horde.master.ratelimit, horde.protocol.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog
import zmq
from gevent.monkey import get_original
from zmq.utils import z85

from horde.master.ratelimit import LogThrottle
from horde.protocol.errors import ConfigError
from horde.protocol.security import allow_signature, allow_stamp, allowed_keys, fingerprint

log = structlog.get_logger("horde.master")
_start_native_thread = get_original("_thread", "start_new_thread")
_native_lock = get_original("_thread", "allocate_lock")

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
ZAP_DOMAIN = b"horde"
POLL_SECONDS = 1.0
"""How often the allow-list is looked at for changes (one ``stat``; and how long stop waits)."""
FULL_LOOK_EVERY = 5
"""Every this many looks, every key file is looked at too (a file rewritten in place
leaves its directory unchanged); at 5,000 files that costs about 18 ms."""
_OK, _DENIED = b"200", b"400"


class ZapHandler:
    """Answers ZAP requests from the allow-list at ``source``; :meth:`start` begins."""

    def __init__(
        self,
        source: str,
        *,
        on_reject: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self._on_reject = on_reject
        self._clock = clock
        self.allowed: frozenset[str] = allowed_keys(source)  # a bad list fails the start
        """The public keys admitted now (Z85 text)."""
        self._signature = allow_signature(source)
        self._stamp = allow_stamp(source)
        self._looks = 0
        self._reload = False
        self._running = False
        self._stopped = _native_lock()
        self._throttle = LogThrottle(interval=10.0)
        self.admitted = 0
        """Handshakes admitted since the start."""
        self.refused = 0
        """Handshakes refused since the start."""

    def start(self, context: Any) -> None:
        """Bind the ZAP endpoint in ``context`` (the CURVE socket's) and start answering;
        call it before that socket binds."""
        sock: zmq.Socket[bytes] = zmq.Context.shadow(context.underlying).socket(zmq.REP)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(ZAP_ENDPOINT)
        self._running = True
        self._stopped.acquire()
        _start_native_thread(self._run, (sock,))
        log.info("worker keys loaded", source=self.source, keys=len(self.allowed))

    def reload(self) -> None:
        """Read the allow-list again soon (within :data:`POLL_SECONDS`); safe from any thread."""
        self._reload = True

    def stop(self) -> None:
        """Stop answering; waits for the thread (at most about :data:`POLL_SECONDS`)."""
        if self._running:
            self._running = False
            self._stopped.acquire(True, 2 * POLL_SECONDS)

    def _run(self, sock: Any) -> None:
        try:
            next_look = self._clock() + POLL_SECONDS
            while self._running:
                wait = max(0.0, next_look - self._clock())
                if sock.poll(int(wait * 1000) + 1, zmq.POLLIN):
                    self._answer_all(sock)
                if self._reload or self._clock() >= next_look:
                    self._look_again()
                    next_look = self._clock() + POLL_SECONDS
        except Exception:  # never end silently: every later handshake would hang
            log.exception("the ZAP handler failed; CURVE handshakes are no longer answered")
        finally:
            sock.close(linger=0)
            self._stopped.release()

    def _answer_all(self, sock: Any) -> None:
        """Answer every request queued now."""
        while True:
            try:
                request = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            sock.send_multipart(self.answer(request))

    def answer(self, request: list[bytes]) -> list[bytes]:
        """The reply to one ZAP request (RFC 27): 200 and the key's Z85 text, or 400."""
        if len(request) < 6:
            request_id = request[1] if len(request) > 1 else b""
            return [b"1.0", request_id, b"500", b"bad request", b"", b""]
        version, request_id, domain, address, _identity, mechanism = request[:6]
        credentials = request[6:]
        if version != b"1.0":
            return [b"1.0", request_id, b"500", b"version not supported", b"", b""]
        key = ""
        if mechanism == b"CURVE" and len(credentials) == 1 and len(credentials[0]) == 32:
            key = z85.encode(credentials[0]).decode("ascii")
        if key and key in self.allowed:
            self.admitted += 1
            return [b"1.0", request_id, _OK, b"OK", key.encode("ascii"), b""]
        self.refused += 1
        self._on_reject()
        suppressed = self._throttle.allow("refused", self._clock())
        if suppressed is not None:
            log.warning(
                "worker handshake refused: key not on the allow-list",
                key=fingerprint(key) if key else mechanism.decode("ascii", "replace"),
                address=address.decode("ascii", "replace"),
                domain=domain.decode("ascii", "replace"),
                suppressed=suppressed,
            )
        return [b"1.0", request_id, _DENIED, b"key not allowed", b"", b""]

    def _look_again(self) -> None:
        """Reload the allow-list if asked to or if its files changed.

        Each look is one ``stat`` of the source; every :data:`FULL_LOOK_EVERY` looks, or
        when that changed, every file is looked at (holding the GIL for a while: it must
        not happen every second with thousands of keys).
        """
        self._looks += 1
        stamp = allow_stamp(self.source)
        full = self._reload or stamp != self._stamp or self._looks % FULL_LOOK_EVERY == 0
        if not full:
            return
        self._stamp = stamp
        signature = allow_signature(self.source)
        if not self._reload and signature == self._signature:
            return
        self._reload = False
        self._signature = signature
        try:
            keys = allowed_keys(self.source)
        except ConfigError as exc:
            log.error("cannot reload the worker keys; keeping the previous ones", error=str(exc))
            return
        removed, added = len(self.allowed - keys), len(keys - self.allowed)
        self.allowed = keys
        log.info("worker keys reloaded", keys=len(keys), added=added, removed=removed)
