"""The web authentication middleware and the --web-auth flag, through werkzeug's test client."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import Client

from horde.master.auth import (
    AuthMiddleware,
    BasicCredentials,
    BearerToken,
    parse_authorization,
    parse_web_auth,
)
from horde.protocol.errors import ConfigError

USER = "admin"
PASSWORD = "s3cr3t:with:colons"
TOKEN = "tok-0123456789abcdef"
DENIED = {"success": False, "message": "authentication required"}


def basic(user: str | bytes, password: str | bytes) -> str:
    """A Basic header value for ``user`` and ``password``."""
    raw = (user if isinstance(user, bytes) else user.encode()) + b":"
    raw += password if isinstance(password, bytes) else password.encode()
    return "Basic " + base64.b64encode(raw).decode()


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A tiny WSGI app that answers every path with 200."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello " + environ["PATH_INFO"].encode()]


def client(**config: Any) -> Client:
    """A test client for ``hello`` behind the middleware configured with ``config``."""
    return Client(AuthMiddleware(hello, **config))


@pytest.fixture
def both() -> Client:
    """A client of an app that accepts Basic credentials or the Bearer token."""
    return client(basic=(USER, PASSWORD), token=TOKEN)


def test_no_header_gets_401_with_both_challenges(both: Client) -> None:
    """Without Authorization every path is refused with JSON and a challenge per scheme."""
    for path in ("/", "/swarm", "/static/app.js", "/metrics"):
        answer = both.get(path)
        assert answer.status_code == 401
        assert answer.json == DENIED
        assert answer.headers["Content-Type"] == "application/json"
        assert answer.headers.getlist("WWW-Authenticate") == [
            'Basic realm="horde"',
            'Bearer realm="horde"',
        ]


def test_basic_only_challenges_with_basic_only() -> None:
    """A middleware without a token challenges with Basic alone, so browsers prompt."""
    answer = client(basic=(USER, PASSWORD)).get("/")
    assert answer.headers.getlist("WWW-Authenticate") == ['Basic realm="horde"']


@pytest.mark.parametrize(
    "header",
    [
        basic("root", PASSWORD),
        basic(USER, "wrong"),
        basic(USER, PASSWORD + "x"),
        basic(USER, ""),
        basic("", ""),
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no colon here").decode(),
        "Basic " + base64.b64encode(b"admin:\xff\xfe").decode(),
        "Basic",
        "Bearer wrong-token",
        "Bearer",
        "Bearer " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
        "Digest username=admin",
        TOKEN,
        "",
    ],
    ids=[
        "wrong-user",
        "wrong-password",
        "longer-password",
        "empty-password",
        "empty-both",
        "bad-base64",
        "missing-colon",
        "non-utf8",
        "basic-no-value",
        "wrong-token",
        "bearer-no-value",
        "basic-as-bearer",
        "other-scheme",
        "token-without-scheme",
        "empty",
    ],
)
def test_wrong_or_malformed_credentials_get_401(both: Client, header: str) -> None:
    """Wrong users, passwords or tokens and malformed headers are a 401, never a 500."""
    answer = both.get("/", headers={"Authorization": header})
    assert answer.status_code == 401
    assert answer.json == DENIED


def test_right_basic_credentials_pass(both: Client) -> None:
    """The configured user and password (colons in it included) reach the app."""
    answer = both.get("/stats/requests", headers={"Authorization": basic(USER, PASSWORD)})
    assert answer.status_code == 200
    assert answer.data == b"hello /stats/requests"
    lower = "basic " + basic(USER, PASSWORD).split(" ", 1)[1]
    assert both.get("/", headers={"Authorization": lower}).status_code == 200


def test_right_bearer_token_passes(both: Client) -> None:
    """The configured token reaches the app."""
    answer = both.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    assert answer.data == b"hello /metrics"


def test_a_scheme_that_is_not_configured_is_refused() -> None:
    """With only a token configured, even the token sent as a Basic password is refused."""
    tokens_only = client(token=TOKEN)
    assert tokens_only.get("/", headers={"Authorization": basic(USER, TOKEN)}).status_code == 401
    assert tokens_only.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_non_ascii_credentials_are_compared_as_utf8() -> None:
    """A UTF-8 user and password authenticate; the same text in Latin-1 does not."""
    app = client(basic=("jürgen", "pässwörd"))
    good = basic("jürgen".encode(), "pässwörd".encode())
    bad = basic("jürgen".encode("latin-1"), "pässwörd".encode("latin-1"))
    assert app.get("/", headers={"Authorization": good}).status_code == 200
    assert app.get("/", headers={"Authorization": bad}).status_code == 401


def test_flask_app_behind_the_middleware_is_protected() -> None:
    """Wrapping a Flask app's wsgi_app protects its routes and its static files."""
    app = Flask("t")
    app.add_url_rule("/ok", view_func=lambda: "ok")
    app.wsgi_app = AuthMiddleware(app.wsgi_app, basic=(USER, PASSWORD))  # type: ignore[method-assign]
    http = app.test_client()
    assert http.get("/ok").status_code == 401
    assert http.get("/static/missing.css").status_code == 401
    assert http.get("/ok", headers={"Authorization": basic(USER, PASSWORD)}).data == b"ok"


