"""``horde.contrib.fasthttp``: where a script ported from Locust finds ``FastHttpUser``.

The names of ``locust.contrib.fasthttp`` that scripts import, re-exported from the user API
(:mod:`horde.worker.api.fasthttp`): ``FastHttpUser``, ``FastHttpSession``,
``ResponseContextManager``, ``RestResponseContextManager``, ``FastResponse``,
``ErrorResponse``, ``LocustBadStatusCode``, ``FAILURE_EXCEPTIONS``,
``insecure_ssl_context_factory``, ``absolute_http_url_regexp``, the response errors, and
horde's ``ConnectionPool`` for ``client_pool``. Importing it starts nothing.

Imports: ``horde.worker.api``.
"""

from __future__ import annotations

from horde.worker.api.fasthttp import (
    FAILURE_EXCEPTIONS,
    CatchResponseError,
    ConnectionPool,
    ErrorResponse,
    FastHttpSession,
    FastHttpUser,
    FastResponse,
    LocustBadStatusCode,
    ResponseContextManager,
    ResponseError,
    RestResponseContextManager,
    absolute_http_url_regexp,
    insecure_ssl_context_factory,
)

__all__ = [
    "FAILURE_EXCEPTIONS",
    "CatchResponseError",
    "ConnectionPool",
    "ErrorResponse",
    "FastHttpSession",
    "FastHttpUser",
    "FastResponse",
    "LocustBadStatusCode",
    "ResponseContextManager",
    "ResponseError",
    "RestResponseContextManager",
    "absolute_http_url_regexp",
    "insecure_ssl_context_factory",
]
