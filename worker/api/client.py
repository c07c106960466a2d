"""The HTTP client an ``HttpUser`` calls as ``self.client``; it times and records requests.

:class:`HttpSession` keeps keep-alive connections (:mod:`horde.worker.api.http11`) per
(scheme, host, port) it talks to, sends a request, reads the whole body, follows redirects,
keeps cookies, and fires ``events.request`` with the time in ms from sending to the last
body byte. It takes the keyword arguments of requests' ``Session.request`` that Locust
scripts pass (``params``, ``headers``, ``data``, ``json``, ``files``, ``auth``, ``cookies``,
``allow_redirects``, ``timeout``, ``verify``, ``stream``), each with its effect; the bodies
they make are built in :mod:`horde.worker.api.bodies`, the request's bytes in
:mod:`horde.worker.api.outgoing`, and connections come from a
:class:`~horde.worker.api.connections.ConnectionPool`. ``rest`` is Locust's JSON helper
(:mod:`horde.worker.api.rest`). What it returns, and the failures it records, live in
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

import re
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.cookiejar import CookieJar
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote, urlsplit
from urllib.request import Request as CookieRequest

import gevent

from horde.worker.api.bodies import (
    JSON,
    auth_value,
    basic_auth,
    cookie_pairs,
    encode_body,
    query_string,
)
from horde.worker.api.connections import ConnectionPool
from horde.worker.api.http11 import BadResponse, Connection, Headers, StaleConnection, tls_context
from horde.worker.api.outgoing import (
    DEFAULT_FIELDS,
    DEFAULT_HEADERS,
    IDEMPOTENT_METHODS,
    REDIRECT_CODES,
    Fields,
    Outgoing,
    Route,
    Verify,
    ca_context,
    decode_body,
    timeouts,
)
from horde.worker.api.outgoing import route as outgoing_route
from horde.worker.api.pacing import ITERATION_ATTR
from horde.worker.api.response import (
    CatchResponseError,
    HTTPError,
    Response,
    ResponseContextManager,
    ResponseError,
    RestResponseContextManager,
    _Exchange,
)
from horde.worker.api.rest import rest_exchange

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
    "RestResponseContextManager",
]

DEFAULT_CONNECTION_TIMEOUT = 60.0
DEFAULT_NETWORK_TIMEOUT = 60.0
MAX_REDIRECTS = 30  # requests' limit, and Locust FastHttpUser's default
# what a failed exchange raises: socket errors (incl. timeouts, refused, TLS, DNS), a
# response that is not HTTP, a body that does not decompress
TRANSPORT_ERRORS = (OSError, BadResponse, zlib.error)
_CUSTOM_TLS = "<ssl_context_factory>"  # verify value: the session's own TLS context factory
_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Z-]+")
"""An HTTP method: an RFC 9110 token (upper-cased); anything else is refused."""


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
    open (keep-alive) until :meth:`close`. ``pool`` shares connections between sessions
    (default: a pool of this session's own, without a limit); ``ssl_context_factory``
    makes the TLS context used when a request does not pass ``verify``.
    """

    _HEAD_FOLLOWS_REDIRECTS = False  # requests' head() does not follow redirects
    _JSON_ACCEPTS_JSON = False  # a json= body also sets Accept (FastHttpSession does)

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
        max_redirects: int = MAX_REDIRECTS,
        max_retries: int = 0,
        pool: ConnectionPool | None = None,
        ssl_context_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.base_url, self.auth_header = self._split_credentials(base_url or "")
        self.request_event = request_event
        self.user = user
        self.connection_timeout = connection_timeout
        self.network_timeout = network_timeout
        self.insecure = insecure
        self.max_redirects = max_redirects
        self.max_retries = max_retries
        self.headers: dict[str, str] = dict(headers or {})
        self._cookies: CookieJar | None = None
        self.request_name: str | None = None
        self._clients = pool if pool is not None else ConnectionPool()
        self._own_pool = pool is None
        self._ssl_context_factory = ssl_context_factory
        self._custom_tls: Any = None

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
        auth = basic_auth(unquote(parts.username), unquote(parts.password or ""))
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
        """Send a HEAD request (see :meth:`request`; it follows no redirects unless asked)."""
        kwargs.setdefault("allow_redirects", self._HEAD_FOLLOWS_REDIRECTS)
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> Response:
        """Send an OPTIONS request (see :meth:`request`)."""
        return self.request("OPTIONS", url, **kwargs)

    @contextmanager
    def rest(
        self, method: str, url: str, headers: Mapping[str, str] | None = None, **kwargs: Any
    ) -> Iterator[RestResponseContextManager]:
        """A JSON request in a ``with`` block (Locust's ``rest``): see
        :func:`horde.worker.api.rest.rest_exchange`."""
        with rest_exchange(self, method, url, headers, **kwargs) as response:
            yield response

    def request(
        self,
        method: str,
        url: str,
        name: str | None = None,
        catch_response: bool = False,
        context: Mapping[str, Any] | None = None,
        *,
        params: Any = None,
        data: Any = None,
        json: Any = None,
        files: Any = None,
        headers: Mapping[str, str | None] | None = None,
        cookies: Any = None,
        auth: Any = None,
        allow_redirects: bool = True,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: Verify | None = None,
        stream: bool = False,
        max_redirects: int | None = None,
        max_retries: int | None = None,
    ) -> Response:
        """Send a request, record it on ``events.request`` and return the response.

        ``url`` is relative to the base URL unless absolute; ``params`` adds to its query.
        ``name`` groups requests in the statistics (default: the path and query). ``data``
        is a body (str, bytes, a file, or a dict sent as a form), ``json`` a value sent as
        JSON, ``files`` makes a multipart/form-data body (with ``data``'s fields). ``auth``
        is a (user, password) pair sent as Basic; ``cookies`` are sent with this request
        only. ``timeout`` (seconds) bounds the whole request; a ``(connect, read)`` pair
        bounds connecting by the first and the request by the sum; a request that runs out
        of time is recorded as failed with a ``TimeoutError``. ``verify=False`` accepts any
        TLS certificate, a path trusts that CA bundle. ``stream=True`` records the time
        to the response head and the Content-Length header as the length, as Locust does
        (the body is still read before this returns, for ``iter_content``).
        ``max_redirects``/``max_retries`` override the session's limits (retries are for
        idempotent methods failing in transport). With ``catch_response`` the result is
        a :class:`ResponseContextManager` to use in a ``with`` block.
        """
        method = method.upper()
        if not _METHOD.fullmatch(method):  # raised, not recorded, as Locust's clients do
            raise ValueError(f"invalid HTTP method {method!r}")
        target = self._build_url(url, params)
        fields, body = self._prepare(data, json, files, headers, auth)
        iteration = getattr(self.user, ITERATION_ATTR, None)
        if iteration is not None:  # an arrival-rate iteration's global index
            fields = dict(fields or DEFAULT_FIELDS)
            fields["x-horde-iteration"] = ("X-Horde-Iteration", iteration)
        if verify is None:
            verify = _CUSTOM_TLS if self._ssl_context_factory is not None else not self.insecure
        outgoing = Outgoing(
            method, target, body, fields=fields, cookies=cookies, verify=verify, stream=stream
        )
        redirects = self.max_redirects if max_redirects is None else max_redirects
        if not allow_redirects:
            redirects = 0
        retries = self.max_retries if max_retries is None else max_retries
        start_time = time.time()
        started = time.perf_counter()
        exchange = self._send(outgoing, redirects, retries, timeout)
        ended = outgoing.head_at if stream and outgoing.head_at else time.perf_counter()
        elapsed_ms = (ended - started) * 1000.0
        user = self.user
        merged_context = dict(context or {})
        if user is not None:
            merged_context = {**user.context(), **merged_context}
        length = len(exchange.content)
        if stream:
            length = int(exchange.headers.get("content-length") or 0)
        meta: dict[str, Any] = {
            "request_type": method,
            "name": name or self.request_name or self._default_name(url, target),
            "response_time": elapsed_ms,
            "response_length": length,
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
        """Close the pooled connections (unless the pool is shared); the session can still
        be used afterwards."""
        if self._own_pool:
            self._clients.close()

    def _default_name(self, url: str, target: str) -> str:
        """The statistics name of a request without ``name``: requests' path and query."""
        return outgoing_route(target).name

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
            query = query_string(params)
            if query:
                target += ("&" if "?" in target else "?") + query
        return target

    def _prepare(
        self,
        data: Any,
        json_body: Any,
        files: Any,
        headers: Mapping[str, str | None] | None,
        auth: Any,
    ) -> tuple[Fields | None, bytes | None]:
        """The header fields (None: just the defaults) and the body bytes of a request."""
        body, content_type = encode_body(data, json_body, files)
        if not (headers or self.headers or auth or self.auth_header or content_type):
            return None, body
        fields = dict(DEFAULT_FIELDS)
        explicit: set[str] = set()
        for extra in (self.headers, headers or {}):
            for field, value in extra.items():
                key = field.lower()
                if value is None:  # requests: a None value removes a session header
                    fields.pop(key, None)
                    continue
                fields[key] = (field, value)
                explicit.add(key)
        if auth is not None:
            fields["authorization"] = ("Authorization", auth_value(auth))
        elif self.auth_header and "authorization" not in fields:
            fields["authorization"] = ("Authorization", self.auth_header)
        if content_type is not None:
            if content_type.startswith("multipart/"):  # the boundary must be this body's
                fields["content-type"] = ("Content-Type", content_type)
            else:
                fields.setdefault("content-type", ("Content-Type", content_type))
            if self._JSON_ACCEPTS_JSON and content_type == JSON and "accept" not in explicit:
                fields["accept"] = ("Accept", JSON)
        return fields, body

    def _send(
        self, outgoing: Outgoing, max_redirects: int, max_retries: int, timeout: Any
    ) -> _Exchange:
        """Exchange with redirects and retries; a transport failure (a timeout included)
        becomes an exchange with status 0."""
        connect, total = timeouts(timeout)
        deadline = expired = None
        if total is not None:
            expired = TimeoutError(f"request timed out after {total:g} s")
            deadline = gevent.Timeout(total, expired)
            deadline.start()
        attempts = 1 + (max_retries if outgoing.method in IDEMPOTENT_METHODS else 0)
        try:
            for attempt in range(attempts):
                try:
                    return self._follow(outgoing, max_redirects, connect)
                except TRANSPORT_ERRORS as exc:
                    if exc is expired or attempt + 1 >= attempts:
                        return _Exchange(0, "", Headers(), b"", outgoing.url, exc)
            raise AssertionError("unreachable: the last attempt returns")
        finally:
            if deadline is not None:
                deadline.close()

    def _follow(self, outgoing: Outgoing, max_redirects: int, connect: float | None) -> _Exchange:
        """One exchange and up to ``max_redirects`` redirects after it."""
        for _ in range(max_redirects):
            exchange = self._exchange(outgoing, connect)
            if exchange.status_code not in REDIRECT_CODES:
                return exchange
            location = exchange.headers.get("location")
            if not location:
                return exchange
            outgoing.redirect(exchange.status_code, location)
        return self._exchange(outgoing, connect)

    def _exchange(self, outgoing: Outgoing, connect: float | None) -> _Exchange:
        """One request and its full response on a pooled connection."""
        url = outgoing.url
        route = outgoing_route(url)
        key = (route.scheme, route.host, route.port, outgoing.verify)
        pool = self._clients
        connection = pool.acquire(key, self._connection, route, outgoing.verify)
        try:
            request = outgoing.encode(route, self._cookie_header(url, outgoing.cookies))
            head_only = outgoing.method == "HEAD"
            if not connection.is_open:
                connection.connection_timeout = connect or self.connection_timeout
            on_head = outgoing.mark_head if outgoing.stream else None
            try:
                raw = connection.exchange(request, head_only, on_head)
            except StaleConnection:  # closed by the server while idle: once more, on a new one
                connection.connection_timeout = connect or self.connection_timeout
                raw = connection.exchange(request, head_only, on_head)
        finally:
            pool.release(key, connection)
        headers = raw.headers
        if "set-cookie" in headers:
            self.cookies.extract_cookies(cast(Any, _CookieSource(headers)), CookieRequest(url))
        content = raw.body
        if content:
            coding = headers.get("content-encoding")
            if coding:
                content = decode_body(content, coding)
        return _Exchange(raw.status, raw.reason, headers, content, url, None)

    def _connection(self, route: Route, verify: Any) -> Connection:
        tls = None
        if route.scheme == "https":
            if verify is _CUSTOM_TLS:
                if self._custom_tls is None:
                    self._custom_tls = cast(Callable[[], Any], self._ssl_context_factory)()
                tls = self._custom_tls
            elif isinstance(verify, str):
                tls = ca_context(verify)
            else:
                tls = tls_context(not verify)
        return Connection(
            route.host,
            route.port,
            tls=tls,
            connection_timeout=self.connection_timeout,
            network_timeout=self.network_timeout,
        )

    def _cookie_header(self, url: str, extra: Any) -> str:
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
        pairs.extend(cookie_pairs(extra))
        return "; ".join(pairs)
