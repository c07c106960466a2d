"""The HTTP client an ``HttpUser`` calls as ``self.client``; it times and records requests.

:class:`HttpSession` keeps one keep-alive geventhttpclient connection per host it talks to,
sends a request, reads the whole body, follows redirects, keeps cookies, and fires
``events.request`` with the time in ms from sending to the last body byte. What it returns,
and the failures it records, live in :mod:`horde.worker.response` (:class:`Response`,
:class:`ResponseContextManager` for ``catch_response=True``, :class:`HTTPError` and the
other response errors); they are re-exported here so ``horde.worker.client`` keeps offering
every name it always has.

Imports: the standard library, gevent, geventhttpclient and ``horde.worker``.
"""

from __future__ import annotations

import json as jsonlib
import re
import time
import zlib
from base64 import b64encode
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from http.cookiejar import CookieJar
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote, urlencode, urlsplit
from urllib.request import Request as CookieRequest

import gevent
import gevent.ssl
from geventhttpclient import HTTPClient
from geventhttpclient.header import Headers
from geventhttpclient.response import HTTPParseError
from geventhttpclient.url import URL

from horde.worker.response import (
    CatchResponseError,
    HTTPError,
    Response,
    ResponseContextManager,
    ResponseError,
    _Exchange,
)

if TYPE_CHECKING:
    from horde.worker.events import EventHook
    from horde.worker.users import User

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
# what a failed exchange raises: socket errors (incl. timeouts and TLS), bad HTTP, bad gzip,
# and geventhttpclient's "cannot resolve" / "pool closed"
TRANSPORT_ERRORS = (OSError, HTTPParseError, RuntimeError, zlib.error)
_ABSOLUTE_URL = re.compile(r"^https?://", re.IGNORECASE)


def _unverified_context(cafile: str | None = None) -> gevent.ssl.SSLContext:
    context = gevent.ssl.create_default_context(cafile=cafile)
    context.check_hostname = False
    context.verify_mode = gevent.ssl.CERT_NONE
    return context


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


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


