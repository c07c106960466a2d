"""CURVE keys, allow-lists, the loopback rule, keygen, the key gate, the ZAP answers, and
the refusals of a master or worker exposed without keys: pure logic and files, no sockets."""

from __future__ import annotations

import argparse
import io
import os
import stat
from pathlib import Path

import pytest
import zmq
import zmq.auth as zauth
from zmq.utils import z85

from horde.cli import apply_env, build_parser
from horde.keygen import keygen, write_keys
from horde.master.keybind import REVOKED_KEY, WRONG_KEY, KeyGate
from horde.master.zap import ZapHandler
from horde.protocol.errors import ConfigError
from horde.protocol.security import (
    allow_signature,
    allowed_keys,
    certificate_text,
    fingerprint,
    is_loopback_endpoint,
    is_loopback_host,
    read_key,
)
from horde.settings import client_keys, local_run, master_settings, server_keys, worker_settings
from horde.worker.diagnose import link_problem


def pair() -> tuple[str, str]:
    """A fresh (public, secret) pair as Z85 text."""
    public, secret = zmq.curve_keypair()
    return public.decode(), secret.decode()


def parse(argv: list[str]) -> argparse.Namespace:
    """The CLI's namespace for ``argv``, with no environment."""
    parser = build_parser()
    apply_env(parser, {})
    return parser.parse_args(argv)


def test_a_key_flag_takes_the_key_itself_a_certificate_or_a_file_holding_one_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Z85 text, zmq.auth's certificates and a bare-key file all read; the rest is refused."""
    public, secret = pair()
    assert read_key(public, secret=False, flag="--master-key") == (public, None)
    assert read_key(secret, secret=True, flag="--secret-key") == ("", secret)
    pub_file, sec_file = zauth.create_certificates(tmp_path, "peer")
    expected = zauth.load_certificate(sec_file)
    assert read_key(sec_file, secret=True, flag="-k") == tuple(k.decode() for k in expected)
    assert read_key(pub_file, secret=False, flag="-k") == (expected[0].decode(), None)
    bare = tmp_path / "bare"
    bare.write_text(public + "\n")
    assert read_key(str(bare), secret=False, flag="-k") == (public, None)
    with pytest.raises(ConfigError, match=r"--secret-key: .*holds no secret key"):
        read_key(pub_file, secret=True, flag="--secret-key")
    forty = "k" * 40  # a file whose name is 40 Z85 characters: read as a file, not a key
    (tmp_path / forty).write_text(public)
    monkeypatch.chdir(tmp_path)
    assert read_key(forty, secret=False, flag="-k") == (public, None)
    with pytest.raises(ConfigError, match=r"--master-key: 'nope' is neither"):
        read_key("nope", secret=False, flag="--master-key")


def test_our_certificates_are_the_ones_zmq_auth_reads(tmp_path: Path) -> None:
    """certificate_text writes what zmq.auth.load_certificate reads back."""
    public, secret = pair()
    path = tmp_path / "cert"
    path.write_text(certificate_text(public, secret, "now"))
    assert zauth.load_certificate(path) == (public.encode(), secret.encode())
    path.write_text(certificate_text(public, None, "now"))
    assert zauth.load_certificate(path) == (public.encode(), None)


def test_an_allow_list_is_a_directory_a_file_or_one_key(tmp_path: Path) -> None:
    """A folder gives every key in it (hidden entries aside); a file or a key gives one."""
    keys = [pair()[0] for _ in range(3)]
    (tmp_path / "a.key").write_text(certificate_text(keys[0], None, "now"))
    (tmp_path / "b").write_text(keys[1])
    (tmp_path / "..data").mkdir()  # a Kubernetes Secret volume's own entries
    (tmp_path / ".hidden").write_text("not a key")
    assert allowed_keys(str(tmp_path)) == {keys[0], keys[1]}
    assert allowed_keys(str(tmp_path / "b")) == {keys[1]}
    assert allowed_keys(keys[2]) == {keys[2]}
    (tmp_path / "c.key").write_text("garbage")
    with pytest.raises(ConfigError, match=r"c.key holds no valid public-key"):
        allowed_keys(str(tmp_path))


def test_the_allow_signature_changes_when_a_file_does(tmp_path: Path) -> None:
    """Adding, rewriting or removing a key file changes the signature; nothing else does."""
    (tmp_path / "a.key").write_text(pair()[0])
    first = allow_signature(str(tmp_path))
    assert allow_signature(str(tmp_path)) == first
    (tmp_path / "b.key").write_text(pair()[0])
    second = allow_signature(str(tmp_path))
    assert second != first
    os.utime(tmp_path / "b.key", ns=(1, 1))
    assert allow_signature(str(tmp_path)) != second
    (tmp_path / "b.key").unlink()
    assert allow_signature(str(tmp_path)) != second
    assert allow_signature(str(tmp_path / "missing")) == ()


