"""Why a worker's link to its master does not come up: ZeroMQ's handshake events, in words.

The link thread watches its DEALER with a ZeroMQ socket monitor; :func:`link_problem` turns
an event into the sentence a user needs (a wrong ``--master-key``, a key the master does
not allow, a master without CURVE or a worker without it, nothing listening), and
:func:`waiting_hint` says what may be wrong when no ``ack`` came and no event named a
cause. Pure: no sockets.

Imports: the standard library only (event numbers are looked up on the caller's zmq module).
"""

from __future__ import annotations

from typing import Any

__all__ = ["link_problem", "monitored_events", "waiting_hint"]


def monitored_events(zmq: Any) -> int:
    """The socket-monitor events :func:`link_problem` reads."""
    return int(
        zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
        | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
        | zmq.EVENT_HANDSHAKE_FAILED_AUTH
        | zmq.EVENT_HANDSHAKE_SUCCEEDED
    )


def link_problem(event: int, value: int, *, secure: bool, zmq: Any) -> str | None:
    """What a monitor event says is wrong with the link, or None (nothing wrong)."""
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return (
            f"the master refused this worker's key (status {value}): its public key is not"
            " on the master's --allow-keys list (or was revoked)"
        )
    if event == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL and secure:
        return (
            "the CURVE handshake failed: --master-key is probably not this master's public"
            " key (the master could not read our hello)"
        )
    if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
        if secure:
            return (
                "the master does not speak CURVE: it runs without keys (or is a Locust"
                " master); give it --secret-key and --allow-keys, or run this worker"
                " without keys and with --insecure"
            )
        return (
            "the master requires CURVE keys: pass --master-key (its public key) and"
            " --secret-key (this worker's key, on its allow-list)"
        )
    return None  # a plain link's NO_DETAIL comes with a PROTOCOL event that says more


def waiting_hint(*, secure: bool) -> str:
    """What may be wrong when registration goes unanswered and no event named a cause."""
    if secure:
        return (
            "is the master running there, with the key pair whose public half is"
            " --master-key, and is this worker's key on its --allow-keys?"
        )
    return "is the master running there, and is it a plain master (one with keys refuses us)?"
