"""The HTTP client an ``HttpUser`` calls as ``self.client``; it times and records requests.

:class:`HttpSession` keeps one keep-alive connection (:mod:`horde.worker.api.http11`) per
(scheme, host, port) it talks to, sends a request, reads the whole body, follows redirects,
keeps cookies, and fires ``events.request`` with the time in ms from sending to the last
body byte. What it returns, and the failures it records, live in
:mod:`horde.worker.api.response` (:class:`Response`, :class:`ResponseContextManager` for
``catch_response=True``, :class:`HTTPError` and the other response errors); they are
re-exported here so ``horde.worker.api.client`` keeps offering every name it always has.

The request path is the load generator's hot loop, so the common case is kept cheap: a
URL's connection key, Host header, request target and default name are parsed once and
cached; the default header block is prebuilt; the cookie jar is only consulted when it
holds cookies or a response sets one.

Imports: the standard library, gevent and ``horde.worker.api``.
"""

from __future__ import annotations

import json as jsonlib
import time
import zlib
from base64 import b64encode
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from http.cookiejar import CookieJar
from typing import TYPE_CHECKING, Any, NamedTuple, cast
from urllib.parse import quote, unquote, urlencode, urljoin, urlsplit
from urllib.request import Request as CookieRequest

import gevent

from horde.worker.api.http11 import BadResponse, Connection, Headers, StaleConnection, tls_context
from horde.worker.api.response import (
    CatchResponseError,
    HTTPError,
    Response,
    ResponseContextManager,
    ResponseError,
    _Exchange,
)

if TYPE_CHECKING:
    from horde.worker.api.events import EventHook
    from horde.worker.api.users import User

__all__ = [
    "DEFAULT_CONNECTION_TIMEOUT",
    "DEFAULT_HEADERS",
    "DEFAULT_NETWORK_TIMEOUT",
    "MAX_REDIRECTS",
    "REDIRECT_CODES",
    "TRANSPORT_ERRORS",
    "CatchResponseError",
    "HTTPError",
    "HttpSession",
    "Response",
    "ResponseContextManager",
    "ResponseError",
]

DEFAULT_CONNECTION_TIMEOUT = 60.0
DEFAULT_NETWORK_TIMEOUT = 60.0
MAX_REDIRECTS = 10
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
DEFAULT_HEADERS = {"User-Agent": "horde", "Accept": "*/*", "Accept-Encoding": "gzip, deflate"}
# what a failed exchange raises: socket errors (incl. timeouts, refused, TLS, DNS), a
# response that is not HTTP, a body that does not decompress
TRANSPORT_ERRORS = (OSError, BadResponse, zlib.error)
_DEFAULT_FIELDS = {name.lower(): (name, value) for name, value in DEFAULT_HEADERS.items()}
_DEFAULT_BLOCK = "".join(f"{name}: {value}\r\n" for name, value in DEFAULT_HEADERS.items())
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_URI_SAFE = "!#$%&'()*+,/:;=?@[]~"
Fields = dict[str, tuple[str, str]]  # lower-case name -> (name as given, value)


class _Route(NamedTuple):
    """What a URL means on the wire, parsed once per distinct URL."""

    scheme: str
    host: str
    port: int
    host_header: str
    target: str  # the request-target: quoted path and query
    name: str  # the default name in the statistics: path and query as given


@lru_cache(maxsize=4096)
def _route(url: str) -> _Route:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"cannot request {url!r}: not an absolute http(s) URL")
    port = parts.port or (443 if scheme == "https" else 80)
    path = parts.path or "/"
    query = f"?{parts.query}" if parts.query else ""
    host_header = parts.netloc.rpartition("@")[2]
    return _Route(
        scheme, parts.hostname, port, host_header, quote(path + query, safe=_URI_SAFE), path + query
    )


def _basic_auth(user: str | bytes, password: str | bytes) -> str:
    raw = [part.encode("latin-1") if isinstance(part, str) else part for part in (user, password)]
    return "Basic " + b64encode(b":".join(raw)).decode("ascii")