def test_secrets_never_appear_in_answers_or_repr(both: Client) -> None:
    """Neither the 401 body and headers nor the middleware's repr show the password or token."""
    answer = both.get("/", headers={"Authorization": basic(USER, "guess")})
    shown = answer.get_data(as_text=True) + str(answer.headers)
    middleware = AuthMiddleware(hello, basic=(USER, PASSWORD), token=TOKEN)
    for text in (shown, repr(middleware), str(middleware)):
        assert PASSWORD not in text
        assert TOKEN not in text
    assert "basic" in repr(middleware) and "bearer" in repr(middleware)
    parsed = parse_authorization(basic(USER, PASSWORD))
    assert parsed == BasicCredentials(USER.encode(), PASSWORD.encode())
    assert PASSWORD not in repr(parsed)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (basic("u", "p:q"), BasicCredentials(b"u", b"p:q")),
        ("  BASIC  " + base64.b64encode(b"u:").decode(), BasicCredentials(b"u", b"")),
        ("bearer abc", BearerToken(b"abc")),
        ("Basic dTp", None),
        ("Token abc", None),
        ("Bearer \u20ac", None),
    ],
)
def test_parse_authorization_table(
    header: str, expected: BasicCredentials | BearerToken | None
) -> None:
    """Headers parse to credentials, or to None when malformed (never an exception)."""
    assert parse_authorization(header) == expected


def test_parse_web_auth_splits_on_the_first_colon() -> None:
    """``user:pa:ss`` is the user ``user`` with the password ``pa:ss``."""
    assert parse_web_auth("user:pa:ss") == ("user", "pa:ss")


@pytest.mark.parametrize("text", ["nocolon-hunter2", ":hunter2", "user:", ""])
def test_parse_web_auth_errors_never_show_the_password(text: str) -> None:
    """A missing colon, user or password is a ConfigError that does not echo the value."""
    with pytest.raises(ConfigError) as info:
        parse_web_auth(text)
    assert "hunter2" not in str(info.value)
    assert "user:password" in str(info.value)


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"basic": ("", "pw-hunter2")},
        {"basic": ("user", "")},
        {"basic": ("us:er", "pw-hunter2")},
        {"token": ""},
        {"token": "tok-hunter2", "realm": 'bad"realm'},
        {"token": "tok-hunter2", "realm": "line\nbreak"},
    ],
)
def test_unusable_configuration_is_a_config_error(config: dict[str, Any]) -> None:
    """No scheme, empty secrets, a colon in the user or an unquotable realm are refused."""
    with pytest.raises(ConfigError) as info:
        AuthMiddleware(hello, **config)
    assert "hunter2" not in str(info.value)
