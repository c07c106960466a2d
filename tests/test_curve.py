"""CURVE on the worker channel, with real processes on loopback: strangers refused at the
handshake, revocation on SIGHUP and on a file change, and the refusals of an exposed
master (and worker) without keys."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import zmq

from horde.keygen import KeySet, write_keys
from horde.protocol import messages as m
from horde.protocol.codec import encode
from horde.protocol.security import certificate_text, fingerprint, read_key
from tests.fault_support import SCRIPTS, Cluster, cluster, events, rejected
from tests.support import free_port, post, wait_for

pytestmark = pytest.mark.timeout(120)

HANDSHAKES = "horde_master_rejected_handshakes_total"


def secure_master(c: Cluster, keys: KeySet, *extra: str) -> None:
    """Start the cluster's master as a CURVE server admitting ``keys``' workers."""
    c.start_master(
        "--secret-key",
        str(keys.master_secret),
        "--allow-keys",
        str(keys.allow_dir),
        "--heartbeat-interval",
        "1",
        *extra,
    )


def secure_worker(c: Cluster, keys: KeySet, name: str) -> subprocess.Popen[str]:
    """A worker holding ``name``'s key pair and the master's public key."""
    return c.worker(
        "--master-key",
        str(keys.master_public),
        "--secret-key",
        str(keys.worker_secret(name)),
        "--heartbeat-interval",
        "1",
    )


def refused_handshakes(c: Cluster) -> int:
    """The master's count of refused CURVE handshakes."""
    return int(c.metrics().get((HANDSHAKES, ()), 0))


def test_unknown_keys_plain_clients_and_noise_never_reach_the_master(tmp_path: Path) -> None:
    """A client with the master's public key but an unlisted pair is refused at the
    handshake and counted; it is never listed, never answered (no script); a plain client
    and random bytes disturb nobody: the registered worker runs its users."""
    keys = write_keys(tmp_path / "keys")
    with cluster() as c:
        secure_master(c, keys)
        good = c.node_id(secure_worker(c, keys, "worker"))
        c.wait_workers([good])
        context = zmq.Context()
        public, secret = zmq.curve_keypair()
        stranger = context.socket(zmq.DEALER)
        stranger.setsockopt(zmq.LINGER, 0)
        stranger.routing_id = b"stranger_1"
        stranger.curve_serverkey = keys.master_key.encode()
        stranger.curve_publickey, stranger.curve_secretkey = public, secret
        stranger.connect(f"tcp://127.0.0.1:{c.zmq_port}")
        plain = context.socket(zmq.DEALER)
        plain.setsockopt(zmq.LINGER, 0)
        plain.routing_id = b"plain_1"
        plain.connect(f"tcp://127.0.0.1:{c.zmq_port}")
        noise = socket.create_connection(("127.0.0.1", c.zmq_port), timeout=5)
        try:
            for sock, name in ((stranger, "stranger_1"), (plain, "plain_1")):
                for message in (m.ClientReady(name), m.LocustfileRequest(name)):
                    with contextlib.suppress(zmq.Again):  # a refused link may be gone already
                        sock.send(encode(message), zmq.NOBLOCK)
            noise.sendall(os.urandom(4096))
            wait_for(lambda: refused_handshakes(c) >= 1, 20, "a refused handshake")
            status, _ = post(f"{c.web}/swarm", {"user_count": 2, "spawn_rate": 100})
            assert status == 200
            wait_for(lambda: c.rows()[good]["requests"] > 0, 30, "the worker's requests")
            assert list(c.rows()) == [good]
            assert not stranger.poll(0) and not plain.poll(0)  # no ack, no script
            assert "worker_missing" not in events(c.metrics())
            assert sum(rejected(c.metrics()).values()) == 0  # nothing reached the loop
        finally:
            noise.close()
            stranger.close(linger=0)
            plain.close(linger=0)
            context.term()