def _decode_body(raw: bytes, content_encoding: object) -> bytes:
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


def _body_bytes(body: Any) -> bytes:
    """A request body as bytes: bytes-like, a file-like object, or an iterable of chunks."""
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    if hasattr(body, "read"):
        data = body.read()
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return b"".join(part.encode("utf-8") if isinstance(part, str) else part for part in body)


class _Outgoing:
    """A request on its way, updated as redirects are followed."""

    __slots__ = ("block", "body", "cookies", "fields", "insecure", "method", "url")

    def __init__(
        self,
        method: str,
        url: str,
        body: bytes | None,
        *,
        fields: Fields | None,
        cookies: Mapping[str, str] | None,
        insecure: bool,
    ) -> None:
        self.method = method
        self.url = url
        self.body = body
        self.fields = fields  # None: just the default headers (prebuilt block)
        self.block = _DEFAULT_BLOCK if fields is None else _block(fields)
        self.cookies = cookies
        self.insecure = insecure

    def redirect(self, status_code: int, location: str) -> None:
        """Turn this into the request that follows a redirect response."""
        next_url = urljoin(self.url, location)
        fields = dict(_DEFAULT_FIELDS) if self.fields is None else self.fields
        if urlsplit(next_url).netloc != urlsplit(self.url).netloc:
            fields.pop("authorization", None)
        self.url = next_url
        if status_code == 303 or (status_code in (301, 302) and self.method == "POST"):
            self.method = "HEAD" if self.method == "HEAD" else "GET"
            self.body = None
            fields.pop("content-type", None)
        self.fields = fields
        self.block = _block(fields)

    def encode(self, route: _Route, cookie: str) -> bytes:
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


def _holds_cookies(jar: CookieJar) -> bool:
    # CookieJar's len() walks every cookie; its private dict is empty when it holds none
    stored = getattr(jar, "_cookies", None)
    return bool(stored) if stored is not None else len(jar) > 0


class _CookieSource:
    """Adapts response headers to what ``CookieJar.extract_cookies`` reads."""

    def __init__(self, headers: Headers) -> None:
        self._headers = headers

    def info(self) -> Headers:
        return self._headers


