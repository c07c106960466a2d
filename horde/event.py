"""``horde.event``: the event hook classes, as scripts import them from ``locust.event``.

Imports: the user API.
"""

from __future__ import annotations

from horde.worker.api.events import EventHook, Events

__all__ = ["EventHook", "Events"]
