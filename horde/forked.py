"""``horde worker --processes N``: N worker processes under one command, as Locust's
``locust --worker --processes N``.

The command starts N children, each ``python -P -m horde worker`` with the command's own
arguments less ``--processes`` (so keys, script and master are the same) plus
``--parent-pid`` (a child exits when this process does), in the same folder and
environment; it waits for all of them and exits with the highest exit code, as Locust's
parent does. ``-1`` starts one per CPU core. A SIGTERM or SIGINT the command receives is
passed on to every child that still runs (a terminal's Ctrl-C reaches them anyway); a
second one kills them, by PID.

Imports: the standard library and :mod:`horde.protocol` (errors).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

from horde.protocol.errors import ConfigError

__all__ = ["POLL", "child_argv", "process_count", "run_worker_processes"]

POLL = 0.1
"""Seconds between two looks at the children."""


def process_count(requested: int) -> int:
    """The number of children ``--processes`` asks for (``-1``: one per CPU core)."""
    if requested == -1:
        return os.cpu_count() or 1
    if requested < 1:
        raise ConfigError(f"--processes must be a positive count or -1, got {requested}")
    return requested


def child_argv(argv: Sequence[str], parent_pid: int) -> list[str]:
    """``argv`` (after ``horde``) without ``--processes N`` / ``--processes=N``, plus
    ``--parent-pid``."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--processes":
            skip = True
        elif not arg.startswith("--processes="):
            out.append(arg)
    return [*out, "--parent-pid", str(parent_pid)]


def run_worker_processes(count: int, argv: Sequence[str]) -> int:
    """Start ``count`` workers with ``argv`` (the command's arguments after ``horde``),
    wait for them all and return the highest exit code."""
    command = [sys.executable, "-P", "-m", "horde", *child_argv(argv, os.getpid())]
    children = [subprocess.Popen(command, stdin=subprocess.DEVNULL) for _ in range(count)]
    signals_seen = 0

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal signals_seen
        signals_seen += 1
        for child in children:
            if child.poll() is None:
                child.send_signal(signum if signals_seen == 1 else signal.SIGKILL)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while any(child.poll() is None for child in children):
            time.sleep(POLL)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return max(child.returncode for child in children)
