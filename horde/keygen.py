"""``horde keygen``: CURVE key pairs for a master and its workers, and how to use them.

Writes, in ZeroMQ's certificate format (:func:`horde.protocol.security.certificate_text`,
readable by ``zmq.auth.load_certificate``):

- ``DIR/master.key`` (public) and ``DIR/master.key_secret``;
- one shared worker pair, ``DIR/workers/worker.key`` and ``DIR/worker.key_secret``, or
  with ``--workers N`` one pair per worker (``worker-1`` ... ``worker-N``).

``DIR/workers/`` holds only worker public keys: it is the master's ``--allow-keys``.
Secret files are created with mode 0600 (never readable by others, not even for an
instant); existing keys are kept unless ``--force``. Then it prints which flag (or
``HORDE_*`` variable) takes which file, on the master and on each worker.

Imports: the standard library, zmq (key generation) and horde.protocol.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import TextIO

import zmq

from horde.protocol.errors import ConfigError
from horde.protocol.security import certificate_text, fingerprint

__all__ = ["KeySet", "keygen", "write_keys"]

MASTER = "master"
WORKERS_DIR = "workers"


class KeySet:
    """The files one ``horde keygen`` wrote: the master's pair and each worker's."""

    def __init__(self, directory: Path, workers: list[str], master_key: str) -> None:
        self.directory = directory
        self.master_key = master_key
        """The master's public key (Z85)."""
        self.workers = workers
        """The worker pairs' names (``worker``, or ``worker-1`` ...)."""

    @property
    def master_secret(self) -> Path:
        """The master's secret certificate (``--secret-key`` on the master)."""
        return self.directory / f"{MASTER}.key_secret"

    @property
    def master_public(self) -> Path:
        """The master's public certificate (``--master-key`` on each worker)."""
        return self.directory / f"{MASTER}.key"

    @property
    def allow_dir(self) -> Path:
        """The worker public keys (``--allow-keys`` on the master)."""
        return self.directory / WORKERS_DIR

    def worker_secret(self, name: str) -> Path:
        """A worker's secret certificate (``--secret-key`` on that worker)."""
        return self.directory / f"{name}.key_secret"


def _write(path: Path, text: str, mode: int, force: bool) -> None:
    """Write ``text`` to a new file created with ``mode`` (no moment with wider rights)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (0 if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise ConfigError(f"{path} exists already; pass --force to replace the keys") from None
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc}") from None
    with os.fdopen(fd, "w", encoding="ascii") as out:
        os.fchmod(fd, mode)  # O_CREAT's mode is masked by the umask, and ignored on --force
        out.write(text)


def _pair(public_path: Path, secret_path: Path, force: bool, generated: str) -> str:
    """A new key pair written as two certificates; returns the public key."""
    public, secret = (k.decode("ascii") for k in zmq.curve_keypair())
    _write(public_path, certificate_text(public, None, generated), 0o644, force)
    _write(secret_path, certificate_text(public, secret, generated), 0o600, force)
    return public


def write_keys(directory: Path, workers: int | None = None, *, force: bool = False) -> KeySet:
    """Write the master's pair and the workers' (one shared, or ``workers`` of them)."""
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if not zmq.has("curve"):
        raise ConfigError("this libzmq was built without CURVE support")
    names = ["worker"] if workers is None else [f"worker-{i}" for i in range(1, workers + 1)]
    allow_dir = directory / WORKERS_DIR
    try:
        allow_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
    except OSError as exc:
        raise ConfigError(f"cannot create {allow_dir}: {exc}") from None
    generated = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    master = directory / MASTER
    master_key = _pair(
        master.with_suffix(".key"), master.with_suffix(".key_secret"), force, generated
    )
    for name in names:
        _pair(allow_dir / f"{name}.key", directory / f"{name}.key_secret", force, generated)
    return KeySet(directory, names, master_key)


def keygen(directory: str, workers: int | None, force: bool, out: TextIO) -> int:
    """``horde keygen``: write the keys and print where each goes."""
    keys = write_keys(Path(directory), workers, force=force)
    first = keys.worker_secret(keys.workers[0])
    more = " ..." if len(keys.workers) > 1 else ""
    print(
        f"Wrote CURVE keys to {keys.directory}/ (master key {fingerprint(keys.master_key)}):",
        file=out,
    )
    print(
        f"""
On the master (keep {keys.master_secret.name} there, and only there):
  horde master -f locustfile.py --secret-key {keys.master_secret} --allow-keys {keys.allow_dir}
  (or HORDE_SECRET_KEY={keys.master_secret} HORDE_ALLOW_KEYS={keys.allow_dir})

On each worker machine, copy {keys.master_public.name} (public) and that worker's
*.key_secret file ({len(keys.workers)} written: {first.name}{more}), then:
  horde worker --master MASTER_HOST:5557 --master-key {keys.master_public} --secret-key {first}
  (or HORDE_MASTER_KEY=... HORDE_SECRET_KEY=...; each also takes the 40-character key itself)

To revoke a worker, delete its file from {keys.allow_dir}/: the master notices within a
second (or at once on SIGHUP), refuses its handshakes and drops its frames.""",
        file=out,
    )
    return 0