class HttpSession:
    """A user's HTTP client: a base URL, default headers, cookies and pooled connections.

    Creating it opens nothing; connections open on the first request to each host and stay
    open (keep-alive) until :meth:`close`.
    """

    def __init__(
        self,
        base_url: str | None,
        request_event: EventHook,
        user: User | None = None,
        *,
        connection_timeout: float = DEFAULT_CONNECTION_TIMEOUT,
        network_timeout: float = DEFAULT_NETWORK_TIMEOUT,
        insecure: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url, self.auth_header = self._split_credentials(base_url or "")
        self.request_event = request_event
        self.user = user
        self.connection_timeout = connection_timeout
        self.network_timeout = network_timeout
        self.insecure = insecure
        self.headers: dict[str, str] = dict(headers or {})
        self._cookies: CookieJar | None = None
        self.request_name: str | None = None
        self._clients: dict[tuple[str, str, int, bool], Connection] = {}

    @property
    def cookies(self) -> CookieJar:
        """The session's cookie jar (created on first use)."""
        if self._cookies is None:
            self._cookies = CookieJar()
        return self._cookies

    @cookies.setter
    def cookies(self, jar: CookieJar) -> None:
        self._cookies = jar

    @staticmethod
    def _split_credentials(base_url: str) -> tuple[str, str | None]:
        parts = urlsplit(base_url)
        if not parts.username:
            return base_url, None
        netloc = parts.netloc.rpartition("@")[2]
        auth = _basic_auth(unquote(parts.username), unquote(parts.password or ""))
        return parts._replace(netloc=netloc).geturl(), auth

    @contextmanager
    def rename_request(self, name: str) -> Iterator[None]:
        """Record every request made in the ``with`` block under ``name``."""
        self.request_name = name
        try:
            yield
        finally:
            self.request_name = None

    def get(self, url: str, **kwargs: Any) -> Response:
        """Send a GET request (see :meth:`request`)."""
        return self.request("GET", url, **kwargs)

    def post(self, url: str, data: Any = None, json: Any = None, **kwargs: Any) -> Response:
        """Send a POST request (see :meth:`request`)."""
        return self.request("POST", url, data=data, json=json, **kwargs)

    def put(self, url: str, data: Any = None, **kwargs: Any) -> Response:
        """Send a PUT request (see :meth:`request`)."""
        return self.request("PUT", url, data=data, **kwargs)

    def patch(self, url: str, data: Any = None, **kwargs: Any) -> Response:
        """Send a PATCH request (see :meth:`request`)."""
        return self.request("PATCH", url, data=data, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Response:
        """Send a DELETE request (see :meth:`request`)."""
        return self.request("DELETE", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> Response:
        """Send a HEAD request (see :meth:`request`)."""
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> Response:
        """Send an OPTIONS request (see :meth:`request`)."""
        return self.request("OPTIONS", url, **kwargs)

    def request(
        self,
        method: str,
        url: str,
        name: str | None = None,
        catch_response: bool = False,
        *,
        params: Any = None,
        data: Any = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        auth: tuple[str | bytes, str | bytes] | None = None,
        allow_redirects: bool = True,
        timeout: float | None = None,
        context: Mapping[str, Any] | None = None,
        verify: bool | None = None,
        stream: bool = False,
    ) -> Response:
        """Send a request, record it on ``events.request`` and return the response.

        ``url`` is relative to the base URL unless absolute. ``name`` groups requests in the
        statistics (default: the path and query). ``data`` is a body (str, bytes, a file, or
        a dict sent as a form), ``json`` a value sent as JSON. ``timeout`` bounds the whole
        request in seconds. ``verify=False`` skips TLS certificate checks. ``stream`` is
        accepted for Locust compatibility; the body is always read. With
        ``catch_response`` the result is a :class:`ResponseContextManager` to use in a
        ``with`` block.
        """
        method = method.upper()
        target = self._build_url(url, params)
        fields, body = self._prepare(data, json, headers, auth)
        insecure = self.insecure if verify is None else not verify
        outgoing = _Outgoing(
            method, target, body, fields=fields, cookies=cookies, insecure=insecure
        )
        start_time = time.time()
        started = time.perf_counter()
        exchange = self._send(outgoing, allow_redirects, timeout)
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        user = self.user
        merged_context = dict(context or {})
        if user is not None:
            merged_context = {**user.context(), **merged_context}
        meta: dict[str, Any] = {
            "request_type": method,
            "name": name or self.request_name or _route(target).name,
            "response_time": elapsed_ms,
            "response_length": len(exchange.content),
            "response": None,
            "context": merged_context,
            "exception": None,
            "start_time": start_time,
            "url": target,
        }
        if catch_response:
            managed = ResponseContextManager(exchange, elapsed_ms, meta, self.request_event)
            meta["response"] = managed
            return managed
        response = Response(exchange, elapsed_ms, meta)
        meta["response"] = response
        if exchange.error is not None or exchange.status_code >= 400:
            meta["exception"] = response._failure(meta["name"])
        self.request_event.fire(**meta)
        return response

    def close(self) -> None:
        """Close every pooled connection; the session can still be used afterwards."""
        clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()

    def _build_url(self, url: str, params: Any) -> str:
        if url.startswith("/") and self.base_url:
            target = self.base_url.rstrip("/") + url
        elif url[:7].lower() == "http://" or url[:8].lower() == "https://":
            target = url
        elif not url:
            target = self.base_url
        else:
            glue = "" if url.startswith("?") else "/"
            target = self.base_url.rstrip("/") + glue + url
        if target[:7].lower() != "http://" and target[:8].lower() != "https://":
            raise ValueError(
                f"cannot request {url!r}: it is not an absolute http(s) URL and the user has"
                " no host (set the class's host or give one when starting the test)"
            )
        if params:
            query = params if isinstance(params, str | bytes) else urlencode(params, doseq=True)
            query = query.decode() if isinstance(query, bytes) else query
            target += ("&" if "?" in target else "?") + query
        return target

    def _prepare(
        self,
        data: Any,
        json_body: Any,
        headers: Mapping[str, str] | None,
        auth: tuple[str | bytes, str | bytes] | None,
    ) -> tuple[Fields | None, bytes | None]:
        """The header fields (None: just the defaults) and the body bytes of a request."""
        body: bytes | None = None
        content_type = None
        if data is not None:
            if isinstance(data, Mapping) or (isinstance(data, list) and data):
                body = urlencode(data, doseq=True).encode("ascii")
                content_type = "application/x-www-form-urlencoded"
            else:
                body = data.encode("utf-8") if isinstance(data, str) else _body_bytes(data)
        elif json_body is not None:
            body = jsonlib.dumps(json_body).encode("utf-8")
            content_type = "application/json"
        if not (headers or self.headers or auth or self.auth_header or content_type):
            return None, body
        fields = dict(_DEFAULT_FIELDS)
        for extra in (self.headers, headers or {}):
            for field, value in extra.items():
                fields[field.lower()] = (field, value)
        if auth is not None:
            fields["authorization"] = ("Authorization", _basic_auth(*auth))
        elif self.auth_header and "authorization" not in fields:
            fields["authorization"] = ("Authorization", self.auth_header)
        if content_type is not None:
            fields.setdefault("content-type", ("Content-Type", content_type))
        return fields, body

    def _send(self, outgoing: _Outgoing, allow_redirects: bool, timeout: float | None) -> _Exchange:
        """Exchange with redirects; a transport failure becomes an exchange with status 0."""
        deadline = None
        if timeout:
            deadline = gevent.Timeout(timeout, TimeoutError(f"request timed out after {timeout} s"))
            deadline.start()
        try:
            for _ in range(MAX_REDIRECTS):
                exchange = self._exchange(outgoing)
                if not allow_redirects or exchange.status_code not in REDIRECT_CODES:
                    return exchange
                location = exchange.headers.get("location")
                if not location:
                    return exchange
                outgoing.redirect(exchange.status_code, location)
            return self._exchange(outgoing)
        except TRANSPORT_ERRORS as exc:
            return _Exchange(0, "", Headers(), b"", outgoing.url, exc)
        finally:
            if deadline is not None:
                deadline.close()

    def _exchange(self, outgoing: _Outgoing) -> _Exchange:
        """One request and its full response on a pooled connection."""
        url = outgoing.url
        route = _route(url)
        key = (route.scheme, route.host, route.port, outgoing.insecure)
        connection = self._clients.get(key)
        if connection is None:
            connection = self._clients[key] = self._connection(route, outgoing.insecure)
        request = outgoing.encode(route, self._cookie_header(url, outgoing.cookies))
        head_only = outgoing.method == "HEAD"
        try:
            raw = connection.exchange(request, head_only)
        except StaleConnection:  # closed by the server while idle: once more, on a new one
            raw = connection.exchange(request, head_only)
        headers = raw.headers
        if "set-cookie" in headers:
            self.cookies.extract_cookies(cast(Any, _CookieSource(headers)), CookieRequest(url))
        content = raw.body
        if content:
            coding = headers.get("content-encoding")
            if coding:
                content = _decode_body(content, coding)
        return _Exchange(raw.status, raw.reason, headers, content, url, None)

    def _connection(self, route: _Route, insecure: bool) -> Connection:
        return Connection(
            route.host,
            route.port,
            tls=tls_context(insecure) if route.scheme == "https" else None,
            connection_timeout=self.connection_timeout,
            network_timeout=self.network_timeout,
        )

    def _cookie_header(self, url: str, extra: Mapping[str, str] | None) -> str:
        jar = self._cookies
        if jar is not None and _holds_cookies(jar):
            request = CookieRequest(url)
            jar.add_cookie_header(request)
            stored = request.get_header("Cookie")
            if not extra:
                return stored or ""
            pairs = [stored] if stored else []
        elif not extra:
            return ""
        else:
            pairs = []
        pairs.extend(f"{key}={value}" for key, value in extra.items())
        return "; ".join(pairs)
