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

With ``--kustomize`` (:func:`write_kustomize`) everything goes flat into DIR, where the
Kubernetes kustomization's ``secretGenerator`` reads it: ``master.key``,
``master.key_secret``, one ``worker.key`` / ``worker.key_secret`` pair shared by every
worker pod (``worker.key`` is the master's ``--allow-keys``), ``web.env`` holding
``HORDE_WEB_AUTH=horde:PASSWORD`` (a random password from :mod:`secrets`), and a
``.gitignore`` of ``*`` so that none of it is ever committed.

Imports: the standard library, zmq (key generation) and horde.protocol.
"""

from __future__ import annotations

import datetime
import os
import secrets
from pathlib import Path
from typing import TextIO

import zmq

from horde.protocol.errors import ConfigError
from horde.protocol.security import certificate_text, fingerprint

__all__ = ["KeySet", "keygen", "write_keys", "write_kustomize"]

MASTER = "master"
WORKERS_DIR = "workers"
WORKER = "worker"
WEB_ENV = "web.env"
#: The user name of the web API's Basic auth that ``--kustomize`` writes.
WEB_USER = "horde"
#: Random bytes in the web password (``secrets.token_urlsafe``: 32 characters).
WEB_PASSWORD_BYTES = 24
#: Where the kustomization's ``secretGenerator`` reads the keys (relative to a checkout).
KUSTOMIZE_DIR = "deploy/kubernetes/base/secrets"
#: Where the manifests mount the keys Secret in the pods.
POD_KEYS = "/etc/horde/keys"


class KeySet:
    """The files one ``horde keygen`` wrote: the master's pair and each worker's."""

    def __init__(
        self, directory: Path, workers: list[str], master_key: str, allow: Path | None = None
    ) -> None:
        self.directory = directory
        self.master_key = master_key
        """The master's public key (Z85)."""
        self.workers = workers
        """The worker pairs' names (``worker``, or ``worker-1`` ...)."""
        self.allow = directory / WORKERS_DIR if allow is None else allow
        """The master's ``--allow-keys``: the worker keys folder (``--kustomize``: the
        one ``worker.key``)."""

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
        """The worker public keys folder of plain ``horde keygen``."""
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


def _check_curve() -> None:
    if not zmq.has("curve"):
        raise ConfigError("this libzmq was built without CURVE support")


def _mkdir(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o755)
    except OSError as exc:
        raise ConfigError(f"cannot create {directory}: {exc}") from None


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def write_kustomize(directory: Path, *, force: bool = False) -> KeySet:
    """``--kustomize``: the master's pair, one worker pair, ``web.env`` and ``.gitignore``,
    all flat in ``directory`` (where the kustomization's ``secretGenerator`` reads them)."""
    _check_curve()
    _mkdir(directory)
    ignore = directory / ".gitignore"
    if not ignore.exists():  # kept when present (it holds no secret)
        _write(ignore, "*\n", 0o644, force=False)
    generated = _now()
    master = directory / MASTER
    master_key = _pair(
        master.with_suffix(".key"), master.with_suffix(".key_secret"), force, generated
    )
    worker = directory / WORKER
    _pair(worker.with_suffix(".key"), worker.with_suffix(".key_secret"), force, generated)
    password = secrets.token_urlsafe(WEB_PASSWORD_BYTES)
    _write(directory / WEB_ENV, f"HORDE_WEB_AUTH={WEB_USER}:{password}\n", 0o600, force)
    return KeySet(directory, [WORKER], master_key, allow=worker.with_suffix(".key"))


def write_keys(directory: Path, workers: int | None = None, *, force: bool = False) -> KeySet:
    """Write the master's pair and the workers' (one shared, or ``workers`` of them)."""
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    _check_curve()
    names = [WORKER] if workers is None else [f"{WORKER}-{i}" for i in range(1, workers + 1)]
    allow_dir = directory / WORKERS_DIR
    _mkdir(allow_dir)
    generated = _now()
    master = directory / MASTER
    master_key = _pair(
        master.with_suffix(".key"), master.with_suffix(".key_secret"), force, generated
    )
    for name in names:
        _pair(allow_dir / f"{name}.key", directory / f"{name}.key_secret", force, generated)
    return KeySet(directory, names, master_key)


def keygen(
    directory: str, workers: int | None, force: bool, out: TextIO, *, kustomize: bool = False
) -> int:
    """``horde keygen``: write the keys and print where each goes."""
    if kustomize:
        if workers is not None:
            raise ConfigError(
                "--kustomize writes one worker pair that every worker pod shares: drop --workers"
            )
        return _print_kustomize(write_kustomize(Path(directory), force=force), out)
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


def _print_kustomize(keys: KeySet, out: TextIO) -> int:
    """What ``--kustomize`` wrote, and how the manifests use it."""
    d = keys.directory
    print(
        f"Wrote CURVE keys and the web password to {d}/ (master key"
        f" {fingerprint(keys.master_key)}), git-ignored by {d / '.gitignore'}:",
        file=out,
    )
    print(
        f"""  {MASTER}.key {MASTER}.key_secret {WORKER}.key {WORKER}.key_secret {WEB_ENV}

The kustomization's secretGenerator reads them from {KUSTOMIZE_DIR} (run
`horde keygen --kustomize {KUSTOMIZE_DIR}` from the checkout's root), and the pods
mount the keys at {POD_KEYS}:
  master:  HORDE_SECRET_KEY={POD_KEYS}/{MASTER}.key_secret HORDE_ALLOW_KEYS={POD_KEYS}/{WORKER}.key
           and HORDE_WEB_AUTH from {WEB_ENV} (user {WEB_USER}; the password is in that file)
  workers: HORDE_SECRET_KEY={POD_KEYS}/{WORKER}.key_secret HORDE_MASTER_KEY={POD_KEYS}/{MASTER}.key
Every worker pod shares the one worker pair; to replace the keys, run this again with
--force and apply the overlay again (the Secret's name changes, so the pods restart).""",
        file=out,
    )
    return 0
