"""CURVE keys and the loopback rule: what both ends need to secure the worker channel.

Responsibility: reading keys as the flags give them (a ZeroMQ certificate file, a file
holding one Z85 key, or the 40-character Z85 key itself), the master's allow-list of worker
public keys (a directory, a file or one key) and a signature that changes when its files
do, writing certificates in ZeroMQ's format (``zmq.auth``'s, readable by
``zmq.auth.load_certificate``), key fingerprints for logs and tables, and the rule of which
endpoints are loopback (the only ones a channel without keys may use unless ``--insecure``).

Keys stay Z85 text (``str``) throughout: libzmq takes them so, and the ZAP handler names a
client by the Z85 text of its key.

Imports: the standard library and horde.protocol.errors.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from horde.protocol.errors import ConfigError

__all__ = [
    "KEY_LENGTH",
    "ClientKeys",
    "ServerKeys",
    "allow_signature",
    "allow_stamp",
    "allowed_keys",
    "apply_curve_client",
    "certificate_text",
    "check_secret_mode",
    "fingerprint",
    "is_loopback_endpoint",
    "is_loopback_host",
    "is_z85_key",
    "read_key",
]

KEY_LENGTH = 40
"""Characters in a Z85-encoded CURVE key (32 bytes)."""
Z85_CHARS = frozenset(
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
)
FINGERPRINT_LENGTH = 8
"""Characters of a public key shown in logs and tables."""
_FIELD = re.compile(r'^\s*(public-key|secret-key)\s*=\s*"([^"]*)"\s*$', re.MULTILINE)
_LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})


@dataclass(frozen=True, slots=True)
class ServerKeys:
    """The master's key pair and where its allow-list of worker keys comes from."""

    public: str
    secret: str
    allow: str
    """A directory of public keys, a key file, or one Z85 key (see :func:`allowed_keys`)."""


@dataclass(frozen=True, slots=True)
class ClientKeys:
    """A worker's key pair and the master's public key it expects."""

    public: str
    secret: str
    server: str


def is_z85_key(text: str) -> bool:
    """Whether ``text`` is a 40-character Z85 key."""
    return len(text) == KEY_LENGTH and all(c in Z85_CHARS for c in text)


def fingerprint(public: str) -> str:
    """The first characters of a public key, to name it in logs and tables."""
    return public[:FINGERPRINT_LENGTH]


