"""A request on its way to the wire: its route, header block, redirects and TLS trust.

What :class:`horde.worker.api.client.HttpSession` needs to turn a URL and prepared fields
into request bytes: :func:`route` parses a URL once (cached) into its connection key, Host
header, request target and default statistics name; :class:`Outgoing` holds one request and
rewrites itself when a redirect is followed; :func:`timeouts` reads requests' ``timeout``;
:func:`ca_context` makes a TLS context trusting a CA bundle (``verify="path"``);
:func:`decode_body` undoes a gzip or deflate content encoding. No I/O but reading CA files.

Imports: the standard library and gevent.
"""

from __future__ import annotations

import os
import re
import time
import zlib
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import quote, urljoin, urlsplit

import gevent.ssl

__all__ = [
    "DEFAULT_HEADERS",
    "IDEMPOTENT_METHODS",
    "REDIRECT_CODES",
    "Fields",
    "Outgoing",
    "Route",
    "Verify",
    "absolute_http_url_regexp",
    "ca_context",
    "decode_body",
    "route",
    "timeouts",
]

absolute_http_url_regexp = re.compile(r"^https?://", re.IGNORECASE)
"""Matches a URL that names its own scheme and host (Locust's name for it)."""
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
DEFAULT_HEADERS = {"User-Agent": "horde", "Accept": "*/*", "Accept-Encoding": "gzip, deflate"}
DEFAULT_FIELDS = {name.lower(): (name, value) for name, value in DEFAULT_HEADERS.items()}
_DEFAULT_BLOCK = "".join(f"{name}: {value}\r\n" for name, value in DEFAULT_HEADERS.items())
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
Verify = bool | str  # requests' ``verify``: check certificates, skip checks, or a CA bundle
_URI_SAFE = "!#$%&'()*+,/:;=?@[]~"
Fields = dict[str, tuple[str, str]]  # lower-case name -> (name as given, value)


class Route(NamedTuple):
    """What a URL means on the wire, parsed once per distinct URL."""

    scheme: str
    host: str
    port: int
    host_header: str
    target: str  # the request-target: quoted path and query
    name: str  # the default name in the statistics: path and query as given


@lru_cache(maxsize=4096)
def route(url: str) -> Route:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"cannot request {url!r}: not an absolute http(s) URL")
    port = parts.port or (443 if scheme == "https" else 80)
    path = parts.path or "/"
    query = f"?{parts.query}" if parts.query else ""
    host_header = parts.netloc.rpartition("@")[2]
    return Route(
        scheme, parts.hostname, port, host_header, quote(path + query, safe=_URI_SAFE), path + query
    )


def decode_body(raw: bytes, content_encoding: object) -> bytes:
    coding = str(content_encoding or "").lower()
    if not raw or not coding:
        return raw
    if "gzip" in coding:
        return zlib.decompress(raw, 16 + zlib.MAX_WBITS)
    if "deflate" in coding:
        try:
            return zlib.decompress(raw)
        except zlib.error:
            return zlib.decompress(raw, -zlib.MAX_WBITS)
    return raw


class Outgoing:
    """A request on its way, updated as redirects are followed."""

    __slots__ = (
        "block",
        "body",
        "cookies",
        "fields",
        "head_at",
        "method",
        "stream",
        "url",
        "verify",
    )

    def __init__(
        self,
        method: str,
        url: str,
        body: bytes | None,
        *,
        fields: Fields | None,
        cookies: Any,
        verify: Verify,
        stream: bool = False,
    ) -> None:
        self.method = method
        self.url = url
        self.body = body
        self.fields = fields  # None: just the default headers (prebuilt block)
        self.block = _DEFAULT_BLOCK if fields is None else _block(fields)
        self.cookies = cookies
        self.verify = verify
        self.stream = stream  # time to the response head, not to the last body byte
        self.head_at: float | None = None  # perf_counter() when the response head came

    def mark_head(self) -> None:
        """Note the time the response head arrived (``stream=True`` requests are timed so)."""
        self.head_at = time.perf_counter()

    def redirect(self, status_code: int, location: str) -> None:
        """Turn this into the request that follows a redirect response."""
        next_url = urljoin(self.url, location)
        fields = dict(DEFAULT_FIELDS) if self.fields is None else self.fields
        if urlsplit(next_url).netloc != urlsplit(self.url).netloc:
            fields.pop("authorization", None)
        self.url = next_url
        if status_code == 303 or (status_code in (301, 302) and self.method == "POST"):
            self.method = "HEAD" if self.method == "HEAD" else "GET"
            self.body = None
            fields.pop("content-type", None)
        self.fields = fields
        self.block = _block(fields)

    def encode(self, route: Route, cookie: str) -> bytes:
        """The request's bytes on the wire for ``route``, with ``cookie`` if not empty."""
        body = self.body
        extra = f"Cookie: {cookie}\r\n" if cookie else ""
        if body is not None:
            extra += f"Content-Length: {len(body)}\r\n"
        elif self.method in _BODY_METHODS:
            extra += "Content-Length: 0\r\n"
        head = (
            f"{self.method} {route.target} HTTP/1.1\r\nHost: {route.host_header}\r\n"
            f"{self.block}{extra}\r\n"
        ).encode("latin-1")
        return head if body is None else head + body


def _block(fields: Fields) -> str:
    return "".join(f"{name}: {value}\r\n" for name, value in fields.values())


_CA_CONTEXTS: dict[str, gevent.ssl.SSLContext] = {}


def ca_context(path: str) -> gevent.ssl.SSLContext:
    """A verifying TLS context that trusts the CA bundle (file or folder) at ``path``."""
    context = _CA_CONTEXTS.get(path)
    if context is None:
        context = gevent.ssl.SSLContext(gevent.ssl.PROTOCOL_TLS_CLIENT)
        if os.path.isdir(path):
            context.load_verify_locations(capath=path)
        else:
            context.load_verify_locations(cafile=path)
        _CA_CONTEXTS[path] = context
    return context


def timeouts(timeout: Any) -> tuple[float | None, float | None]:
    """(connect, whole request) bounds from requests' ``timeout``: a number bounds both, a
    ``(connect, read)`` pair bounds connecting by ``connect`` and the request by the sum."""
    if timeout is None:
        return None, None
    if isinstance(timeout, tuple | list):
        connect, read = timeout
        total = None if read is None else read + (connect or 0)
        return connect, total
    return timeout, timeout
