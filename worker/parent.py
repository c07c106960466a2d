"""A local worker ends with the ``horde run`` that started it, even if that was SIGKILLed.

``horde run`` passes its PID (``--parent-pid``); the worker asks the kernel for a SIGTERM
when its parent dies (Linux's ``PR_SET_PDEATHSIG``), then checks that the parent is still
the one it was started by (it may have died before the request), so a killed ``horde
run`` leaves no worker retrying to register forever. Elsewhere it only checks once.

Imports: the standard library.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

__all__ = ["PR_SET_PDEATHSIG", "follow_parent"]

PR_SET_PDEATHSIG = 1


def follow_parent(parent_pid: int) -> bool:
    """Get SIGTERM when the parent dies; return False if it is gone already."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl: the check below still catches a parent that died first
    return os.getppid() == parent_pid