@pytest.mark.parametrize(
    ("endpoint", "loopback"),
    [
        ("tcp://127.0.0.1:5557", True),
        ("tcp://127.3.2.1:0", True),
        ("tcp://localhost:5557", True),
        ("tcp://[::1]:5557", True),
        ("ipc:///tmp/horde", True),
        ("inproc://x", True),
        ("tcp://*:5557", False),
        ("tcp://0.0.0.0:5557", False),
        ("tcp://10.0.0.5:5557", False),
        ("tcp://[::]:5557", False),
        ("tcp://eth0:5557", False),
    ],
)
def test_only_loopback_endpoints_count_as_loopback(endpoint: str, loopback: bool) -> None:
    """127.0.0.0/8, ::1, localhost, ipc:// and inproc:// are loopback; the rest is not."""
    assert is_loopback_endpoint(endpoint) is loopback
    assert is_loopback_host("localhost") and not is_loopback_host("0.0.0.0")


def test_keygen_writes_certificates_secret_files_private_and_keeps_old_keys(
    tmp_path: Path,
) -> None:
    """Pairs zmq.auth reads, secrets 0600, the allow folder holding only worker keys."""
    keys = write_keys(tmp_path / "k", 2)
    assert sorted(p.name for p in keys.allow_dir.iterdir()) == ["worker-1.key", "worker-2.key"]
    for secret in (keys.master_secret, keys.worker_secret("worker-1")):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        public, secret_key = zauth.load_certificate(secret)
        assert secret_key is not None
        assert zmq.curve_public(secret_key) == public
    assert zauth.load_certificate(keys.master_public)[0].decode() == keys.master_key
    assert len(allowed_keys(str(keys.allow_dir))) == 2
    with pytest.raises(ConfigError, match=r"exists already; pass --force"):
        write_keys(tmp_path / "k", 2)
    out = io.StringIO()
    assert keygen(str(tmp_path / "k"), None, True, out) == 0
    text = out.getvalue()
    assert f"--secret-key {tmp_path / 'k' / 'master.key_secret'}" in text
    assert f"--allow-keys {tmp_path / 'k' / 'workers'}" in text
    assert "--master-key" in text and "HORDE_SECRET_KEY" in text


def test_the_key_gate_binds_an_identity_to_its_first_key() -> None:
    """Another key under a bound identity is wrong; a key off the list is revoked; a
    binding outlives a prune while young (its worker may not be registered yet)."""
    a, b, c = (pair()[0] for _ in range(3))
    allowed = {a, b}
    gate = KeyGate(lambda: frozenset(allowed))
    assert gate.judge(b"w1", a, 0.0) is None
    assert gate.bound == [(b"w1", a)]
    assert gate.judge(b"w1", b, 1.0) == WRONG_KEY
    assert gate.judge(b"w1", c, 1.0) == REVOKED_KEY
    assert gate.judge(b"w2", b, 1.0) is None
    assert gate.key_of("w1") == fingerprint(a)
    allowed.discard(a)
    assert gate.judge(b"w1", a, 2.0) == REVOKED_KEY
    gate.prune({"w2"}, 5.0)  # w1 is unknown, but bound 5 s ago: kept
    assert len(gate) == 2
    gate.prune({"w2"}, 11.0)
    assert len(gate) == 1 and gate.key_of("w1") is None


def test_the_zap_handler_admits_listed_keys_and_refuses_the_rest(tmp_path: Path) -> None:
    """200 with the key's Z85 text as user id; 400 (counted) otherwise; 500 for nonsense."""
    allowed, stranger = pair()[0], pair()[0]
    refused: list[int] = []
    zap = ZapHandler(allowed, on_reject=lambda: refused.append(1))

    def request(mechanism: bytes, *credentials: bytes) -> list[bytes]:
        return [b"1.0", b"7", b"horde", b"127.0.0.1", b"", mechanism, *credentials]

    ok = zap.answer(request(b"CURVE", z85.decode(allowed)))
    assert ok[:3] == [b"1.0", b"7", b"200"] and ok[4] == allowed.encode()
    assert zap.answer(request(b"CURVE", z85.decode(stranger)))[2] == b"400"
    assert zap.answer(request(b"NULL"))[2] == b"400"
    assert zap.answer([b"1.0"])[2] == b"500"
    assert (zap.admitted, zap.refused, len(refused)) == (1, 2, 2)