@dataclass
class _Outgoing:
    """A request on its way, updated as redirects are followed."""

    method: str
    url: str
    body: Any
    headers: Headers
    cookies: Mapping[str, str]
    insecure: bool

    def redirect(self, status_code: int, location: str) -> None:
        """Turn this into the request that follows a redirect response."""
        next_url = str(URL(self.url).redirect(location))
        if urlsplit(next_url).netloc != urlsplit(self.url).netloc:
            self.headers.discard("Authorization")
        self.url = next_url
        if status_code == 303 or (status_code in (301, 302) and self.method == "POST"):
            self.method = "HEAD" if self.method == "HEAD" else "GET"
            self.body = None
            self.headers.discard("Content-Type")


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
        self.cookies = CookieJar()
        self.request_name: str | None = None
        self._clients: dict[tuple[str, str, int | None, bool], HTTPClient] = {}

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
        statistics (default: the path and query). ``data`` is a body (str, bytes, or a dict
        sent as a form), ``json`` a value sent as JSON. ``timeout`` bounds the whole request
        in seconds. ``verify=False`` skips TLS certificate checks. ``stream`` is accepted for
        Locust compatibility; the body is always read. With ``catch_response`` the result
        is a :class:`ResponseContextManager` to use in a ``with`` block.
        """
        method = method.upper()
        target = self._build_url(url, params)
        send_headers, body = self._prepare(data, json, headers, auth)
        insecure = self.insecure if verify is None else not verify
        start_time = time.time()
        started = time.perf_counter()
        outgoing = _Outgoing(method, target, body, send_headers, cookies or {}, insecure)
        exchange = self._send(outgoing, allow_redirects, timeout)
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        merged_context = dict(self.user.context()) if self.user is not None else {}
        merged_context.update(context or {})
        meta: dict[str, Any] = {
            "request_type": method,
            "name": name or self.request_name or _path_of(target),
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
        meta["exception"] = response._failure(meta["name"])
        self.request_event.fire(**meta)
        return response

    def close(self) -> None:
        """Close every pooled connection; the session can still be used afterwards."""
        clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()

    def _build_url(self, url: str, params: Any) -> str:
        if _ABSOLUTE_URL.match(url):
            target = url
        elif not url:
            target = self.base_url
        else:
            glue = "" if url.startswith(("/", "?")) else "/"
            target = self.base_url.rstrip("/") + glue + url
        if not _ABSOLUTE_URL.match(target):
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
    ) -> tuple[Headers, Any]:
        send_headers = Headers(DEFAULT_HEADERS)
        send_headers.update(self.headers)
        send_headers.update(headers or {})
        if auth is not None:
            send_headers["Authorization"] = _basic_auth(*auth)
        elif self.auth_header and "authorization" not in send_headers:
            send_headers["Authorization"] = self.auth_header
        body: Any = None
        if data is not None:
            if isinstance(data, Mapping) or (isinstance(data, list) and data):
                body = urlencode(data, doseq=True).encode("ascii")
                send_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
            else:
                body = data.encode("utf-8") if isinstance(data, str) else data
        elif json_body is not None:
            body = jsonlib.dumps(json_body).encode("utf-8")
            send_headers.setdefault("Content-Type", "application/json")
        return send_headers, body

    def _send(self, outgoing: _Outgoing, allow_redirects: bool, timeout: float | None) -> _Exchange:
        """Exchange with redirects; a transport failure becomes an exchange with status 0."""
        deadline: AbstractContextManager[Any] = nullcontext()
        if timeout:
            deadline = gevent.Timeout(timeout, TimeoutError(f"request timed out after {timeout} s"))
        try:
            with deadline:
                for _ in range(MAX_REDIRECTS):
                    exchange = self._exchange(outgoing)
                    location = exchange.headers.get("location")
                    if not allow_redirects or exchange.status_code not in REDIRECT_CODES:
                        return exchange
                    if not location:
                        return exchange
                    outgoing.redirect(exchange.status_code, str(location))
                return self._exchange(outgoing)
        except TRANSPORT_ERRORS as exc:
            return _Exchange(0, "", Headers(), b"", outgoing.url, exc)

    def _exchange(self, outgoing: _Outgoing) -> _Exchange:
        """One request and its full response on a pooled connection."""
        url = outgoing.url
        parsed = URL(url)
        client = self._client_for(parsed, outgoing.insecure)
        request_headers = Headers(outgoing.headers)
        cookie = self._cookie_header(url, outgoing.cookies)
        if cookie:
            request_headers["Cookie"] = cookie
        response = client.request(
            outgoing.method, parsed.quoted_uri, body=outgoing.body, headers=request_headers
        )
        try:
            raw = response.read()
        finally:
            response.release()
        response_headers = response.info()
        if "set-cookie" in response_headers:
            request = CookieRequest(url)
            self.cookies.extract_cookies(cast(Any, _CookieSource(response_headers)), request)
        content = _decode_body(raw, response_headers.get("content-encoding"))
        reason = response.status_message or ""
        return _Exchange(response.status_code, reason, response_headers, content, url, None)

    def _cookie_header(self, url: str, extra: Mapping[str, str] | None) -> str:
        pairs = []
        if len(self.cookies):
            request = CookieRequest(url)
            self.cookies.add_cookie_header(request)
            stored = request.get_header("Cookie")
            if stored:
                pairs.append(stored)
        pairs.extend(f"{key}={value}" for key, value in (extra or {}).items())
        return "; ".join(pairs)

    def _client_for(self, url: URL, insecure: bool) -> HTTPClient:
        key = (url.scheme, url.host, url.port, insecure)
        client = self._clients.get(key)
        if client is None:
            secure = url.scheme == "https"
            client = HTTPClient(
                url.host,
                port=url.port,
                ssl=secure,
                ssl_context_factory=_unverified_context if secure and insecure else None,
                insecure=insecure,
                connection_timeout=self.connection_timeout,
                network_timeout=self.network_timeout,
                concurrency=1,
            )
            self._clients[key] = client
        return client
