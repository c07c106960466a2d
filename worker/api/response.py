"""What a request made through ``self.client`` returns, and the failures it records.

:class:`Response` holds a finished request's status, headers and whole body; a status >= 400
is a failure (:class:`HTTPError`), and a connection error, timeout or malformed response is a
failure with status 0 kept in ``error``. :class:`ResponseContextManager` is what a
``catch_response=True`` request returns: the request is recorded on ``events.request`` when its
``with`` block ends, so the block may call ``success()`` or ``failure()`` first (Locust's
``ResponseContextManager``); :class:`RestResponseContextManager` is what ``rest()``
yields, with the parsed JSON body in ``js``. The requests themselves are made by
:class:`horde.worker.api.client.HttpSession`.

Imports: the standard library and ``horde.worker.api`` (never
``horde.worker.api.client``, which imports this module).
"""

from __future__ import annotations

import json as jsonlib
import re
from collections.abc import Iterator
from datetime import timedelta
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, NamedTuple

from horde.worker.api.http11 import Headers

if TYPE_CHECKING:
    from horde.worker.api.events import EventHook


class ResponseError(Exception):
    """Raise inside a ``catch_response`` block to record the request as failed."""


class CatchResponseError(Exception):
    """The failure recorded by ``response.failure("message")``."""


class HTTPError(Exception):
    """The failure recorded for a response with status >= 400."""

    def __init__(self, status_code: int, reason: str, url: str) -> None:
        kind = "Client" if status_code < 500 else "Server"
        reason = reason or _phrase(status_code)
        super().__init__(f"{status_code} {kind} Error: {reason} for url: {url}")
        self.status_code = status_code


def _phrase(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Unknown"


class _Exchange(NamedTuple):
    """What came back for one request, after redirects."""

    status_code: int
    reason: str
    headers: Headers
    content: bytes
    url: str
    error: Exception | None


class Response:
    """A finished request: status, headers and the whole body (``content``).

    A request that failed to connect or to read a response has ``status_code`` 0, empty
    content and the exception in ``error``.
    """

    def __init__(self, exchange: _Exchange, elapsed_ms: float, request_meta: dict[str, Any]):
        self.status_code = exchange.status_code
        self.reason = exchange.reason
        self.headers = exchange.headers
        self.content = exchange.content
        self.url = exchange.url
        self.error = exchange.error
        self._elapsed_ms = elapsed_ms
        self.request_meta = request_meta
        self._encoding: str | None = None
        self._text: str | None = None

    @property
    def elapsed(self) -> timedelta:
        """The time from sending the request to the last byte of the response."""
        return timedelta(milliseconds=self._elapsed_ms)

    @property
    def encoding(self) -> str:
        """The charset of the Content-Type header, else UTF-8; may be set before ``text``."""
        if self._encoding is None:
            content_type = self.headers.get("content-type") or ""
            found = re.search(r"charset=[\"']?([\w.:-]+)", str(content_type), re.IGNORECASE)
            self._encoding = found.group(1) if found else "utf-8"
        return self._encoding

    @encoding.setter
    def encoding(self, value: str) -> None:
        self._encoding = value
        self._text = None

    @property
    def text(self) -> str:
        """The body decoded with :attr:`encoding` (undecodable bytes replaced)."""
        if self._text is None:
            try:
                self._text = self.content.decode(self.encoding, errors="replace")
            except LookupError:
                self._text = self.content.decode("utf-8", errors="replace")
        return self._text

    def json(self, **kwargs: Any) -> Any:
        """The body parsed as JSON."""
        return jsonlib.loads(self.text, **kwargs)

    def iter_content(
        self, chunk_size: int | None = 1, decode_unicode: bool = False
    ) -> Iterator[bytes | str]:
        """The body in pieces of ``chunk_size`` bytes (requests' ``iter_content``; the body
        was read whole before the request returned, even with ``stream=True``)."""
        size = chunk_size or len(self.content) or 1
        for start in range(0, len(self.content), size):
            piece = self.content[start : start + size]
            yield piece.decode(self.encoding, errors="replace") if decode_unicode else piece

    def iter_lines(self, decode_unicode: bool = False) -> Iterator[bytes | str]:
        """The body's lines, without line endings (requests' ``iter_lines``)."""
        for line in self.content.splitlines():
            yield line.decode(self.encoding, errors="replace") if decode_unicode else line

    @property
    def ok(self) -> bool:
        """True if a response arrived with a status below 400."""
        return self.error is None and 0 < self.status_code < 400

    def raise_for_status(self) -> None:
        """Raise the connection error, or :class:`HTTPError` for a status >= 400."""
        failure = self._failure(self.url)
        if failure is not None:
            raise failure

    def _failure(self, label: str) -> Exception | None:
        if self.error is not None:
            return self.error
        if self.status_code >= 400:
            return HTTPError(self.status_code, self.reason, label)
        return None

    def success(self) -> None:
        """Only for ``catch_response=True`` requests."""
        raise RuntimeError(_NEEDS_CATCH)

    def failure(self, exc: object) -> None:
        """Only for ``catch_response=True`` requests."""
        raise RuntimeError(_NEEDS_CATCH)

    def __enter__(self) -> Response:
        raise RuntimeError(_NEEDS_CATCH)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> bool | None:
        return None

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}] {self.url}>"


_NEEDS_CATCH = (
    "to mark a request as success or failure, make it with catch_response=True and use "
    "it in a with-block: with self.client.get(url, catch_response=True) as response: ..."
)


class ResponseContextManager(Response):
    """A response whose request is recorded when its ``with`` block exits.

    Inside the block, :meth:`success` or :meth:`failure` decide the outcome; otherwise the
    status decides. Raising :class:`ResponseError` in the block records a failure and is
    swallowed; another exception propagates and, as in Locust, the request is not recorded.
    """

    def __init__(
        self,
        exchange: _Exchange,
        elapsed_ms: float,
        request_meta: dict[str, Any],
        request_event: EventHook,
    ) -> None:
        super().__init__(exchange, elapsed_ms, request_meta)
        self._request_event = request_event
        self._entered = False
        self._verdict: bool | Exception | None = None

    def __enter__(self) -> ResponseContextManager:
        self._entered = True
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> bool:
        meta = self.request_meta
        if self._verdict is not None:
            meta["exception"] = None if self._verdict is True else self._verdict
            self._report()
            return exc is None
        if exc is not None and not isinstance(exc, ResponseError):
            return False  # as Locust: the request is not recorded, the exception goes on
        meta["exception"] = self._failure(meta["name"]) if exc is None else exc
        self._report()
        return True

    def _report(self) -> None:
        self._request_event.fire(**self.request_meta)

    def success(self) -> None:
        """Record the request as successful, whatever its status."""
        self._check_entered()
        self._verdict = True

    def failure(self, exc: object) -> None:
        """Record the request as failed; a message becomes a :class:`CatchResponseError`."""
        self._check_entered()
        self._verdict = exc if isinstance(exc, Exception) else CatchResponseError(str(exc))

    def raise_for_status(self) -> None:
        """Raise the recorded failure, if ``failure()`` was called, else as a response."""
        if isinstance(self._verdict, Exception):
            raise self._verdict
        if self._verdict is None:
            super().raise_for_status()

    def _check_entered(self) -> None:
        if not self._entered:
            raise RuntimeError(_NEEDS_CATCH)


class RestResponseContextManager(ResponseContextManager):
    """What ``rest()`` yields: a :class:`ResponseContextManager` with ``js``, the body parsed
    as JSON (None when the body is empty or not JSON, or the request failed)."""

    js: Any = None
