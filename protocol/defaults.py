"""The defaults both ends of a master-worker link must agree on, named once.

The master's port and the heartbeat timing are Locust's (``5557``, ``HEARTBEAT_INTERVAL``
1 s, ``HEARTBEAT_LIVENESS`` 3): a horde master and a Locust worker, or a Locust master and
a horde worker, find each other and agree on liveness without a flag. ``master/config.py``,
``master/registry.py``, ``worker/config.py`` and the command line all take them from here.

Imports: nothing.
"""

from __future__ import annotations

__all__ = ["DEFAULT_HEARTBEAT_INTERVAL", "DEFAULT_HEARTBEAT_LIVENESS", "DEFAULT_MASTER_PORT"]

DEFAULT_MASTER_PORT = 5557
"""The TCP port a master binds and a worker connects to when none is given."""

DEFAULT_HEARTBEAT_INTERVAL = 1.0
"""Seconds between a worker's heartbeats (Locust's ``HEARTBEAT_INTERVAL``)."""

DEFAULT_HEARTBEAT_LIVENESS = 3
"""Heartbeat intervals of silence after which the master counts a worker as missing."""
