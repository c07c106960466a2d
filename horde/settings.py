"""Parsed flags to frozen settings: where the command line's namespace ends.

Each subcommand's namespace (its flags, with ``HORDE_*`` variables already applied as
defaults by ``horde.cli``) is turned here, once, into frozen settings:
:class:`~horde.master.config.MasterSettings` for ``horde master``,
:class:`~horde.worker.config.WorkerSettings` for ``horde worker``, and for ``horde run``
and ``horde demo`` a :class:`LocalRun`: the master's settings plus the one
``WorkerSettings`` every local worker is started from (through its ``to_argv``). Nothing
below the commands sees the namespace. The defaults of the flags that only the command
line has (the demo's, the target's, ``--workers``) are named here.

Imports: the standard library, horde.logsetup, horde.health, horde.master (config, auth,
timespan, arrivalspec, threshold_syntax), horde.worker.config and horde.protocol.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import zmq

from horde.health import HealthSettings
from horde.logsetup import LogSettings
from horde.master.arrivalspec import constant, parse_stages
from horde.master.auth import parse_web_auth
from horde.master.config import DEFAULT_MAX_USERS, MasterSettings
from horde.master.threshold_syntax import Threshold, ThresholdSyntaxError, parse_thresholds
from horde.master.timespan import parse_timespan
from horde.protocol.errors import ConfigError
from horde.protocol.rates import Schedule
from horde.protocol.security import (
    ClientKeys,
    ServerKeys,
    allowed_keys,
    is_loopback_endpoint,
    is_loopback_host,
    read_key,
)
from horde.worker.config import WorkerSettings, parse_master_address

__all__ = [
    "DEFAULT_LOCAL_WORKERS",
    "DEMO_RUN_TIME",
    "DEMO_SPAWN_RATE",
    "DEMO_USERS",
    "DEMO_WORKERS",
    "LOCAL_BIND",
    "TARGET_HOST",
    "TARGET_PORT",
    "LocalRun",
    "demo_run",
    "health_settings",
    "local_run",
    "log_settings",
    "master_settings",
    "worker_settings",
]

#: ``horde run``'s master: loopback only, on any free port (its workers learn it).
LOCAL_BIND = "tcp://127.0.0.1:0"
LOCAL_HOST = "127.0.0.1"
#: ``horde run --workers``: one local worker process per CPU core.
DEFAULT_LOCAL_WORKERS = os.cpu_count() or 1
DEMO_USERS = 20
DEMO_SPAWN_RATE = 10.0
DEMO_RUN_TIME = "15s"
DEMO_WORKERS = 2
#: The demo's user script, shipped inside the package.
DEMO_SCRIPT = Path(__file__).with_name("demo_scenario.py")
TARGET_HOST = "127.0.0.1"
TARGET_PORT = 8080


@dataclass(frozen=True, slots=True)
class LocalRun:
    """A master on loopback and ``workers`` local worker processes (``run``, ``demo``).

    ``worker`` is every local worker's settings but its ``master_port``, which is known
    only once the master has bound its socket on a free port.
    """

    master: MasterSettings
    worker: WorkerSettings
    workers: int

    def __post_init__(self) -> None:
        _local_workers(self.workers)
        if self.worker.script is None:
            raise ConfigError("a local run needs a user script for its workers")

    @property
    def script(self) -> str:
        """The user script both the master and the workers load."""
        return str(self.worker.script)


def log_settings(args: argparse.Namespace) -> LogSettings:
    """``--log-level`` and ``--log-format``: every subcommand has them."""
    return LogSettings(level=args.log_level, format=args.log_format)


def run_time(text: str | None) -> float | None:
    """``--run-time`` in seconds, or None for no limit."""
    if text in (None, ""):
        return None
    try:
        return parse_timespan(text)
    except ValueError as exc:
        raise ConfigError(f"--run-time: {exc}") from None


def health_settings(args: argparse.Namespace) -> HealthSettings:
    """``--health-host`` and ``--health-port`` (``horde master`` and ``horde worker``)."""
    return HealthSettings(host=args.health_host, port=args.health_port or None)


def master_settings(args: argparse.Namespace) -> MasterSettings:
    """A master's settings from ``horde master``'s flags."""
    settings = _test_master(
        args,
        bind=args.bind,
        expect_workers=args.expect_workers,
        expect_workers_max_wait=args.expect_workers_max_wait,
        curve=server_keys(args.secret_key, args.allow_keys),
    )
    check_exposure(settings)
    return settings


def _public_of(secret: str) -> str:
    try:
        return zmq.curve_public(secret.encode("ascii")).decode("ascii")
    except (zmq.ZMQError, ValueError) as exc:
        raise ConfigError(f"--secret-key: not a valid CURVE secret key ({exc})") from None


def _own_pair(value: str) -> tuple[str, str]:
    """``--secret-key``'s ``(public, secret)``: from its certificate, or derived."""
    public, secret = read_key(value, secret=True, flag="--secret-key")
    assert secret is not None
    derived = _public_of(secret)
    if public and public != derived:
        raise ConfigError(f"--secret-key: {value}'s public-key does not match its secret-key")
    return derived, secret


