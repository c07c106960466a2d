"""The master's settings: one frozen object built by the entry point.

Nothing below the CLI reads ``os.environ``; every timing and limit the master uses is a
field here, with its default named as a constant.

Imports: the standard library, horde.protocol and horde.master.threshold_syntax.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from horde.master.statsconf import DEFAULT_CSV_STATS_INTERVAL_SEC
from horde.master.threshold_syntax import Threshold
from horde.protocol.codec import DEFAULT_MAX_FRAME
from horde.protocol.counters import DEFAULT_MAX_NAMES
from horde.protocol.defaults import (
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_HEARTBEAT_LIVENESS,
    DEFAULT_MASTER_PORT,
)
from horde.protocol.errors import ConfigError
from horde.protocol.options import ScriptOption
from horde.protocol.rates import Schedule
from horde.protocol.security import ServerKeys

DEFAULT_BIND = f"tcp://*:{DEFAULT_MASTER_PORT}"
DEFAULT_WEB_HOST = "127.0.0.1"
DEFAULT_WEB_PORT = 8089
DEFAULT_SPAWN_RATE = 1.0
#: Users a headless run starts when ``--users`` is not given.
DEFAULT_HEADLESS_USERS = 1
DEFAULT_EXPECT_WORKERS = 1
#: Seconds between the stats tables a headless run prints.
DEFAULT_PRINT_STATS = 3.0
DEFAULT_EXIT_CODE_ON_ERROR = 1
DEFAULT_SWEEP_INTERVAL = 0.25
DEFAULT_MAX_USERS = 1_000_000
DEFAULT_REPORT_CACHE = 0.5
DEFAULT_STOP_WAIT = 10.0
#: A worker missing this long is forgotten (Locust: about 60 s): like one that quits, it is
#: dropped by every component of the coordinator, so churn cannot grow us (test_churn.py).
DEFAULT_FORGET_MISSING_AFTER = 60.0
#: Seconds from a run's start before ``--abort-on-fail`` may stop it.
DEFAULT_ABORT_GRACE = 10.0


@dataclass(frozen=True, slots=True)
class MasterSettings:
    """Everything a master needs to know, validated once."""

    bind: str = DEFAULT_BIND
    curve: ServerKeys | None = None
    """The worker channel's CURVE keys and allow-list (None: plain, as Locust's)."""
    insecure: bool = False
    """``--insecure``: the operator accepted listening beyond loopback without keys."""
    web_host: str = DEFAULT_WEB_HOST
    web_port: int | None = DEFAULT_WEB_PORT
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL
    heartbeat_liveness: int = DEFAULT_HEARTBEAT_LIVENESS
    lease: float | None = None
    sweep_interval: float = DEFAULT_SWEEP_INTERVAL
    max_frame: int = DEFAULT_MAX_FRAME
    max_users: int = DEFAULT_MAX_USERS
    max_names: int = DEFAULT_MAX_NAMES
    report_cache: float = DEFAULT_REPORT_CACHE
    stop_wait: float = DEFAULT_STOP_WAIT
    forget_missing_after: float = DEFAULT_FORGET_MISSING_AFTER
    stop_timeout: float | None = None
    host: str = ""
    headless: bool = False
    users: int | None = None
    spawn_rate: float = DEFAULT_SPAWN_RATE
    run_time: float | None = None
    expect_workers: int = DEFAULT_EXPECT_WORKERS
    expect_workers_max_wait: float | None = None
    print_stats: float = DEFAULT_PRINT_STATS
    exit_code_on_error: int = DEFAULT_EXIT_CODE_ON_ERROR
    tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    shape: str | None = None
    locustfile: str = ""
    web_base_path: str = ""
    web_auth: tuple[str, str] | None = field(default=None, repr=False)
    web_auth_token: str | None = field(default=None, repr=False)
    tls_cert: str | None = None
    tls_key: str | None = None
    csv_prefix: str | None = None
    csv_full_history: bool = False
    csv_interval: float | None = None
    """Seconds between rewrites of the ``--csv`` files; None: the script's
    ``horde.stats.CSV_STATS_INTERVAL_SEC`` at each write (Locust's 1 s unless assigned)."""
    html_path: str | None = None
    json_output: bool = False
    only_summary: bool = False
    iterations: int = 0
    """Task iterations each worker runs at most (``-i``; 0: no limit), sent as the
    ``iterations`` option, which locust-plugins' ``-i`` reads on Locust workers too."""
    """``--only-summary``: a headless run prints the final summary, no periodic tables."""
    autostart: bool = False
    """``--autostart``: start the test at once, as headless does, keeping the web UI."""
    autoquit: float | None = None
    """``--autoquit``: with ``--autostart``, exit this long after the test ends (None: stay)."""
    script_options: tuple[ScriptOption, ...] = ()
    """The options the script added (``init_command_line_parser``), with their values."""
    thresholds: tuple[Threshold, ...] = ()
    """The script's ``thresholds`` and ``--threshold``: they decide a run's verdict."""
    abort_on_fail: bool = False
    """``--abort-on-fail``: stop a run once a threshold fails (after ``abort_grace``)."""
    abort_grace: float = DEFAULT_ABORT_GRACE
    junit_path: str | None = None
    """``--junit``: write one JUnit test case per threshold here at the end."""
    log_summary: bool = False
    """``--log-format json``: log the final summary as one JSON line (event ``summary``)."""
    arrival: Schedule | None = None
    """``--arrival-rate`` / ``--stages``: a headless run's fleet-wide schedule of iterations
    per second, split among the classes by weight (None: users, as ``-u`` says)."""

    @property
    def lease_seconds(self) -> float:
        """A horde worker's lease: by default exactly as long as missing-detection takes.

        The lease counts from the send time of the heartbeat the master answered, which is
        before the master received it, so the worker stops its users no later than the
        master declares it missing and gives them to others.
        """
        return (
            self.lease
            if self.lease is not None
            else self.heartbeat_liveness * (self.heartbeat_interval)
        )

    @property
    def run_options(self) -> dict[str, object]:
        """The options every ``spawn`` carries to the workers (Locust's ``parsed_options``)."""
        options: dict[str, object] = {}
        if self.tags:
            options["tags"] = list(self.tags)
        if self.exclude_tags:
            options["exclude_tags"] = list(self.exclude_tags)
        for option in self.script_options:
            options[option.name] = option.value
        if self.iterations:
            options["iterations"] = self.iterations
        return options

    def __post_init__(self) -> None:
        _positive("heartbeat_interval", self.heartbeat_interval)
        _positive("sweep_interval", self.sweep_interval)
        _positive("spawn_rate", self.spawn_rate)
        _positive("print_stats", self.print_stats)
        _not_negative("iterations", self.iterations)
        _positive("forget_missing_after", self.forget_missing_after)
        if self.lease is not None and not (
            0 < self.lease <= self.heartbeat_liveness * self.heartbeat_interval
        ):
            raise ConfigError(
                "lease must be positive and at most heartbeat_liveness x heartbeat_interval "
                f"({self.heartbeat_liveness * self.heartbeat_interval:g} s), got {self.lease}"
            )
        if self.heartbeat_liveness < 1:
            raise ConfigError(f"heartbeat_liveness must be >= 1, got {self.heartbeat_liveness}")
        if self.expect_workers < 1:
            raise ConfigError(f"expect_workers must be >= 1, got {self.expect_workers}")
        if self.max_names < 1:
            raise ConfigError(f"max_names must be at least 1, got {self.max_names}")
        if self.users is not None and not 0 <= self.users <= self.max_users:
            raise ConfigError(f"users must be between 0 and {self.max_users}, got {self.users}")
        if self.run_time is not None:
            _positive("run_time", self.run_time)
        if self.web_port is not None and not 0 <= self.web_port <= 65535:
            raise ConfigError(f"web_port must be a TCP port, got {self.web_port}")
        if self.web_base_path and not _BASE_PATH.fullmatch(self.web_base_path):
            raise ConfigError(
                "web_base_path must look like /some/path (letters, digits, . _ ~ -), "
                f"got {self.web_base_path!r}"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("--tls-cert and --tls-key go together: give both or neither")
        if self.csv_full_history and not self.csv_prefix:
            raise ConfigError("--csv-full-history needs --csv PREFIX")
        if self.web_auth_token is not None and not self.web_auth_token:
            raise ConfigError("--web-auth-token must not be empty")
        interval = self.csv_interval
        _positive("csv_interval", DEFAULT_CSV_STATS_INTERVAL_SEC if interval is None else interval)
        if not (math.isfinite(self.abort_grace) and self.abort_grace >= 0):
            raise ConfigError(f"abort_grace must be 0 or more seconds, got {self.abort_grace}")


_BASE_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)+")


def _not_negative(name: str, value: int) -> None:
    if value < 0:
        raise ConfigError(f"{name} must be 0 or more, got {value}")


def _positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be a positive number, got {value}")
