"""The worker's settings: one frozen object built by the entry point.

:class:`WorkerSettings` is built from ``horde worker``'s flags (or ``HORDE_*`` variables)
by the command line, and by ``horde run`` for its local workers, which it starts with
:meth:`WorkerSettings.to_argv`: the flags that build the same settings again in the child.
:func:`parse_master_address` reads ``--master``; :attr:`WorkerSettings.address` writes it.

Imports: the standard library and horde.protocol.
"""

from __future__ import annotations

import math
import socket
import uuid
from dataclasses import dataclass, field

from horde.protocol.codec import DEFAULT_MAX_FRAME
from horde.protocol.counters import DEFAULT_MAX_NAMES
from horde.protocol.defaults import DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_MASTER_PORT
from horde.protocol.errors import ConfigError
from horde.protocol.security import ClientKeys

DEFAULT_MASTER_HOST = "127.0.0.1"
#: ``--master`` when none is given.
DEFAULT_MASTER = f"{DEFAULT_MASTER_HOST}:{DEFAULT_MASTER_PORT}"
DEFAULT_STATS_INTERVAL = 3.0
#: Seconds between shipments of new log lines to the master (Locust: 10).
DEFAULT_LOGS_INTERVAL = 10.0
DEFAULT_REGISTER_RETRY = 3.0
#: Seconds without a word from a horde master after which a registered worker registers
#: again on a fresh socket (a link that went silent, or a route the master no longer has).
DEFAULT_MASTER_SILENCE = 10.0
DEFAULT_SCRIPT_WAIT = 60.0
#: How often the gevent side proves it is alive; the heartbeat reports the lag.
LOOP_PROBE_INTERVAL = 0.1
#: How often the gevent side checks the lease while users run (and starts a spawn that
#: waited for one).
LEASE_CHECK_INTERVAL = 0.1
#: Users pre-started per arrival-rate class on each worker (``--arrival-pool``).
DEFAULT_ARRIVAL_POOL = 100
#: Seconds past its due time an arrival-rate iteration may still start (``--max-start-delay``).
DEFAULT_MAX_START_DELAY = 0.010
#: Horde stats deltas in flight before the worker stops taking new ones (``worker/outbox.py``).
STATS_WINDOW = 4


def new_node_id() -> str:
    """Locust's node id: ``<hostname>_<uuid4 hex>``; also the socket identity."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex}"


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """Everything a worker needs to know, validated once."""

    master_host: str = DEFAULT_MASTER_HOST
    master_port: int = DEFAULT_MASTER_PORT
    curve: ClientKeys | None = None
    """The CURVE keys of the link (None: plain, as Locust's)."""
    insecure: bool = False
    """``--insecure``: the operator accepted a plain link beyond loopback."""
    parent_pid: int | None = None
    """``horde run``'s PID for its local workers: they end when it does."""
    script: str | None = None
    node_id: str = field(default_factory=new_node_id)
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL
    stats_interval: float = DEFAULT_STATS_INTERVAL
    logs_interval: float = DEFAULT_LOGS_INTERVAL
    register_retry: float = DEFAULT_REGISTER_RETRY
    master_silence: float = DEFAULT_MASTER_SILENCE
    script_wait: float = DEFAULT_SCRIPT_WAIT
    max_frame: int = DEFAULT_MAX_FRAME
    max_names: int = DEFAULT_MAX_NAMES
    tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    arrival_pool: int = DEFAULT_ARRIVAL_POOL
    max_start_delay: float = DEFAULT_MAX_START_DELAY

    def __post_init__(self) -> None:
        for name in (
            "heartbeat_interval",
            "stats_interval",
            "logs_interval",
            "register_retry",
            "master_silence",
            "script_wait",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a positive number, got {value}")
        if self.max_names < 1:
            raise ConfigError(f"max_names must be at least 1, got {self.max_names}")
        if not 1 <= self.arrival_pool <= 100_000:
            raise ConfigError(f"--arrival-pool must be 1 to 100000, got {self.arrival_pool}")
        if not (math.isfinite(self.max_start_delay) and 0 <= self.max_start_delay <= 60):
            raise ConfigError(
                f"--max-start-delay must be 0 to 60 seconds, got {self.max_start_delay}"
            )
        if not 0 < self.master_port <= 65535:
            raise ConfigError(f"master port must be a TCP port, got {self.master_port}")
        if not self.node_id or "\x00" in self.node_id:
            raise ConfigError("node id must be a non-empty string")

    @property
    def stats_resend_after(self) -> float:
        """Seconds without ack progress after which unacknowledged deltas are sent again."""
        return 2 * self.stats_interval

    @property
    def address(self) -> str:
        """The master's address as ``--master`` takes it: ``HOST:PORT`` or ``[IPv6]:PORT``."""
        host = f"[{self.master_host}]" if ":" in self.master_host else self.master_host
        return f"{host}:{self.master_port}"

    @property
    def endpoint(self) -> str:
        """The master's ZeroMQ endpoint."""
        return f"tcp://{self.address}"

    def to_argv(self) -> list[str]:
        """The ``horde worker`` flags that build these settings again in a child process.

        Every field that has a flag is written, so the child's settings do not depend on
        its environment's ``HORDE_*`` variables. Not carried: ``node_id`` (each process
        makes its own), ``curve`` (local workers reach their master on loopback, plainly:
        the keys are written empty; secret keys never go on a command line), the health
        endpoints (``--health-port 0``: local workers serve none) and the fields no flag
        sets (they keep their defaults).
        """
        argv = ["--master", self.address]
        if self.parent_pid is not None:
            argv += ["--parent-pid", str(self.parent_pid)]
        if self.script is not None:
            argv += ["--locustfile", self.script]
        argv += [
            "--heartbeat-interval",
            repr(self.heartbeat_interval),
            "--stats-interval",
            repr(self.stats_interval),
            "--max-names",
            str(self.max_names),
            "--tags",
            *self.tags,
            "--exclude-tags",
            *self.exclude_tags,
            "--arrival-pool",
            str(self.arrival_pool),
            "--max-start-delay",
            repr(self.max_start_delay),
            # No keys (even if HORDE_SECRET_KEY / HORDE_MASTER_KEY are set for remote ones).
            "--secret-key=",
            "--master-key=",
            # No health endpoints (HORDE_HEALTH_PORT is the remote workers'; 0 is off).
            "--health-port",
            "0",
        ]
        return argv


def parse_master_address(text: str, default_port: int = DEFAULT_MASTER_PORT) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT``, ``[IPv6]:PORT`` or ``tcp://HOST:PORT`` -> (host, port)."""
    value = text.strip().removeprefix("tcp://")
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest.removeprefix(":")
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    else:
        host, port = value, ""
    if not host or (port and not port.isdigit()) or (port and not 0 < int(port) < 65536):
        raise ConfigError(f"--master must be HOST[:PORT], got {text!r}")
    return host, int(port) if port else default_port
