"""``horde.env``: ``Environment``, as scripts import it from ``locust.env``.

Imports: the user API.
"""

from __future__ import annotations

from horde.worker.api.environment import Environment

__all__ = ["Environment"]
