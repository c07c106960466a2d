"""The HTTP/1.1 connection against real loopback servers that answer scripted bytes."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import gevent
import gevent.event
import gevent.ssl
import pytest
import trustme
from gevent.server import StreamServer

from horde.worker.api.client import HttpSession
from horde.worker.api.events import Events
from horde.worker.api.http11 import BadResponse, Connection, Headers, StaleConnection

SILENT = b"<silent>"  # an answer that never comes
CLOSE = b"<close>"  # close the connection instead of answering


def answer(body: bytes = b"hello", status: str = "200 OK", *headers: str) -> bytes:
    """A response with a Content-Length body and the extra header lines given."""
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Scripted:
    """A TCP server whose n-th accepted connection answers its requests with ``scripts[n]``
    in order (the last script repeats), then closes."""

    def __init__(self, *scripts: list[bytes], tls: gevent.ssl.SSLContext | None = None) -> None:
        self.scripts = scripts
        self.accepted = 0
        self.heads: list[bytes] = []
        self.closed = gevent.event.Event()  # set when a connection's script has ended
        self.release = gevent.event.Event()  # ends SILENT answers
        extra = {} if tls is None else {"ssl_context": tls}
        self.server = StreamServer(("127.0.0.1", 0), self.handle, **extra)

    @property
    def url(self) -> str:
        """The server's base URL."""
        scheme = "https" if self.server.ssl_enabled else "http"
        return f"{scheme}://127.0.0.1:{self.server.server_port}"

    def handle(self, sock: Any, _address: Any) -> None:
        """Serve one connection by its script."""
        script = self.scripts[min(self.accepted, len(self.scripts) - 1)]
        self.accepted += 1
        reader = sock.makefile("rb")
        try:
            for reply in script:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    head += line
                self.heads.append(head)
                length = [
                    int(line.split(b":")[1]) for line in head.split(b"\r\n") if b"ength:" in line
                ]
                reader.read(length[0] if length else 0)
                if reply == CLOSE:
                    return
                if reply == SILENT:
                    self.release.wait(10)
                    return
                sock.sendall(reply)
        finally:
            reader.close()
            sock.close()
            self.closed.set()


@pytest.fixture
def serve() -> Iterator[Any]:
    """Start ``Scripted`` servers that are stopped when the test ends."""
    started: list[Scripted] = []

    def start(*scripts: list[bytes], tls: gevent.ssl.SSLContext | None = None) -> Scripted:
        server = Scripted(*scripts, tls=tls)
        server.server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.release.set()
        server.server.stop(timeout=1)


def connect(server: Scripted, **kwargs: Any) -> Connection:
    """A connection to ``server`` with short timeouts."""
    kwargs.setdefault("network_timeout", 5)
    return Connection("127.0.0.1", server.server.server_port, connection_timeout=5, **kwargs)


def get(path: str = "/", method: str = "GET") -> bytes:
    """A minimal request."""
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


def recording_session(url: str, **kwargs: Any) -> tuple[HttpSession, list[dict[str, Any]]]:
    """A session whose request events are appended to the returned list."""
    events = Events()
    recorded: list[dict[str, Any]] = []
    events.request.add_listener(lambda **meta: recorded.append(meta))
    return HttpSession(url, events.request, **kwargs), recorded


def test_content_length_bodies_reuse_one_connection(serve: Any) -> None:
    """Content-Length bodies are read exactly and the connection is kept for the next one."""
    server = serve([answer(b"one"), answer(b"two", "201 Created", "X-Seq: 2")])
    connection = connect(server)
    first = connection.exchange(get())
    second = connection.exchange(get())
    assert (first.status, first.body) == (200, b"one")
    assert (second.status, second.reason, second.body) == (201, "Created", b"two")
    assert second.headers["x-seq"] == "2" and second.keep_alive
    assert server.accepted == 1
    connection.close()


def test_chunked_body_with_extension_and_trailer_is_joined(serve: Any) -> None:
    """A chunked body is reassembled; chunk extensions and trailers are skipped."""
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    server = serve([chunked, answer(b"after")])
    connection = connect(server)
    assert connection.exchange(get()).body == b"hello, world"
    assert connection.exchange(get()).body == b"after"
    assert server.accepted == 1
    connection.close()