def server_keys(secret: str | None, allow: str | None) -> ServerKeys | None:
    """The master's CURVE settings from ``--secret-key`` and ``--allow-keys`` (both or neither)."""
    if not secret and not allow:
        return None
    if not (secret and allow):
        missing = "--allow-keys (the worker public keys to admit)" if secret else "--secret-key"
        raise ConfigError(
            f"a CURVE master needs --secret-key and --allow-keys: {missing} is missing"
        )
    public, secret_key = _own_pair(secret)
    allowed_keys(allow)  # an unreadable or empty-handed list fails now, with its reason
    return ServerKeys(public=public, secret=secret_key, allow=allow)


def client_keys(secret: str | None, master: str | None) -> ClientKeys | None:
    """A worker's CURVE settings from ``--secret-key`` and ``--master-key`` (both or neither)."""
    if not secret and not master:
        return None
    if not (secret and master):
        missing = "--master-key (the master's public key)" if secret else "--secret-key"
        raise ConfigError(
            f"a CURVE worker needs --secret-key and --master-key: {missing} is missing"
        )
    public, secret_key = _own_pair(secret)
    server = read_key(master, secret=False, flag="--master-key")[0]
    return ClientKeys(public=public, secret=secret_key, server=server)


KEYS_HINT = "run `horde keygen DIR` and pass the keys as it prints"


def check_exposure(settings: MasterSettings) -> None:
    """Refuse a master reachable beyond loopback with no keys (or a web API with no auth),
    unless ``--insecure``."""
    if settings.insecure:
        return
    if settings.curve is None and not is_loopback_endpoint(settings.bind):
        raise ConfigError(
            f"--bind {settings.bind} listens beyond loopback without CURVE keys: anyone who"
            " reaches it could join as a worker, receive the script and feed stats. Bind to"
            f" 127.0.0.1, or give it keys ({KEYS_HINT}: --secret-key and --allow-keys), or"
            " pass --insecure to accept the risk"
        )
    web_auth = settings.web_auth is not None or settings.web_auth_token
    if settings.web_port is not None and not web_auth and not is_loopback_host(settings.web_host):
        raise ConfigError(
            f"--web-host {settings.web_host} serves the web API beyond loopback without"
            " authentication: anyone who reaches it could start, stop or read the test."
            " Pass --web-auth USER:PASSWORD or --web-auth-token, or pass --insecure to"
            " accept the risk"
        )


def check_worker_exposure(settings: WorkerSettings) -> None:
    """Refuse a plain link to a master beyond loopback (it would run whatever script that
    master sends), unless ``--insecure``."""
    if settings.insecure or settings.curve is not None:
        return
    if not is_loopback_host(settings.master_host):
        raise ConfigError(
            f"--master {settings.address} is beyond loopback and the link has no CURVE keys:"
            " anyone on the path could read it, or pose as the master and have this worker"
            f" run their script. Give it keys ({KEYS_HINT}: --master-key and --secret-key),"
            " or pass --insecure to accept the risk (as a Locust master needs)"
        )


def _test_master(
    args: argparse.Namespace,
    *,
    bind: str,
    expect_workers: int,
    expect_workers_max_wait: float | None,
    curve: ServerKeys | None = None,
) -> MasterSettings:
    """A master's settings from the test flags ``horde master`` and ``horde run`` share."""
    return MasterSettings(
        bind=bind,
        curve=curve,
        insecure=args.insecure,
        web_host=args.web_host,
        web_port=None if args.no_web else args.web_port,
        heartbeat_interval=args.heartbeat_interval,
        heartbeat_liveness=args.heartbeat_liveness,
        stop_timeout=args.stop_timeout,
        host=args.host,
        headless=args.headless,
        users=args.users,
        spawn_rate=args.spawn_rate,
        run_time=run_time(args.run_time),
        expect_workers=expect_workers,
        expect_workers_max_wait=expect_workers_max_wait,
        print_stats=args.print_stats,
        exit_code_on_error=args.exit_code_on_error,
        tags=tuple(args.tags or ()),
        exclude_tags=tuple(args.exclude_tags or ()),
        max_users=args.max_users or DEFAULT_MAX_USERS,  # as ever, --max-users 0: the default
        max_names=args.max_names,
        shape=args.shape,
        locustfile=Path(args.locustfile).name,
        web_base_path=args.web_base_path.rstrip("/"),
        web_auth=parse_web_auth(args.web_auth) if args.web_auth else None,
        web_auth_token=args.web_auth_token,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        csv_prefix=args.csv_prefix,
        csv_full_history=args.csv_full_history,
        html_path=args.html,
        json_output=args.json,
        only_summary=args.only_summary,
        iterations=args.iterations,
        autostart=args.autostart and not args.headless,
        autoquit=_autoquit(args),
        thresholds=flag_thresholds(args.threshold or ()),
        abort_on_fail=args.abort_on_fail,
        abort_grace=args.abort_grace,
        junit_path=args.junit,
        log_summary=args.log_format == "json",
        arrival=arrival_schedule(args.arrival_rate, args.stages),
    )


