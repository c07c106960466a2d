"""Fetch the user script from the master, for a worker started without ``-f``.

As Locust's ``-f -``: a short-lived DEALER with a temporary identity
(``<hostname>_download_locustfile_<uuid>``) asks with ``locustfile`` every second until
the master answers with the script's file name and text, or the wait runs out. Runs
before the worker's loops start, so plain blocking zmq is fine here.

Imports: zmq, horde.protocol.
"""

from __future__ import annotations

import contextlib
import socket
import time
import uuid

import structlog
import zmq
from zmq.utils.monitor import recv_monitor_message

from horde.protocol import messages as m
from horde.protocol.codec import decode_downstream, encode
from horde.protocol.errors import ProtocolError, ScriptError
from horde.protocol.security import ClientKeys, apply_curve_client
from horde.worker.diagnose import link_problem, monitored_events, waiting_hint

log = structlog.get_logger("horde.worker")
ASK_INTERVAL = 1.0


def fetch_scripts(
    endpoint: str, *, timeout: float, curve: ClientKeys | None = None
) -> tuple[m.ScriptFile, ...]:
    """Return the master's scripts, or raise :class:`ScriptError` naming why not.

    With ``curve`` the request and the script travel inside the CURVE channel.
    """
    identity = f"{socket.gethostname()}_download_locustfile_{uuid.uuid4().hex}"
    context: zmq.Context = zmq.Context.instance()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.IDENTITY, identity.encode())
    sock.setsockopt(zmq.LINGER, 0)
    if curve is not None:
        apply_curve_client(sock, curve, zmq)
    monitor = sock.get_monitor_socket(monitored_events(zmq), f"inproc://fetch-{identity}")
    sock.connect(endpoint)
    deadline = time.monotonic() + timeout
    log.info("asking the master for the user script", master=endpoint)
    problem: str | None = None
    poller = _poller(sock, monitor)
    try:
        while time.monotonic() < deadline:
            with contextlib.suppress(zmq.Again):  # no connection now: a failed handshake
                sock.send(encode(m.LocustfileRequest(identity)), zmq.NOBLOCK)
            ready = dict(poller.poll(int(ASK_INTERVAL * 1000)))
            if monitor in ready:
                problem = _read_problems(monitor, problem, endpoint, secure=curve is not None)
            if sock not in ready:
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
        sock.disable_monitor()
        monitor.close(linger=0)
        sock.close(linger=0)
    if problem is not None:
        raise ScriptError(f"no script from the master at {endpoint}: {problem}")
    hint = waiting_hint(secure=curve is not None)
    raise ScriptError(f"no script from the master at {endpoint} within {timeout:g} s: {hint}")


def _poller(*sockets: zmq.Socket[bytes]) -> zmq.Poller:
    poller = zmq.Poller()
    for sock in sockets:
        poller.register(sock, zmq.POLLIN)
    return poller


def _read_problems(
    monitor: zmq.Socket[bytes], last: str | None, endpoint: str, *, secure: bool
) -> str | None:
    """Read the monitor's events; log a handshake problem when it appears or changes."""
    problem = last
    while monitor.poll(0):
        event = recv_monitor_message(monitor)
        problem = link_problem(event["event"], event["value"], secure=secure, zmq=zmq)
        if problem is not None and problem != last:
            log.error("cannot reach the master", master=endpoint, cause=problem)
        last = problem
    return problem