def test_close_delimited_body_is_read_to_the_end_and_not_reused(serve: Any) -> None:
    """Without Content-Length the body ends with the connection, which is not reused."""
    server = serve([b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close"])
    connection = connect(server)
    response = connection.exchange(get())
    assert response.body == b"until close" and not response.keep_alive
    assert not connection.is_open
    assert connection.exchange(get()).body == b"until close"
    assert server.accepted == 2


def test_head_204_304_and_interim_100_have_no_body(serve: Any) -> None:
    """HEAD, 204 and 304 responses end at their headers; a 100 precedes the final answer."""
    server = serve(
        [
            answer(b"ignored", "200 OK")[: -len(b"ignored")],  # HEAD: Content-Length, no body
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b"final"),
        ]
    )
    connection = connect(server)
    head = connection.exchange(get(method="HEAD"), head_only=True)
    assert (head.status, head.body, head.headers["content-length"]) == (200, b"", "7")
    assert connection.exchange(get()).status == 204
    assert connection.exchange(get()).body == b""
    final = connection.exchange(get())
    assert (final.status, final.body) == (200, b"final")
    assert server.accepted == 1
    connection.close()


def test_connection_close_and_http10_end_keep_alive(serve: Any) -> None:
    """``Connection: close`` and an HTTP/1.0 answer without keep-alive close the socket."""
    server = serve(
        [answer(b"a", "200 OK", "Connection: close")],
        [b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nb"],
        [b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nc", answer()],
    )
    connection = connect(server)
    assert not connection.exchange(get()).keep_alive
    assert not connection.exchange(get()).keep_alive
    assert connection.exchange(get()).keep_alive
    assert connection.exchange(get()).body == b"hello"
    assert server.accepted == 3
    connection.close()


def test_stale_keep_alive_connection_is_retried_once_on_a_fresh_one(serve: Any) -> None:
    """A kept connection the server closed while idle is replaced, and nothing fails."""
    server = serve([answer(b"first")], [answer(b"second")])
    session, recorded = recording_session(server.url)
    assert session.get("/").text == "first"
    assert server.closed.wait(5)  # the server has dropped the idle connection
    response = session.get("/")
    assert (response.status_code, response.text) == (200, "second")
    assert [meta["exception"] for meta in recorded] == [None, None]
    assert server.accepted == 2
    session.close()


def test_reused_connection_closed_before_the_answer_raises_stale(serve: Any) -> None:
    """The connection itself reports a reused socket closed before any byte as stale."""
    server = serve([answer(b"first"), CLOSE])
    connection = connect(server)
    connection.exchange(get())
    with pytest.raises(StaleConnection):
        connection.exchange(get())
    assert not connection.is_open


def test_fresh_connection_closed_before_the_answer_is_a_recorded_failure(serve: Any) -> None:
    """A new connection closed without an answer fails once (no retry) with status 0."""
    server = serve([CLOSE])
    session, recorded = recording_session(server.url)
    response = session.get("/")
    assert response.status_code == 0
    assert isinstance(recorded[0]["exception"], BadResponse)
    assert server.accepted == 1


@pytest.mark.parametrize(
    "garbage",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbad header line\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
    ],
)
def test_malformed_response_is_a_recorded_failure_not_a_crash(serve: Any, garbage: bytes) -> None:
    """A response that breaks HTTP is recorded as a failed request with status 0."""
    server = serve([garbage])  # then the server closes the connection
    session, recorded = recording_session(server.url, network_timeout=5)
    response = session.get("/")
    assert response.status_code == 0 and not response.ok
    assert isinstance(recorded[0]["exception"], BadResponse)
    assert recorded[0]["name"] == "/"
    session.close()


def test_network_timeout_is_a_recorded_timeout_failure(serve: Any) -> None:
    """A server that never answers trips the network timeout: a TimeoutError failure."""
    server = serve([SILENT])
    session, recorded = recording_session(server.url, network_timeout=0.2)
    with gevent.Timeout(5, AssertionError("the network timeout did not fire")):
        response = session.get("/")
    assert response.status_code == 0
    assert isinstance(recorded[0]["exception"], TimeoutError)


def test_requests_carry_host_defaults_cookies_and_body(serve: Any) -> None:
    """The request has a Host, the default headers, set cookies and a sized body."""
    cookie = answer(b"", "200 OK", "Set-Cookie: a=1; Path=/", "Set-Cookie: b=2; Path=/")
    server = serve([cookie, answer(), answer()])
    session, _ = recording_session(server.url)
    session.get("/login")
    session.post("/items?x=1 2", json={"k": "v"}, headers={"user-agent": "mine"})
    head = server.heads[1].decode()
    assert head.startswith("POST /items?x=1%202 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.server.server_port}\r\n" in head
    assert "user-agent: mine\r\n" in head and "horde" not in head
    assert "Cookie: a=1; b=2\r\n" in head or "Cookie: b=2; a=1\r\n" in head
    assert "Content-Length: 10\r\n" in head and "Content-Type: application/json" in head
    session.close()


def test_gzip_chunked_body_is_decoded(serve: Any) -> None:
    """A gzip body sent chunked is reassembled, then decompressed."""
    packed = gzip.compress(b"z" * 500)
    chunked = (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        + f"{len(packed):x}\r\n".encode()
        + packed
        + b"\r\n0\r\n\r\n"
    )
    server = serve([chunked])
    session, recorded = recording_session(server.url)
    assert session.get("/").content == b"z" * 500
    assert recorded[0]["response_length"] == 500
    session.close()


def test_headers_are_case_insensitive_and_keep_repeated_values() -> None:
    """Header names match in any case; repeated fields join, and get_all lists them."""
    headers = Headers([("Set-Cookie", "a=1"), ("Content-Type", "text/plain"), ("set-cookie", "b")])
    assert headers["content-type"] == headers.get("CONTENT-TYPE") == "text/plain"
    assert headers["Set-Cookie"] == "a=1, b"
    assert headers.get_all("set-cookie") == ["a=1", "b"]
    assert headers.get_all("missing", []) == []
    assert list(headers) == ["Set-Cookie", "Content-Type"]
    headers.discard("SET-COOKIE")
    assert "set-cookie" not in headers and len(headers) == 1


def test_https_uses_tls_and_verify_false_skips_certificate_checks(serve: Any) -> None:
    """https goes over TLS: an untrusted certificate fails unless ``verify=False``."""
    ca = trustme.CA()
    context = gevent.ssl.SSLContext(gevent.ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server = serve([answer(b"secret"), answer(b"again")], tls=context)
    session, recorded = recording_session(server.url, network_timeout=5)
    refused = session.get("/")
    assert refused.status_code == 0 and isinstance(recorded[0]["exception"], OSError)
    assert session.get("/", verify=False).text == "secret"
    assert session.get("/", verify=False).text == "again"
    assert server.accepted == 1  # the refused handshake never reached the handler
    trusting = gevent.ssl.SSLContext(gevent.ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(trusting)
    connection = connect(serve([answer(b"trusted")], tls=context), tls=trusting)
    assert connection.exchange(get()).body == b"trusted"
    connection.close()
    session.close()