def read_key(value: str, *, secret: bool, flag: str) -> tuple[str, str | None]:
    """``(public, secret)`` from a flag's value: a Z85 key, or a file holding one.

    A certificate file gives its ``public-key`` and, if ``secret``, its ``secret-key``. A
    file holding one bare Z85 key, or the key itself, gives that key as the one asked
    for (``(key, None)`` for a public key, ``("", key)`` for a secret one: the caller
    derives the public half). Anything else is a :class:`ConfigError` naming ``flag``.
    """
    value = value.strip()
    path = Path(value)
    if is_z85_key(value) and not path.exists():  # a 40-character path may look like a key
        return ("", value) if secret else (value, None)
    try:
        text = path.read_text(encoding="ascii")
    except PermissionError as exc:
        raise ConfigError(
            f"{flag}: cannot read {value}: {exc.strerror} (this process runs as uid"
            f" {os.getuid()}; in a pod, the Secret volume's defaultMode and the pod's fsGroup"
            " decide who may read its files)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        kind = "secret" if secret else "public"
        raise ConfigError(
            f"{flag}: {value!r} is neither a 40-character Z85 {kind} key nor a readable key"
            f" file ({exc})"
        ) from None
    fields = dict(_FIELD.findall(text))
    if not fields and is_z85_key(text.strip()):
        return ("", text.strip()) if secret else (text.strip(), None)
    public, secret_key = fields.get("public-key", ""), fields.get("secret-key", "")
    if secret and not is_z85_key(secret_key):
        raise ConfigError(
            f"{flag}: {value} holds no secret key (pass the *.key_secret file that"
            " `horde keygen` wrote, or the Z85 secret key itself)"
        )
    if not is_z85_key(public):
        raise ConfigError(f"{flag}: {value} holds no valid public-key")
    return public, secret_key if secret else None


def _key_files(directory: Path) -> list[Path]:
    """The files of an allow-list directory, hidden ones (Kubernetes' ``..data``) aside."""
    return sorted(p for p in directory.iterdir() if not p.name.startswith(".") and p.is_file())


def allowed_keys(source: str) -> frozenset[str]:
    """The worker public keys an allow-list names.

    ``source`` is a directory (every file in it holding a certificate or one bare Z85
    key; ``*_secret`` files are read for their public half, and files holding neither are
    an error), a single such file, or one Z85 public key.
    """
    path = Path(source)
    if is_z85_key(source.strip()) and not path.exists():
        return frozenset({source.strip()})
    if not path.is_dir():
        return frozenset({read_key(source, secret=False, flag="--allow-keys")[0]})
    try:
        files = _key_files(path)
    except OSError as exc:
        raise ConfigError(f"--allow-keys: cannot list {source}: {exc}") from None
    return frozenset(read_key(str(p), secret=False, flag="--allow-keys")[0] for p in files)


def allow_stamp(source: str) -> tuple[int, ...]:
    """A cheap look at an allow-list (one ``stat``): it changes when files are added,
    removed or renamed in the directory (a Kubernetes Secret update swaps a link there),
    or when a single key file is rewritten. A file rewritten in place inside a directory
    needs :func:`allow_signature`."""
    try:
        st = os.stat(source)
    except OSError:
        return ()
    return (st.st_mtime_ns, st.st_ino, st.st_size)


def allow_signature(source: str) -> tuple[tuple[str, int, int], ...]:
    """What changes when an allow-list's files do: ``(name, mtime_ns, size)`` per file.

    Files are followed through symbolic links, so a Kubernetes Secret volume, which swaps
    a link to a new folder, changes the signature. An unreadable source has an empty one.
    It stats every file (``os.scandir``): 5,000 key files take about 18 ms.
    """
    path = Path(source)
    try:
        if not path.is_dir():
            st = path.stat()
            return ((path.name, st.st_mtime_ns, st.st_size),)
        with os.scandir(path) as entries:
            stats = [
                (e.name, e.stat()) for e in entries if not e.name.startswith(".") and e.is_file()
            ]
    except OSError:
        return ()
    return tuple(sorted((name, st.st_mtime_ns, st.st_size) for name, st in stats))


def certificate_text(public: str, secret: str | None, generated: str) -> str:
    """A ZeroMQ certificate (public, or secret when ``secret`` is given), as ``zmq.auth``
    writes one."""
    kind = "Secret" if secret else "Public"
    lines = [
        f"#   ****  Generated on {generated} by horde  ****",
        f"#   ZeroMQ CURVE **{kind}** Certificate",
    ]
    if secret:
        lines.append("#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.")
    else:
        lines.append("#   Exchange securely, or use a secure mechanism to verify the contents")
        lines.append("#   of this file after exchange. Store public certificates in your home")
        lines.append("#   directory, in the .curve subdirectory.")
    lines += ["", "metadata", "curve", f'    public-key = "{public}"']
    if secret:
        lines.append(f'    secret-key = "{secret}"')
    return "\n".join(lines) + "\n"


def is_loopback_host(host: str) -> bool:
    """Whether a host name or address is loopback (127.0.0.0/8, ``::1``, ``localhost``)."""
    host = host.strip().strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_endpoint(endpoint: str) -> bool:
    """Whether a ZeroMQ bind endpoint is reachable only from this machine.

    ``ipc://`` and ``inproc://`` are; ``tcp://HOST:PORT`` is when HOST is loopback
    (``tcp://*:5557`` and ``tcp://0.0.0.0:5557`` are not).
    """
    scheme, _, rest = endpoint.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        return False
    host = rest.rpartition(":")[0] if ":" in rest else rest
    return is_loopback_host(host)


def check_secret_mode(path: str) -> str | None:
    """A warning when a secret key file can be read by others, else None."""
    try:
        mode = os.stat(path).st_mode & 0o077
    except OSError:
        return None
    return f"{path} can be read by other users (chmod 600 it)" if mode else None


def apply_curve_client(sock: Any, keys: ClientKeys, zmq: Any) -> None:
    """Make the ZeroMQ socket ``sock`` a CURVE client (``zmq``: its module); before connect."""
    sock.setsockopt(zmq.CURVE_SERVERKEY, keys.server.encode("ascii"))
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public.encode("ascii"))
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret.encode("ascii"))
