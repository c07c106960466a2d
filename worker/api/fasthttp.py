"""``FastHttpUser`` and its ``FastHttpSession``: Locust's fast-client API on horde's client.

Locust's ``FastHttpUser`` runs on geventhttpclient; horde's runs on the same HTTP/1.1
client as ``HttpUser`` (:mod:`horde.worker.api.http11` through
:class:`~horde.worker.api.client.HttpSession`), with what differs in Locust's
``FastHttpSession``: TLS certificates are not checked unless ``insecure = False``; a
request without ``name`` is recorded under the URL as given (not the path and query
requests uses); a ``json=`` body also sets ``Accept: application/json``; ``head`` follows
redirects; at most ``concurrency`` connections per host are in use at once (further
requests wait); ``max_redirects`` and ``max_retries`` (retries of idempotent requests that
fail in transport) apply per session or per request; ``client_pool`` shares one
:class:`~horde.worker.api.connections.ConnectionPool` between users; ``iter_lines`` and
``cookiejar`` are there. Proxies (``proxy_host``/``proxy_port``) are refused with a
``ConfigError`` rather than ignored.

Imports: the standard library, gevent and ``horde.worker.api`` (and ``horde.protocol``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from http.cookiejar import CookieJar
from typing import TYPE_CHECKING, Any, ClassVar

import gevent.ssl

from horde.protocol.errors import ConfigError
from horde.worker.api.client import TRANSPORT_ERRORS, HttpSession
from horde.worker.api.connections import ConnectionPool
from horde.worker.api.http11 import tls_context
from horde.worker.api.outgoing import absolute_http_url_regexp
from horde.worker.api.response import (
    CatchResponseError,
    HTTPError,
    Response,
    ResponseContextManager,
    ResponseError,
    RestResponseContextManager,
)
from horde.worker.api.users import SessionUser

if TYPE_CHECKING:
    from horde.worker.api.environment import Environment
    from horde.worker.api.events import EventHook
    from horde.worker.api.users import User

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

FAILURE_EXCEPTIONS = TRANSPORT_ERRORS
"""What a request that fails in transport records (Locust's name for the tuple)."""
FastResponse = Response
"""What a request returns (Locust's ``FastResponse``)."""
ErrorResponse = Response
"""A request that failed in transport returns a :class:`Response` with status 0 and ``error``."""
LocustBadStatusCode = HTTPError
"""What ``raise_for_status()`` raises for a status >= 400."""

# geventhttpclient pools a script shares between users -> the horde pool standing in for each
_FOREIGN_POOLS: dict[int, tuple[object, ConnectionPool]] = {}


def insecure_ssl_context_factory() -> gevent.ssl.SSLContext:
    """A client TLS context that checks no certificate (``FastHttpUser``'s default)."""
    return tls_context(True)


def shared_pool(client_pool: object, concurrency: int) -> ConnectionPool:
    """The pool a session uses: ``client_pool`` if it is horde's, one horde pool standing in
    for a geventhttpclient ``HTTPClientPool`` (with its ``concurrency``), or a new pool
    allowing ``concurrency`` connections per host when ``client_pool`` is None."""
    if client_pool is None:
        return ConnectionPool(concurrency)
    if isinstance(client_pool, ConnectionPool):
        return client_pool
    client_args = getattr(client_pool, "client_args", None)
    if not isinstance(client_args, Mapping):
        raise ConfigError(
            f"client_pool={client_pool!r}: give a horde.contrib.fasthttp.ConnectionPool"
            " (or geventhttpclient's HTTPClientPool)"
        )
    known = _FOREIGN_POOLS.get(id(client_pool))
    if known is None or known[0] is not client_pool:
        known = _FOREIGN_POOLS[id(client_pool)] = (
            client_pool,
            ConnectionPool(int(client_args.get("concurrency", 1))),
        )
    return known[1]


class FastHttpSession(HttpSession):
    """Locust's ``FastHttpSession``: an :class:`HttpSession` with the fast client's defaults
    and extras (see the module docstring). Creating it opens nothing."""

    _HEAD_FOLLOWS_REDIRECTS = True
    _JSON_ACCEPTS_JSON = True

    def __init__(  # noqa: PLR0917 - Locust's FastHttpSession takes these positionally
        self,
        base_url: str | None,
        request_event: EventHook,
        user: User | None = None,
        insecure: bool = True,
        client_pool: object = None,
        ssl_context_factory: Callable[[], Any] | None = None,
        *,
        network_timeout: float = 60.0,
        connection_timeout: float = 60.0,
        max_redirects: int = 30,
        max_retries: int = 0,
        concurrency: int = 10,
        headers: Mapping[str, str] | None = None,
        proxy_host: str | None = None,
        proxy_port: int | None = None,
    ) -> None:
        if proxy_host or proxy_port:
            raise ConfigError(
                f"proxy {proxy_host}:{proxy_port}: horde's FastHttpUser does not send through"
                " HTTP proxies; leave proxy_host and proxy_port unset"
            )
        super().__init__(
            base_url,
            request_event,
            user,
            connection_timeout=connection_timeout,
            network_timeout=network_timeout,
            insecure=insecure,
            headers=headers,
            max_redirects=max_redirects,
            max_retries=max_retries,
            pool=shared_pool(client_pool, concurrency),
            ssl_context_factory=ssl_context_factory,
        )
        self._own_pool = client_pool is None

    @property
    def cookiejar(self) -> CookieJar:
        """The session's cookie jar (Locust's ``FastHttpSession.cookiejar``)."""
        return self.cookies

    # Locust's positional order differs from requests'; horde's own callers pass keywords
    def request(  # type: ignore[override]  # noqa: PLR0917 - Locust's positional order
        self,
        method: str,
        url: str,
        name: str | None = None,
        data: Any = None,
        catch_response: bool = False,
        stream: bool = False,
        headers: Mapping[str, str | None] | None = None,
        auth: Any = None,
        json: Any = None,
        allow_redirects: bool = True,
        context: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Response:
        """:meth:`HttpSession.request` with the positional order of Locust's
        ``FastHttpSession.request`` (``data`` fourth); the other keywords are the same."""
        return super().request(
            method,
            url,
            name,
            catch_response,
            context,
            data=data,
            stream=stream,
            headers=headers,
            auth=auth,
            json=json,
            allow_redirects=allow_redirects,
            **kwargs,
        )

    def _default_name(self, url: str, target: str) -> str:
        """A request without ``name`` is recorded under its URL as given (as Locust's)."""
        return url

    def iter_lines(self, url: str, method: str = "GET", **kwargs: Any) -> Iterator[str]:
        """Send a request and yield its body's lines (split on "\\n"); a failed request
        raises its error first."""
        response = self.request(method, url, stream=True, **kwargs)
        response.raise_for_status()
        lines = response.text.split("\n")
        if lines and not lines[-1]:
            lines.pop()
        yield from lines


class FastHttpUser(SessionUser):
    """A user whose ``self.client`` is a :class:`FastHttpSession` on the user's host.

    Class attributes, read when the client is made: ``network_timeout`` and
    ``connection_timeout`` (seconds), ``max_redirects``, ``max_retries``, ``insecure``
    (default True: certificates are not checked), ``default_headers``, ``concurrency``
    (connections per host in use at once), ``client_pool`` (a pool shared by every user
    of the class), ``ssl_context_factory`` (a callable returning the TLS context), and
    ``proxy_host``/``proxy_port``, which horde refuses.
    """

    abstract = True
    network_timeout: float = 60.0
    connection_timeout: float = 60.0
    max_redirects: int = 30
    max_retries: int = 0
    insecure: bool = True
    default_headers: ClassVar[dict[str, str] | None] = None
    concurrency: int = 10
    proxy_host: str | None = None
    proxy_port: int | None = None
    client_pool: Any = None
    ssl_context_factory: Callable[[], Any] | None = None

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        if self.proxy_host or self.proxy_port:
            raise ConfigError(
                f"{type(self).__name__}: horde's FastHttpUser does not send through HTTP"
                " proxies; leave proxy_host and proxy_port unset"
            )

    def new_client(self) -> FastHttpSession:
        """A :class:`FastHttpSession` on the user's host with the class's settings."""
        cls = type(self)
        return FastHttpSession(
            self.host,
            self.environment.events.request,
            self,
            insecure=self.insecure,
            client_pool=self.client_pool,
            # read from the class: a plain function set there must not bind to the user
            ssl_context_factory=cls.ssl_context_factory,
            network_timeout=self.network_timeout,
            connection_timeout=self.connection_timeout,
            max_redirects=self.max_redirects,
            max_retries=self.max_retries,
            concurrency=self.concurrency,
            headers=self.default_headers,
        )
