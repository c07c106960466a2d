"""Fetch the user script from the master, for a worker started without ``-f``.

As Locust's ``-f -``: a short-lived DEALER with a temporary identity
(``<hostname>_download_locustfile_<uuid>``) asks with ``locustfile`` every second until
the master answers with the script's file name and text, or the wait runs out. Runs
before the worker's loops start, so plain blocking zmq is fine here.

Imports: zmq, horde.protocol.
"""

from __future__ import annotations

import socket
import time
import uuid

import structlog
import zmq

from horde.protocol import messages as m
from horde.protocol.codec import decode_downstream, encode
from horde.protocol.errors import ProtocolError, ScriptError

log = structlog.get_logger("horde.worker")
ASK_INTERVAL = 1.0


def fetch_scripts(endpoint: str, *, timeout: float) -> tuple[m.ScriptFile, ...]:
    """Return the master's scripts, or raise :class:`ScriptError` naming why not."""
    identity = f"{socket.gethostname()}_download_locustfile_{uuid.uuid4().hex}"
    context: zmq.Context = zmq.Context.instance()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.IDENTITY, identity.encode())
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    deadline = time.monotonic() + timeout
    log.info("asking the master for the user script", master=endpoint)
    try:
        while time.monotonic() < deadline:
            sock.send(encode(m.LocustfileRequest(identity)), zmq.NOBLOCK)
            if not sock.poll(int(ASK_INTERVAL * 1000)):
                continue
            try:
                reply = decode_downstream(sock.recv())
            except ProtocolError as exc:
                raise ScriptError(f"the master sent a malformed script reply: {exc}") from exc
            if not isinstance(reply, m.LocustfileReply):
                continue
            if reply.error is not None:
                raise ScriptError(f"the master could not send its script: {reply.error}")
            if not reply.files:
                raise ScriptError("the master sent no script")
            return reply.files
    finally:
        sock.close(linger=0)
    raise ScriptError(f"no script from the master at {endpoint} within {timeout:g} s")
