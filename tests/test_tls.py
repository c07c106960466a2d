"""start_server with TLS: a real in-process server, trustme certificates, bounded clients.

The server runs on this thread's gevent hub (the test process is not monkey-patched);
each blocking client call runs in the hub's thread pool, so the hub serves while the
test waits, and every call has a timeout.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import gevent
import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from gevent.pywsgi import WSGIServer

from horde.master import wsgi
from horde.master.wsgi import start_server, tls_context
from horde.protocol.errors import ConfigError

T = TypeVar("T")
TIMEOUT = 5.0


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """Answer with the request's scheme and path as JSON."""
    body = json.dumps({"scheme": environ["wsgi.url_scheme"], "path": environ["PATH_INFO"]})
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body.encode()]


def off_hub(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking call in a native thread while the hub keeps serving; bounded.

    The call's exception is re-raised here (gevent's pool would print it to stderr).
    """

    def call() -> tuple[T | None, Exception | None]:
        try:
            return fn(*args), None
        except Exception as exc:
            return None, exc

    result, error = gevent.get_hub().threadpool.spawn(call).get(timeout=TIMEOUT * 2)
    if error is not None:
        raise error
    return result


def fetch(url: str, context: ssl.SSLContext | None = None) -> dict[str, Any]:
    """GET ``url`` and decode its JSON body."""
    with urllib.request.urlopen(url, timeout=TIMEOUT, context=context) as response:
        return dict(json.loads(response.read()))


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A throwaway certificate authority."""
    return trustme.CA()


@pytest.fixture
def pem(ca: trustme.CA, tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    leaf.private_key_and_cert_chain_pem.write_to_path(cert)
    leaf.private_key_pem.write_to_path(key)
    return cert, key


@pytest.fixture
def trusting(ca: trustme.CA) -> ssl.SSLContext:
    """A client context that trusts only the test CA."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def tls_server(pem: tuple[Path, Path]) -> Iterator[WSGIServer]:
    """A TLS server on a free loopback port, stopped after the test."""
    cert, key = pem
    server = start_server("127.0.0.1", 0, app, certfile=cert, keyfile=key)
    yield server
    server.stop(timeout=1)


def test_https_get_verified_against_the_ca_succeeds(
    tls_server: WSGIServer, trusting: ssl.SSLContext
) -> None:
    """A client that trusts the CA gets the app's answer, which sees the https scheme."""
    url = f"https://127.0.0.1:{tls_server.server_port}/hello"
    assert off_hub(fetch, url, trusting) == {"scheme": "https", "path": "/hello"}


def test_a_client_that_does_not_trust_the_ca_is_refused(tls_server: WSGIServer) -> None:
    """Certificate verification fails against the system trust store: the TLS is real."""
    url = f"https://127.0.0.1:{tls_server.server_port}/"
    with pytest.raises(urllib.error.URLError) as info:
        off_hub(fetch, url, ssl.create_default_context())
    assert isinstance(info.value.reason, ssl.SSLCertVerificationError)


def test_plain_http_to_the_tls_port_fails_quietly_and_the_server_goes_on(
    tls_server: WSGIServer, trusting: ssl.SSLContext, capfd: pytest.CaptureFixture[str]
) -> None:
    """Plain HTTP gets no answer, no traceback is printed, and HTTPS still works after."""
    port = tls_server.server_port
    with pytest.raises((OSError, http.client.HTTPException)):
        off_hub(fetch, f"http://127.0.0.1:{port}/")
    assert off_hub(fetch, f"https://127.0.0.1:{port}/again", trusting)["path"] == "/again"
    assert "Traceback" not in capfd.readouterr().err


def test_a_silent_client_is_dropped_after_the_handshake_timeout(
    tls_server: WSGIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer that connects and never says hello is disconnected, not waited on forever."""
    monkeypatch.setattr(wsgi, "HANDSHAKE_TIMEOUT", 0.2)

    def silent_peer() -> bytes:
        with socket.create_connection(("127.0.0.1", tls_server.server_port), TIMEOUT) as sock:
            return sock.recv(1)  # b"" once the server closes; socket.timeout fails the test

    assert off_hub(silent_peer) == b""


def test_tls_connections_keep_tcp_nodelay(pem: tuple[Path, Path], trusting: ssl.SSLContext) -> None:
    """NoDelayHandler turns Nagle off on TLS-wrapped connections too."""
    seen: list[int] = []

    class Probe(wsgi.NoDelayHandler):
        """Records TCP_NODELAY as each request is read (after handle() set it)."""

        def handle_one_request(self) -> Any:
            seen.append(self.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            return super().handle_one_request()

    cert, key = pem
    server = start_server("127.0.0.1", 0, app, certfile=cert, keyfile=key, handler_class=Probe)
    try:
        off_hub(fetch, f"https://127.0.0.1:{server.server_port}/", trusting)
    finally:
        server.stop(timeout=1)
    assert seen and all(seen)


def test_plain_server_still_serves_http() -> None:
    """Without certificate and key the server speaks plain HTTP, as before."""
    server = start_server("127.0.0.1", 0, app)
    try:
        answer = off_hub(fetch, f"http://127.0.0.1:{server.server_port}/plain")
        assert answer == {"scheme": "http", "path": "/plain"}
    finally:
        server.stop(timeout=1)


def test_no_certificate_and_no_key_means_no_tls() -> None:
    """tls_context(None, None) is None: TLS is off."""
    assert tls_context(None, None) is None


def _encrypted_key(pem: tuple[Path, Path], tmp_path: Path) -> Path:
    """The key of ``pem`` re-written with a passphrase."""
    key = serialization.load_pem_private_key(pem[1].read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    return encrypted


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("cert-only", "got a certificate without a key"),
        ("key-only", "got a key without a certificate"),
        ("missing-cert", "does not exist"),
        ("missing-key", "does not exist"),
        ("not-pem", "cannot load the TLS certificate"),
        ("mismatched-key", "cannot load the TLS certificate"),
        ("encrypted-key", "encrypted"),
    ],
)
def test_unusable_certificates_fail_at_start(
    case: str, message: str, pem: tuple[Path, Path], ca: trustme.CA, tmp_path: Path
) -> None:
    """A missing half, a missing file or a pair that does not load is a ConfigError."""
    cert, key = pem
    other_key = tmp_path / "other.pem"
    ca.issue_cert("127.0.0.1").private_key_pem.write_to_path(other_key)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    files: dict[str, tuple[Path | None, Path | None]] = {
        "cert-only": (cert, None),
        "key-only": (None, key),
        "missing-cert": (tmp_path / "nope.pem", key),
        "missing-key": (cert, tmp_path / "nope.pem"),
        "not-pem": (junk, junk),
        "mismatched-key": (cert, other_key),
        "encrypted-key": (cert, _encrypted_key(pem, tmp_path)),
    }
    certfile, keyfile = files[case]
    with pytest.raises(ConfigError, match=message):
        start_server("127.0.0.1", 0, app, certfile=certfile, keyfile=keyfile)