def test_curve_settings_go_in_pairs_and_must_match(tmp_path: Path) -> None:
    """--secret-key needs --allow-keys (master) or --master-key (worker); a pair must match."""
    keys = write_keys(tmp_path)
    server = server_keys(str(keys.master_secret), str(keys.allow_dir))
    assert server is not None and server.public == keys.master_key
    with pytest.raises(ConfigError, match=r"--allow-keys .* is missing"):
        server_keys(str(keys.master_secret), None)
    with pytest.raises(ConfigError, match=r"--secret-key is missing"):
        client_keys(None, str(keys.master_public))
    public, secret = pair()
    client = client_keys(secret, str(keys.master_public))
    assert client is not None and (client.public, client.server) == (public, keys.master_key)
    forged = tmp_path / "forged.key_secret"
    forged.write_text(certificate_text(pair()[0], secret, "now"))
    with pytest.raises(ConfigError, match=r"does not match"):
        client_keys(str(forged), keys.master_key)


def test_a_master_beyond_loopback_needs_keys_or_insecure(tmp_path: Path) -> None:
    """The default bind refuses without keys, naming keygen and --insecure; either lifts it."""
    with pytest.raises(ConfigError, match=r"horde keygen.*--insecure"):
        master_settings(parse(["master", "-f", "s.py"]))
    assert master_settings(parse(["master", "-f", "s.py", "--bind", "tcp://127.0.0.1:5557"]))
    assert master_settings(parse(["master", "-f", "s.py", "--insecure"])).insecure
    keys = write_keys(tmp_path)
    secure = ["--secret-key", str(keys.master_secret), "--allow-keys", str(keys.allow_dir)]
    assert master_settings(parse(["master", "-f", "s.py", *secure])).curve is not None


def test_a_web_api_beyond_loopback_needs_auth_or_insecure() -> None:
    """--web-host 0.0.0.0 without auth refuses (master and run); auth or --insecure lifts it."""
    local = ["--bind", "tcp://127.0.0.1:5557", "--web-host", "0.0.0.0"]
    with pytest.raises(ConfigError, match=r"--web-auth.*--insecure"):
        master_settings(parse(["master", "-f", "s.py", *local]))
    with pytest.raises(ConfigError, match=r"--web-host 0.0.0.0 serves the web API"):
        local_run(parse(["run", "-f", "s.py", "--web-host", "0.0.0.0"]))
    assert master_settings(parse(["master", "-f", "s.py", *local, "--web-auth", "u:p"]))
    assert master_settings(parse(["master", "-f", "s.py", *local, "--web-auth-token", "t"]))
    assert master_settings(parse(["master", "-f", "s.py", *local, "--insecure"]))
    assert master_settings(parse(["master", "-f", "s.py", *local, "--no-web"]))


def test_a_worker_joining_a_master_beyond_loopback_needs_keys_or_insecure(
    tmp_path: Path,
) -> None:
    """A plain link to a remote master refuses (the master could send any script)."""
    with pytest.raises(ConfigError, match=r"--master 10.0.0.5:5557 is beyond loopback"):
        worker_settings(parse(["worker", "--master", "10.0.0.5"]))
    assert worker_settings(parse(["worker", "--master", "10.0.0.5", "--insecure"])).insecure
    keys = write_keys(tmp_path)
    flags = ["--secret-key", str(keys.worker_secret("worker")), "--master-key", keys.master_key]
    assert worker_settings(parse(["worker", "--master", "10.0.0.5", *flags])).curve is not None


def test_handshake_events_become_the_cause_a_user_can_act_on() -> None:
    """Each failure names its cause: refused key, wrong master key, a side without CURVE."""
    auth = link_problem(zmq.EVENT_HANDSHAKE_FAILED_AUTH, 400, secure=True, zmq=zmq)
    assert auth is not None and "--allow-keys" in auth
    wrong = link_problem(zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, 0, secure=True, zmq=zmq)
    assert wrong is not None and "--master-key" in wrong
    plain_master = link_problem(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, 0, secure=True, zmq=zmq)
    assert plain_master is not None and "does not speak CURVE" in plain_master
    plain_worker = link_problem(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, 0, secure=False, zmq=zmq)
    assert plain_worker is not None and "requires CURVE keys" in plain_worker
    assert link_problem(zmq.EVENT_HANDSHAKE_SUCCEEDED, 0, secure=True, zmq=zmq) is None
