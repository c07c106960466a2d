"""Authentication for the master's web server: a WSGI middleware in front of every path.

Responsibility: let a request through only when its ``Authorization`` header carries the
configured Basic credentials or Bearer token; answer anything else (no header, a wrong or
malformed one) with 401 and a JSON body in Locust's shape. Static files are behind it too,
since it wraps the whole app. Secrets are compared in constant time (``hmac.compare_digest``
on SHA-256 digests, so their lengths do not leak either); the user and the password are
both compared before deciding, with no early exit. The middleware keeps only digests, and
neither its ``repr``, its answers nor its errors ever contain a password or token.
:func:`parse_web_auth` validates the ``--web-auth user:password`` flag.

Imports: the standard library and horde.protocol.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from horde.protocol.errors import ConfigError

__all__ = [
    "AuthMiddleware",
    "BasicCredentials",
    "BearerToken",
    "parse_authorization",
    "parse_web_auth",
]

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

DENIED_BODY = json.dumps({"success": False, "message": "authentication required"}).encode()
"""The body of every 401 (Locust's failure shape; it names no credential)."""


@dataclass(frozen=True, slots=True)
class BasicCredentials:
    """The user and password of a Basic ``Authorization`` header, as raw bytes."""

    user: bytes
    password: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class BearerToken:
    """The token of a Bearer ``Authorization`` header, as raw bytes."""

    token: bytes = field(repr=False)


def parse_authorization(header: str) -> BasicCredentials | BearerToken | None:
    """Parse an ``Authorization`` header (a WSGI latin-1 string); None when malformed.

    The scheme is case-insensitive. Basic needs valid base64 of UTF-8 ``user:password``
    (split on the first colon); Bearer needs a non-empty token. Anything else is None.
    """
    scheme, _, rest = header.strip().partition(" ")
    rest = rest.strip()
    try:
        raw = rest.encode("latin-1")
    except UnicodeEncodeError:  # not what a WSGI server puts in environ, but never a 500
        return None
    if scheme.lower() == "bearer":
        return BearerToken(raw) if raw else None
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(raw, validate=True)
        decoded.decode("utf-8")
    except (binascii.Error, ValueError):  # bad base64, or not UTF-8
        return None
    user, colon, password = decoded.partition(b":")
    if not colon:
        return None
    return BasicCredentials(user, password)


def _digest(secret: bytes) -> bytes:
    """SHA-256 of ``secret``: fixed-length input for ``compare_digest``."""
    return hashlib.sha256(secret).digest()


def _same(given: bytes, expected_digest: bytes) -> bool:
    """Constant-time check that ``given`` hashes to ``expected_digest``."""
    return hmac.compare_digest(_digest(given), expected_digest)


def _validate_realm(realm: str) -> None:
    """Refuse a realm that cannot sit inside a quoted header parameter."""
    if not realm or not realm.isprintable() or '"' in realm or "\\" in realm:
        raise ConfigError(f"auth realm must be printable text without quotes, got {realm!r}")


class AuthMiddleware:
    """A WSGI app that calls ``app`` only for requests with valid credentials.

    ``basic`` is a ``(user, password)`` pair, ``token`` a Bearer token; at least one is
    required. Any other request gets 401 with a ``WWW-Authenticate`` challenge per
    configured scheme and ``{"success": false, "message": "authentication required"}``.
    """

    __slots__ = ("_app", "_basic", "_challenges", "_token", "realm")

    def __init__(
        self,
        app: WSGIApp,
        *,
        basic: tuple[str, str] | None = None,
        token: str | None = None,
        realm: str = "horde",
    ) -> None:
        """Wrap ``app``; raises ConfigError (naming no secret) for unusable settings."""
        if basic is None and token is None:
            raise ConfigError("web authentication needs a user:password or a token")
        _validate_realm(realm)
        self._app = app
        self.realm = realm
        self._basic: tuple[bytes, bytes] | None = None
        self._token: bytes | None = None
        challenges = []
        if basic is not None:
            user, password = basic
            if not user or not password:
                raise ConfigError("web authentication needs a non-empty user and password")
            if ":" in user:
                raise ConfigError("the web authentication user name must not contain a colon")
            self._basic = (_digest(user.encode("utf-8")), _digest(password.encode("utf-8")))
            challenges.append(("WWW-Authenticate", f'Basic realm="{realm}"'))
        if token is not None:
            if not token:
                raise ConfigError("the web authentication token must not be empty")
            self._token = _digest(token.encode("utf-8"))
            challenges.append(("WWW-Authenticate", f'Bearer realm="{realm}"'))
        self._challenges = challenges

    def __repr__(self) -> str:
        """Name the schemes and realm, never a credential."""
        schemes = [s for s, on in (("basic", self._basic), ("bearer", self._token)) if on]
        return f"AuthMiddleware(schemes={schemes!r}, realm={self.realm!r})"

    def allows(self, header: str) -> bool:
        """Whether an ``Authorization`` header value carries valid credentials."""
        credentials = parse_authorization(header)
        if isinstance(credentials, BasicCredentials) and self._basic is not None:
            user_ok = _same(credentials.user, self._basic[0])
            password_ok = _same(credentials.password, self._basic[1])
            return user_ok & password_ok  # both compared: no early exit on the user
        if isinstance(credentials, BearerToken) and self._token is not None:
            return _same(credentials.token, self._token)
        return False

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Serve the request through ``app`` if authenticated, else answer 401."""
        header = environ.get("HTTP_AUTHORIZATION")
        if isinstance(header, str) and self.allows(header):
            return self._app(environ, start_response)
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(DENIED_BODY))),
            ("Cache-Control", "no-store"),
            *self._challenges,
        ]
        start_response("401 Unauthorized", headers)
        return [DENIED_BODY]


def parse_web_auth(text: str) -> tuple[str, str]:
    """Split ``--web-auth user:password`` on its first colon into (user, password).

    Raises ConfigError for a missing colon, an empty user or an empty password; the
    message never repeats the value, which holds the password.
    """
    user, colon, password = text.partition(":")
    if not colon:
        raise ConfigError("--web-auth must be user:password (no colon found)")
    if not user:
        raise ConfigError("--web-auth has an empty user name; expected user:password")
    if not password:
        raise ConfigError("--web-auth has an empty password; expected user:password")
    return user, password