def flag_thresholds(texts: Sequence[str], source: str = "--threshold") -> tuple[Threshold, ...]:
    """Parse thresholds given by ``source``; a bad one is a :class:`ConfigError` (exit 2)."""
    try:
        return parse_thresholds(tuple(texts))
    except ThresholdSyntaxError as exc:
        raise ConfigError(f"{source} {exc.text!r}: column {exc.column}: {exc.problem}") from None


def script_thresholds(module: object) -> tuple[Threshold, ...]:
    """A script's module-level ``thresholds = [...]`` (none: ``()``)."""
    texts = getattr(module, "thresholds", ())
    if isinstance(texts, str) or not isinstance(texts, list | tuple):
        raise ConfigError("the script's `thresholds` must be a list of strings")
    return flag_thresholds(texts, "the script's thresholds:")


def arrival_schedule(rate: str | None, stages: str | None) -> Schedule | None:
    """``--arrival-rate`` or ``--stages`` as a schedule (None: neither); both: refused."""
    if rate is not None and stages is not None:
        raise ConfigError("give --arrival-rate or --stages, not both")
    try:
        if rate is not None:
            return constant(rate)
        if stages is not None:
            return parse_stages(stages)
    except ValueError as exc:
        raise ConfigError(f"--{'arrival-rate' if rate is not None else 'stages'}: {exc}") from None
    return None


def _autoquit(args: argparse.Namespace) -> float | None:
    """``--autoquit`` in seconds (None: stay); refused without ``--autostart``, as Locust does."""
    if args.autoquit is None or args.autoquit < 0:  # Locust's -1: stay
        return None
    if not args.autostart:
        raise ConfigError("--autoquit is only meaningful in combination with --autostart")
    return float(args.autoquit)


def worker_settings(args: argparse.Namespace) -> WorkerSettings:
    """A worker's settings from ``horde worker``'s flags."""
    host, port = parse_master_address(args.master)
    settings = WorkerSettings(
        master_host=host,
        master_port=port,
        curve=client_keys(args.secret_key, args.master_key),
        insecure=args.insecure,
        parent_pid=args.parent_pid,
        script=args.locustfile,
        heartbeat_interval=args.heartbeat_interval,
        stats_interval=args.stats_interval,
        max_names=args.max_names,
        tags=tuple(args.tags or ()),
        exclude_tags=tuple(args.exclude_tags or ()),
        arrival_pool=args.arrival_pool,
        max_start_delay=args.max_start_delay,
    )
    check_worker_exposure(settings)
    return settings


def _local_workers(count: int) -> int:
    if count < 1:
        raise ConfigError(f"--workers must be at least 1, got {count}")
    return count


def local_run(args: argparse.Namespace) -> LocalRun:
    """``horde run``: the master's flags, and workers that share its heartbeat, name cap
    and tags."""
    workers = _local_workers(args.workers)
    master = _test_master(
        args, bind=LOCAL_BIND, expect_workers=workers, expect_workers_max_wait=None
    )
    check_exposure(master)
    worker = WorkerSettings(
        master_host=LOCAL_HOST,
        parent_pid=os.getpid(),
        script=args.locustfile,
        heartbeat_interval=master.heartbeat_interval,
        max_names=master.max_names,
        tags=master.tags,
        exclude_tags=master.exclude_tags,
        arrival_pool=args.arrival_pool,
        max_start_delay=args.max_start_delay,
    )
    return LocalRun(master, worker, workers)


def demo_run(args: argparse.Namespace) -> LocalRun:
    """``horde demo``: a headless run of the built-in scenario that never fails on errors.

    Its target (``host``) is filled in once the demo target listens.
    """
    workers = _local_workers(args.workers)
    master = MasterSettings(
        bind=LOCAL_BIND,
        web_port=0,
        headless=True,
        users=args.users,
        spawn_rate=args.spawn_rate,
        run_time=run_time(args.run_time),
        expect_workers=workers,
        print_stats=args.print_stats,
        exit_code_on_error=0,
    )
    worker = WorkerSettings(master_host=LOCAL_HOST, script=str(DEMO_SCRIPT), parent_pid=os.getpid())
    return LocalRun(master, worker, workers)
