"""JSON requests in a ``with`` block: Locust's ``rest`` and ``rest_``, for both HTTP users.

:func:`rest_exchange` makes a ``catch_response`` request with JSON ``Content-Type`` and
``Accept`` headers (unless given) and yields a
:class:`~horde.worker.api.response.RestResponseContextManager` whose ``js`` is the parsed
body. The request is marked failed when it failed in transport, when a non-empty body is
not JSON, when its status is an error (unless the block says otherwise), and when the
block raises: an ``AssertionError`` becomes the failure message (a message ending in ","
gets the start of the response appended), any other exception a message naming it and
where it was raised; neither propagates. horde's flow exceptions (``StopUser``,
``RescheduleTask``, ``InterruptTaskSet``) still do. :class:`RestMixin` gives users
``self.rest(...)`` and ``self.rest_(...)`` on their ``client``.

Imports: the standard library and ``horde.worker.api``.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from horde.worker.api.bodies import JSON
from horde.worker.api.response import RestResponseContextManager
from horde.worker.api.tasks import USER_FLOW_EXCEPTIONS

if TYPE_CHECKING:
    from horde.worker.api.client import HttpSession

__all__ = ["RestMixin", "rest_exchange"]


def _with_json_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    given = dict(headers or {})
    lowered = {name.lower() for name in given}
    if "content-type" not in lowered:
        given["Content-Type"] = JSON
    if "accept" not in lowered:
        given["Accept"] = JSON
    return given


def _where(exc: BaseException) -> str:
    """``file:line in function`` for each frame of ``exc``'s traceback."""
    frames = traceback.extract_tb(exc.__traceback__)
    return ", ".join(f"{frame.filename}:{frame.lineno} in {frame.name}" for frame in frames)


@contextmanager
def rest_exchange(
    session: HttpSession,
    method: str,
    url: str,
    headers: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> Iterator[RestResponseContextManager]:
    """Send a JSON request with ``session`` and yield its response with ``js`` set."""
    managed = session.request(
        method, url, catch_response=True, headers=_with_json_headers(headers), **kwargs
    )
    with managed:
        # the same response, seen as what rest() yields (the subclass adds only ``js``)
        managed.__class__ = RestResponseContextManager
        response = cast(RestResponseContextManager, managed)
        response.js = None
        if response.error is not None:
            response.failure(str(response.error))
        elif response.text:
            try:
                response.js = response.json()
            except ValueError as exc:
                response.failure(
                    f"Could not parse response as JSON. {response.text[:250]}, response code"
                    f" {response.status_code}, error {exc}"
                )
        try:
            yield response
        except USER_FLOW_EXCEPTIONS:
            raise
        except AssertionError as exc:
            message = str(exc.args[0]) if exc.args else "Assertion failed"
            if message.endswith(","):
                message = f"{message[:-1]}, response was {response.text[:200]}"
            response.failure(message)
        except Exception as exc:
            response.failure(
                f"{type(exc).__name__}: {exc} at {_where(exc)}. Response was {response.text[:200]}"
            )


class RestMixin:
    """``rest`` and ``rest_`` for a user class with an HTTP ``client``."""

    client: Any

    @contextmanager
    def rest(
        self, method: str, url: str, headers: Mapping[str, str] | None = None, **kwargs: Any
    ) -> Iterator[RestResponseContextManager]:
        """A JSON request in a ``with`` block, its parsed body in ``js`` (see
        :func:`rest_exchange`); subclasses may wrap it with ``super().rest(...)``."""
        with rest_exchange(self.client, method, url, headers, **kwargs) as response:
            yield response

    @contextmanager
    def rest_(
        self, method: str, url: str, name: str | None = None, **kwargs: Any
    ) -> Iterator[RestResponseContextManager]:
        """:meth:`rest` with a ``_=<ms timestamp>`` query parameter (to defeat caches),
        named ``URL?_=...`` unless ``name`` is given."""
        separator = "&" if "?" in url else "?"
        if name is None:
            name = f"{url}{separator}_=..."
        stamped = f"{url}{separator}_={int(time.time() * 1000)}"
        with self.rest(method, stamped, name=name, **kwargs) as response:
            yield response
