"""``horde.clients``: where a script ported from Locust finds ``HttpSession``.

The names of ``locust.clients`` that scripts import, re-exported from the user API
(:mod:`horde.worker.api.client`): ``HttpSession`` (the client ``HttpUser`` uses; a script
may make a second one, ``HttpSession(base_url=..., request_event=..., user=...)``),
``ResponseContextManager``, ``RestResponseContextManager``, ``Response`` and
``absolute_http_url_regexp``. Importing it starts nothing.

Imports: ``horde.worker.api``.
"""

from __future__ import annotations

from horde.worker.api.client import (
    HttpSession,
    Response,
    ResponseContextManager,
    RestResponseContextManager,
)
from horde.worker.api.outgoing import absolute_http_url_regexp

__all__ = [
    "HttpSession",
    "Response",
    "ResponseContextManager",
    "RestResponseContextManager",
    "absolute_http_url_regexp",
]