def revoke_quietly(keys: KeySet, name: str) -> None:
    """Replace a worker's allowed key by another, leaving its name, size and mtime: only
    a SIGHUP makes the master see the change."""
    path = keys.allow_dir / f"{name}.key"
    before = path.stat()
    other = zmq.curve_keypair()[0].decode()
    path.write_text(certificate_text(other, None, "2026-01-01T00:00:00+00:00"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size


@pytest.mark.parametrize("how", ["sighup", "rewrite", "delete"])
def test_a_revoked_key_loses_its_worker_its_users_and_its_reconnects(
    tmp_path: Path, how: str
) -> None:
    """Revoked by SIGHUP (a change the file look cannot see), by rewriting its file in
    place with another key (no signal), or by deleting it: the worker goes missing, its
    users move, its frames are dropped and its new handshakes are refused."""
    keys = write_keys(tmp_path / "keys", 2)
    with cluster() as c:
        secure_master(c, keys)
        w1 = secure_worker(c, keys, "worker-1")
        first, second = c.node_id(w1), c.node_id(secure_worker(c, keys, "worker-2"))
        c.wait_workers([first, second])
        status, _ = post(f"{c.web}/swarm", {"user_count": 4, "spawn_rate": 100})
        assert status == 200
        wait_for(lambda: all(r["user_count"] == 2 for r in c.rows().values()), 30, "2 users each")
        if how == "sighup":
            revoke_quietly(keys, "worker-1")
            assert c.master is not None
            c.master.send_signal(signal.SIGHUP)
        elif how == "rewrite":
            other = zmq.curve_keypair()[0].decode()
            (keys.allow_dir / "worker-1.key").write_text(certificate_text(other, None, "now"))
        else:
            (keys.allow_dir / "worker-1.key").unlink()
        wait_for(lambda: c.rows()[first]["state"] == "missing", 20, "worker-1 missing")
        wait_for(lambda: c.rows()[second]["user_count"] == 4, 20, "its users on worker-2")
        assert rejected(c.metrics())["revoked_key"] > 0
        wait_for(lambda: refused_handshakes(c) >= 1, 30, "worker-1's reconnect refused")
        wait_for(lambda: "refused this worker's key" in c.procs.output(w1), 10, "its log")
        assert c.rows()[first]["state"] == "missing"


def horde(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m horde ARGS`` to its end (it should refuse at once)."""
    command = [sys.executable, "-m", "horde", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_exposed_without_keys_refuses_and_insecure_starts_with_a_warning() -> None:
    """A bare `horde master` (tcp://*:5557), a web API on 0.0.0.0 without auth and a worker
    of a remote master without keys refuse with exit 2; --insecure starts, warning."""
    script = str(SCRIPTS / "basic.py")
    bare = horde("master", "-f", script, "--web-port", "0")
    assert bare.returncode == 2
    assert "horde keygen" in bare.stderr and "--insecure" in bare.stderr
    bind = f"tcp://127.0.0.1:{free_port()}"
    web = horde("master", "-f", script, "--bind", bind, "--web-host", "0.0.0.0")
    assert web.returncode == 2 and "--web-auth" in web.stderr and "--insecure" in web.stderr
    worker = horde("worker", "--master", "192.0.2.1:5557")
    assert worker.returncode == 2 and "beyond loopback" in worker.stderr
    with cluster(target="http://127.0.0.1:9") as c:
        port = free_port()
        master = c.procs.horde(
            "master", "-f", script, "--bind", f"tcp://0.0.0.0:{port}", "--web-port", "0",
            "--insecure",
        )  # fmt: skip
        wait_for(lambda: "master listening" in c.procs.output(master), 30, "the master")
        assert "--insecure: what would be refused" in c.procs.output(master)
        assert master.poll() is None


def test_a_worker_that_cannot_join_says_why(tmp_path: Path) -> None:
    """A wrong --master-key, a key not on the list, and no keys at all against a CURVE
    master: each worker logs the cause within seconds instead of hanging silently."""
    keys = write_keys(tmp_path / "keys")
    other = write_keys(tmp_path / "other")
    with cluster(target="http://127.0.0.1:9") as c:
        secure_master(c, keys)
        wrong_master = c.worker(
            "--master-key", other.master_key, "--secret-key", str(keys.worker_secret("worker"))
        )
        unlisted = c.worker(
            "--master-key", keys.master_key, "--secret-key", str(other.worker_secret("worker"))
        )
        plain = c.worker()
        causes = {
            wrong_master: "--master-key is probably not this master's public key",
            unlisted: "refused this worker's key",
            plain: "the master requires CURVE keys",
        }
        for worker, cause in causes.items():
            wait_for(lambda w=worker, t=cause: t in c.procs.output(w), 20, cause)
        assert c.rows() == {}


def test_a_worker_that_fetches_its_script_shows_its_key(tmp_path: Path) -> None:
    """A worker without -f asks for the script under a temporary identity first; the
    workers table still shows its own key's fingerprint once it registers."""
    keys = write_keys(tmp_path / "keys")
    with cluster(target="http://127.0.0.1:9") as c:
        secure_master(c, keys)
        worker = c.procs.horde(
            "worker", "--master", f"127.0.0.1:{c.zmq_port}", "--master-key",
            str(keys.master_public), "--secret-key", str(keys.worker_secret("worker")),
        )  # fmt: skip
        node = c.node_id(worker)
        c.wait_workers([node])
        public = read_key(str(keys.allow_dir / "worker.key"), secret=False, flag="-")[0]
        assert c.rows()[node]["key"] == fingerprint(public)


def _pair_whose_public_key_begins_with_a_dash() -> tuple[str, str]:
    """A CURVE pair (public, secret) as Z85 text; one in 85 public keys begins with ``-``."""
    return next((p.decode(), s.decode()) for p, s in iter(zmq.curve_keypair, None) if p[:1] == b"-")


def test_keys_given_as_text_join_even_when_they_begin_with_a_dash() -> None:
    """The master's public key and the worker's, both beginning with ``-``, passed as text
    on the command line (``--allow-keys -...`` and ``--master-key -...``): the worker joins."""
    master_public, master_secret = _pair_whose_public_key_begins_with_a_dash()
    worker_public, worker_secret = _pair_whose_public_key_begins_with_a_dash()
    with cluster(target="http://127.0.0.1:9") as c:
        c.start_master("--secret-key", master_secret, "--allow-keys", worker_public)
        worker = c.worker("--master-key", master_public, "--secret-key", worker_secret)
        node = c.node_id(worker)
        c.wait_workers([node])
        assert c.rows()[node]["key"] == fingerprint(worker_public)
