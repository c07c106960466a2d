"""Porting Locust scripts, the HTTP side: every requests-style keyword of ``HttpUser``'s client
and of ``FastHttpUser``'s, ``rest``/``rest_``, and the module paths scripts import from.

Each keyword is checked against a real server on 127.0.0.1 that echoes what it received,
so a keyword accepted and ignored fails its test; ``timeout`` meets a slow endpoint and a
listener that never accepts, ``verify`` a TLS server with a certificate made here. The last
test runs one locustfile under Locust 2.47 and, with its imports rewritten, under horde.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import datetime
import email
import email.policy
import http.server
import inspect
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from http.cookiejar import Cookie, CookieJar
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import gevent.ssl
import pytest
from gevent.pywsgi import WSGIServer

import horde
from horde.clients import HttpSession
from horde.contrib.fasthttp import ConnectionPool, FastHttpSession, FastHttpUser
from horde.protocol.errors import ConfigError
from horde.worker.api.environment import Environment
from horde.worker.api.events import Events
from tests.support import SCRIPTS, VENV_BIN

Environ = dict[str, Any]
Recorded = list[dict[str, Any]]


def _parts(content_type: str, body: bytes) -> list[dict[str, Any]]:
    """The parts of a multipart/form-data body, as the server saw them."""
    message = email.message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=email.policy.HTTP
    )
    return [
        {
            "name": part.get_param("name", header="content-disposition"),
            "filename": part.get_filename(),
            "type": part["content-type"] and part.get_content_type(),
            "body": part.get_payload(decode=True).decode(),
        }
        for part in message.iter_parts()  # type: ignore[attr-defined]
    ]


class Echo:
    """A WSGI app that tells what it received, with slow, redirecting and JSON routes."""

    def __init__(self) -> None:
        self.release = gevent.event.Event()
        self.in_flight = self.most_in_flight = 0
        self.hits: Counter[str] = Counter()

    def __call__(self, environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        self.hits[path] += 1
        if path == "/drip":  # the head and half the body now, the rest 0.5 s later
            start_response("200 OK", [("Content-Length", "10")])
            return self.drip()
        status, body, ctype, extra = "200 OK", b"", "application/json", []
        if path == "/echo":
            body = json.dumps(self.echo(environ)).encode()
        elif path == "/slow":
            self.release.wait(5)
            body = b'"late"'
        elif path == "/busy":
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            gevent.sleep(0.1)
            self.in_flight -= 1
        elif path in ("/redirect", "/loop"):
            status, extra = "302 Found", [("Location", "/echo" if path == "/redirect" else path)]
        elif path == "/json":
            body = b'{"foo": 1}'
        elif path == "/html":
            body, ctype = b"<html>hi</html>", "text/html"
        elif path == "/error-json":
            status, body = "500 Internal Server Error", b'{"error": "boom"}'
        elif path == "/port":
            body = str(environ["REMOTE_PORT"]).encode()
        elif path == "/big":
            body = b"x" * 5000
        start_response(
            status, [("Content-Type", ctype), ("Content-Length", str(len(body))), *extra]
        )
        return [body]

    @staticmethod
    def drip() -> Iterator[bytes]:
        """A body sent in two halves, 0.5 s apart."""
        yield b"12345"
        gevent.sleep(0.5)
        yield b"67890"

    @staticmethod
    def echo(environ: Environ) -> dict[str, Any]:
        """The request's method, query, headers, body and multipart parts."""
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        ctype = environ.get("CONTENT_TYPE", "")
        headers = {k[5:].lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        return {
            "method": environ["REQUEST_METHOD"],
            "query": environ.get("QUERY_STRING", ""),
            "type": ctype,
            "headers": headers,
            "body": body.decode("latin-1"),
            "parts": _parts(ctype, body) if ctype.startswith("multipart/") else None,
        }


@pytest.fixture
def echo() -> Iterator[Echo]:
    """The app behind ``base_url``."""
    app = Echo()
    yield app
    app.release.set()


def _serve(app: Echo, **tls: str) -> WSGIServer:
    server = WSGIServer(("127.0.0.1", 0), app, log=None, error_log=None, **tls)
    server.start()
    return server


@pytest.fixture
def base_url(echo: Echo) -> Iterator[str]:
    """A plain HTTP server for ``echo`` on a free loopback port."""
    server = _serve(echo)
    yield f"http://127.0.0.1:{server.server_port}"
    echo.release.set()
    server.stop(timeout=1)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made for this test run."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_url(echo: Echo, certificate: tuple[Path, Path]) -> Iterator[str]:
    """An HTTPS server for ``echo`` with the self-signed ``certificate``."""
    server = _serve(echo, certfile=str(certificate[0]), keyfile=str(certificate[1]))
    yield f"https://127.0.0.1:{server.server_port}"
    server.stop(timeout=1)


@pytest.fixture
def recorded() -> Recorded:
    """The request events the sessions below fire."""
    return []


def _events(recorded: Recorded) -> Events:
    events = Events()
    events.request.add_listener(lambda **kwargs: recorded.append(kwargs))
    return events


@pytest.fixture
def session(base_url: str, recorded: Recorded) -> Iterator[HttpSession]:
    """An ``HttpUser``-style session on ``base_url`` recording into ``recorded``."""
    client = HttpSession(base_url=base_url, request_event=_events(recorded).request, user=None)
    yield client
    client.close()


@pytest.fixture
def fast(base_url: str, recorded: Recorded) -> Iterator[FastHttpSession]:
    """A ``FastHttpUser``-style session on ``base_url`` recording into ``recorded``."""
    client = FastHttpSession(base_url, _events(recorded).request, None)
    yield client
    client.close()


def test_params_headers_json_and_form_reach_the_server(session: HttpSession) -> None:
    """params join the query (None dropped), headers are sent, json and data are encoded."""
    sent = session.get("/echo?a=1", params={"b": [2, 3], "c": None}, headers={"X-T": "v"}).json()
    assert sent["query"] == "a=1&b=2&b=3"
    assert sent["headers"]["x_t"] == "v"
    posted = session.post("/echo", json={"k": [1]}).json()
    assert (posted["type"], json.loads(posted["body"])) == ("application/json", {"k": [1]})
    form = session.patch("/echo", data=[("k", "v"), ("k", "w")]).json()
    assert (form["type"], form["body"]) == ("application/x-www-form-urlencoded", "k=v&k=w")


def test_files_are_sent_as_multipart_form_data(session: HttpSession, tmp_path: Path) -> None:
    """files (with data fields) become multipart parts with names, filenames and types."""
    upload = tmp_path / "report.csv"
    upload.write_text("a,b\n")
    with upload.open("rb") as handle:
        files = {"doc": ("notes.txt", b"hello", "text/plain"), "csv": handle}
        sent = session.post("/echo", data={"field": "value"}, files=files).json()
    assert sent["type"].startswith("multipart/form-data; boundary=")
    assert sent["parts"] == [
        {"name": "field", "filename": None, "type": None, "body": "value"},
        {"name": "doc", "filename": "notes.txt", "type": "text/plain", "body": "hello"},
        {"name": "csv", "filename": "report.csv", "type": None, "body": "a,b\n"},
    ]


def test_auth_tuple_and_basic_auth_objects_send_basic_credentials(session: HttpSession) -> None:
    """auth=(user, password) and requests' HTTPBasicAuth send Basic; other auth is refused."""
    from requests.auth import HTTPBasicAuth

    for auth in (("ann", "pw"), HTTPBasicAuth("ann", "pw")):
        header = session.get("/echo", auth=auth).json()["headers"]["authorization"]
        assert base64.b64decode(header.removeprefix("Basic ")) == b"ann:pw"
    with pytest.raises(TypeError, match="Basic"):
        session.get("/echo", auth=object())


def test_cookies_are_sent_with_that_request_only(session: HttpSession) -> None:
    """cookies (a dict or a CookieJar) go with one request and are not kept."""
    jar = CookieJar()
    fields = [0, "jar", "2", None, False, "127.0.0.1", False, False, "/", False, False]
    jar.set_cookie(Cookie(*fields, None, False, None, None, {}))
    assert session.get("/echo", cookies={"one": "1"}).json()["headers"]["cookie"] == "one=1"
    assert session.get("/echo", cookies=jar).json()["headers"]["cookie"] == "jar=2"
    assert "cookie" not in session.get("/echo").json()["headers"]


def test_allow_redirects_and_head_follow_requests_rules(
    session: HttpSession, fast: FastHttpSession
) -> None:
    """allow_redirects=False returns the 302; head() follows only on the fast client."""
    assert session.get("/redirect").status_code == 200
    assert session.get("/redirect", allow_redirects=False).status_code == 302
    assert session.head("/redirect").status_code == 302
    assert fast.head("/redirect").status_code == 200


def test_timeout_cuts_a_slow_response_and_is_recorded_as_a_timeout(
    session: HttpSession, recorded: Recorded
) -> None:
    """A response slower than ``timeout`` is a failure with a TimeoutError, in time."""
    started = time.monotonic()
    response = session.get("/slow", timeout=0.3)
    assert time.monotonic() - started < 2
    assert response.status_code == 0
    assert isinstance(recorded[-1]["exception"], TimeoutError)


@pytest.mark.parametrize("timeout", [0.3, (0.3, 30)])
def test_timeout_bounds_connecting(recorded: Recorded, timeout: Any) -> None:
    """A connect that never completes (the listener's queue is full) times out in time."""
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        filler.connect(listener.getsockname())  # fills the accept queue: later SYNs wait
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        client = HttpSession(url, _events(recorded).request)
        started = time.monotonic()
        response = client.get("/", timeout=timeout)
        assert time.monotonic() - started < 2
    assert response.status_code == 0
    assert isinstance(recorded[-1]["exception"], TimeoutError)


def test_verify_checks_certificates_unless_told_not_to(
    tls_url: str, certificate: tuple[Path, Path], recorded: Recorded
) -> None:
    """A self-signed certificate fails by default, passes with verify=False or its CA path."""
    client = HttpSession(tls_url, _events(recorded).request)
    refused = client.get("/echo")
    assert refused.status_code == 0
    assert isinstance(recorded[-1]["exception"], gevent.ssl.SSLError)
    assert client.get("/echo", verify=False).status_code == 200
    assert client.get("/echo", verify=str(certificate[0])).status_code == 200
    client.close()


def test_fast_client_skips_checks_by_default_and_honours_its_tls_settings(
    tls_url: str, certificate: tuple[Path, Path]
) -> None:
    """FastHttpSession: insecure by default, verifying when insecure=False, custom context."""
    request = Events().request
    assert FastHttpSession(tls_url, request, None).get("/echo").status_code == 200
    assert FastHttpSession(tls_url, request, None, insecure=False).get("/echo").status_code == 0

    def trusting() -> gevent.ssl.SSLContext:
        context = gevent.ssl.SSLContext(gevent.ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cafile=str(certificate[0]))
        return context

    custom = FastHttpSession(tls_url, request, None, insecure=False, ssl_context_factory=trusting)
    assert custom.get("/echo").status_code == 200


def test_stream_times_the_head_and_records_the_announced_length(
    session: HttpSession, recorded: Recorded
) -> None:
    """stream=True times the request to its head and records the Content-Length."""
    assert session.get("/drip", stream=True).content == b"1234567890"
    assert session.get("/drip").content == b"1234567890"
    streamed, whole = (event["response_time"] for event in recorded)
    assert streamed < 300
    assert whole >= 500
    recorded.clear()
    response = session.get("/big", stream=True)
    assert recorded[-1]["response_length"] == 5000
    assert [len(chunk) for chunk in response.iter_content(2048)] == [2048, 2048, 904]
    recorded.clear()
    session.get("/echo", stream=True)
    echoed = session.get("/echo")
    assert recorded[0]["response_length"] == len(echoed.content)


def test_names_follow_each_client(
    session: HttpSession, fast: FastHttpSession, recorded: Recorded
) -> None:
    """HttpSession names by path and query, FastHttpSession by the URL as given; name wins."""
    session.get("/echo", params={"q": 1})
    fast.get("/echo", params={"q": 1})
    fast.get("/echo", name="custom")
    assert [event["name"] for event in recorded] == ["/echo?q=1", "/echo", "custom"]


def test_fast_json_bodies_ask_for_json(fast: FastHttpSession) -> None:
    """A json= body on the fast client sets Accept: application/json unless given."""
    assert fast.post("/echo", json={}).json()["headers"]["accept"] == "application/json"
    given = fast.post("/echo", json={}, headers={"Accept": "x/y"}).json()
    assert given["headers"]["accept"] == "x/y"


def test_fast_request_takes_data_fourth_as_locust_does(fast: FastHttpSession) -> None:
    """FastHttpSession.request(method, url, name, data) sends data as the body."""
    assert fast.request("POST", "/echo", "named", "raw body").json()["body"] == "raw body"


def test_concurrency_bounds_connections_in_use_per_host(base_url: str, echo: Echo) -> None:
    """Five greenlets on one FastHttpSession with concurrency=2 never exceed 2 in flight."""
    client = FastHttpSession(base_url, Events().request, None, concurrency=2)
    greenlets = [gevent.spawn(client.get, "/busy") for _ in range(5)]
    gevent.joinall(greenlets, timeout=5, raise_error=True)
    assert [g.value.status_code for g in greenlets] == [200] * 5
    assert echo.most_in_flight == 2


def test_client_pool_is_shared_between_sessions(base_url: str) -> None:
    """Two sessions given one ConnectionPool send on the same keep-alive connection."""
    pool = ConnectionPool(concurrency=1)
    first = FastHttpSession(base_url, Events().request, None, client_pool=pool)
    second = FastHttpSession(base_url, Events().request, None, client_pool=pool)
    assert first.get("/port").text == second.get("/port").text
    second.close()  # a shared pool outlives a session
    assert first.get("/port").text == second.get("/port").text


def test_max_retries_resends_an_idempotent_request_whose_connection_drops() -> None:
    """max_retries=1 resends a dropped GET once (two drops fail it); per request it overrides."""
    drops = [2]

    def flaky_server(listener: socket.socket) -> None:
        while True:
            conn, _ = listener.accept()
            conn.recv(65536)
            if drops[0] > 0:
                drops[0] -= 1
            else:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            conn.close()

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        threading.Thread(target=flaky_server, args=(listener,), daemon=True).start()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        client = FastHttpSession(url, Events().request, None, max_retries=1)
        assert client.get("/").status_code == 0  # one retry, two drops
        assert client.get("/", max_retries=0).status_code == 200


def test_max_redirects_limits_a_redirect_loop(base_url: str, echo: Echo) -> None:
    """A request with max_redirects=3 makes four exchanges on a redirect loop."""
    client = FastHttpSession(base_url, Events().request, None, max_redirects=30)
    assert client.get("/loop", max_redirects=3).status_code == 302
    assert echo.hits["/loop"] == 4


def test_fast_http_user_class_settings_reach_its_client(base_url: str) -> None:
    """FastHttpUser's network_timeout, default_headers and max_redirects shape its client."""

    class Tuned(FastHttpUser):
        host = base_url
        network_timeout = 0.3
        default_headers = {"X-Team": "blue"}
        max_redirects = 0

    user = Tuned(Environment(events=Events()))
    assert user.client.get("/echo").json()["headers"]["x_team"] == "blue"
    assert user.client.get("/redirect").status_code == 302
    started = time.monotonic()
    assert user.client.get("/slow").status_code == 0
    assert time.monotonic() - started < 2


def test_a_geventhttpclient_pool_stands_for_one_shared_horde_pool(base_url: str) -> None:
    """client_pool = HTTPClientPool(concurrency=1) makes users share one pool of that size."""
    from geventhttpclient.client import HTTPClientPool

    class Shared(FastHttpUser):
        host = base_url
        client_pool = HTTPClientPool(concurrency=1)

    first, second = (Shared(Environment(events=Events())) for _ in range(2))
    assert first.client._clients is second.client._clients
    assert first.client._clients.concurrency == 1
    assert first.client.get("/port").text == second.client.get("/port").text


def test_proxies_are_refused_not_ignored(base_url: str) -> None:
    """A FastHttpUser with proxy_host set fails to start with a ConfigError."""

    class Proxied(FastHttpUser):
        host = base_url
        proxy_host = "proxy.example"
        proxy_port = 3128

    with pytest.raises(ConfigError, match="prox"):
        Proxied(Environment(events=Events()))


def test_a_urllib3_pool_manager_is_refused_not_ignored(base_url: str) -> None:
    """An HttpUser with Locust's pool_manager set fails to start with a ConfigError."""

    class Pooled(horde.HttpUser):
        host = base_url
        pool_manager = object()

    with pytest.raises(ConfigError, match="pool_manager"):
        Pooled(Environment(events=Events()))


def test_rest_parses_json_and_marks_bad_answers_failed(base_url: str, recorded: Recorded) -> None:
    """rest() gives .js, and fails non-JSON bodies, error statuses and failed assertions."""

    class Api(FastHttpUser):
        host = base_url

    user = Api(Environment(events=_events(recorded)))
    with user.rest("POST", "/echo", json={"a": 1}) as resp:
        assert json.loads(resp.js["body"]) == {"a": 1}
        assert resp.js["type"] == "application/json"
    with user.rest("GET", "/html") as resp:
        assert resp.js is None
    with user.rest("GET", "/error-json") as resp:
        assert resp.js == {"error": "boom"}
    with user.rest("GET", "/json") as resp:
        if resp.js["foo"] != 2:  # a script's `assert ..., "foo is not 2,"` (pytest rewrites it)
            raise AssertionError("foo is not 2,")
    with user.rest("GET", "/json") as resp:
        resp.js["missing"]  # raises KeyError inside the block
    outcomes = [str(event["exception"]) if event["exception"] else None for event in recorded]
    assert outcomes[0] is None
    assert outcomes[1].startswith("Could not parse response as JSON. <html>hi</html>")
    assert "500" in outcomes[2]
    assert outcomes[3] == 'foo is not 2, response was {"foo": 1}'
    assert outcomes[4].startswith("KeyError: 'missing' at ")


def test_http_user_rest_and_rest_name_the_stamped_request(
    base_url: str, recorded: Recorded
) -> None:
    """HttpUser has rest_() too: a _=timestamp is added and the name shows _=...."""

    class Api(horde.HttpUser):
        host = base_url

    user = Api(Environment(events=_events(recorded)))
    with user.rest_("GET", "/echo?x=1") as resp:
        assert resp.js["query"].startswith("x=1&_=")
    assert recorded[0]["name"] == "/echo?x=1&_=..."
    with user.client.rest("GET", "/json") as resp:
        assert resp.js == {"foo": 1}


def test_a_subclass_may_wrap_rest_with_super(base_url: str, recorded: Recorded) -> None:
    """A base class overriding rest() around super().rest() (Locust's example) fails on js."""

    class Checked(FastHttpUser):
        host = base_url

        @contextlib.contextmanager
        def rest(self, method: str, url: str, **kwargs: Any) -> Iterator[Any]:
            with super().rest(method, url, headers={"X-Api": "1"}, **kwargs) as resp:
                if resp.js and resp.js.get("error"):
                    resp.failure(resp.js["error"])
                yield resp

    user = Checked(Environment(events=_events(recorded)))
    with user.rest("GET", "/echo") as resp:
        assert resp.js["headers"]["x_api"] == "1"
    with user.rest("GET", "/error-json"):
        pass
    assert [str(event["exception"]) for event in recorded] == ["None", "boom"]


def _defined_names(module: Any) -> set[str]:
    """The public names a module defines at its top level (classes, functions, constants)."""
    names = set()
    for node in ast.parse(inspect.getsource(module)).body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return {name for name in names if not name.startswith("_")}


# Locust names bound to the libraries under its clients, which horde does not use
NOT_PORTED = {
    "FastRequest": "geventhttpclient's request type",
    "LocustUserAgent": "geventhttpclient's UserAgent subclass",
    "LocustHttpAdapter": "requests' transport adapter",
}


def test_every_name_scripts_import_from_locust_clients_modules_exists_in_horde() -> None:
    """horde.contrib.fasthttp and horde.clients offer what Locust 2.47's modules define."""
    import locust.clients
    import locust.contrib.fasthttp

    import horde.clients
    import horde.contrib.fasthttp

    for theirs, ours in (
        (locust.contrib.fasthttp, horde.contrib.fasthttp),
        (locust.clients, horde.clients),
    ):
        wanted = _defined_names(theirs) - set(NOT_PORTED)
        assert wanted, theirs.__name__
        assert sorted(wanted - set(dir(ours))) == [], ours.__name__
    assert horde.FastHttpUser is horde.contrib.fasthttp.FastHttpUser
    assert "FastHttpUser" in horde.__all__


class _Counting(http.server.BaseHTTPRequestHandler):
    """Answers every request with JSON echoing its path, and counts (method, path)."""

    seen: Counter[tuple[str, str]] = Counter()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        path = self.path.split("?")[0]
        type(self).seen[(self.command, path)] += 1
        is_json = raw and self.headers.get("Content-Type") == "application/json"
        echoed = json.loads(raw) if is_json else None
        status = 404 if path == "/missing" else 200
        body = json.dumps({"ok": True, "path": path, "echo": echoed}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: Any) -> None:
        """Quiet."""


def _stats_names(output: str) -> set[tuple[str, str]]:
    entries = json.loads(output)
    assert all(entry["num_failures"] == 0 for entry in entries), entries
    return {(entry["method"], entry["name"]) for entry in entries}


@pytest.mark.timeout(120)
def test_a_fast_http_locustfile_makes_the_same_requests_under_locust_and_horde(
    tmp_path: Path,
) -> None:
    """One FastHttpUser/rest locustfile: same request names under Locust and (ported) horde."""
    _Counting.seen = Counter()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    source = (SCRIPTS / "locust_fast_rest.py").read_text()
    ported = tmp_path / "horde_fast_rest.py"
    ported.write_text(source.replace("from locust", "from horde"))
    locust = shutil.which("locust", path=str(VENV_BIN)) or "locust"
    common = ["--headless", "-u", "2", "-r", "10", "-t", "3s", "-H", url, "--json"]
    try:
        theirs = subprocess.run(
            [locust, "-f", str(SCRIPTS / "locust_fast_rest.py"), *common, "--web-port", "0"],
            capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, "LOCUST_SKIP_MONKEY_PATCH": ""},
        )  # fmt: skip
        their_hits = set(_Counting.seen)
        _Counting.seen = Counter()
        ours = subprocess.run(
            [sys.executable, "-m", "horde", "run", "-f", str(ported), *common,
             "--workers", "1", "--web-port", "0"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        our_hits = set(_Counting.seen)
    finally:
        server.shutdown()
        server.server_close()
    assert theirs.returncode == 0, theirs.stderr[-3000:]
    assert ours.returncode == 0, ours.stderr[-3000:]
    names = _stats_names(theirs.stdout)
    assert names == {
        ("GET", "/items"),
        ("GET", "/items/[id]"),
        ("POST", "/orders"),
        ("GET", "/orders?_=..."),
        ("GET", "/missing"),
        ("POST", "/upload"),
    }
    assert _stats_names(ours.stdout) == names
    assert our_hits == their_hits
