"""What each ``horde`` subcommand does, given its parsed flags.

Turns the argparse namespace into frozen settings (this is where configuration stops
flowing as a namespace) and runs the master, the workers, the demo or the target.
``horde run`` and ``horde demo`` start their workers as child processes of their own
(``python -m horde worker``) and stop exactly those, by PID.

Imports: everything below the CLI.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import gevent
import gevent.event
import structlog

from horde.protocol.counters import DEFAULT_MAX_NAMES
from horde.protocol.errors import ConfigError

if TYPE_CHECKING:
    from horde.master.config import MasterSettings
    from horde.master.runtime import MasterRuntime

log = structlog.get_logger("horde")
WORKER_EXIT_WAIT = 10.0


def dispatch(args: argparse.Namespace) -> int:
    """Run the subcommand named in ``args``."""
    commands = {
        "run": cmd_run,
        "master": cmd_master,
        "worker": cmd_worker,
        "demo": cmd_demo,
        "target": cmd_target,
    }
    return commands[args.command](args)


def _run_time(text: str | None) -> float | None:
    from horde.master.timespan import parse_timespan

    if text in (None, ""):
        return None
    try:
        return parse_timespan(text)
    except ValueError as exc:
        raise ConfigError(f"--run-time: {exc}") from None


def _master_settings(args: argparse.Namespace, *, bind: str, expect: int) -> MasterSettings:
    from horde.master.auth import parse_web_auth
    from horde.master.config import DEFAULT_MAX_USERS, MasterSettings

    return MasterSettings(
        bind=bind,
        web_host=args.web_host,
        web_port=None if args.no_web else args.web_port,
        heartbeat_interval=args.heartbeat_interval,
        heartbeat_liveness=args.heartbeat_liveness,
        stop_timeout=args.stop_timeout,
        host=args.host,
        headless=args.headless,
        users=args.users,
        spawn_rate=args.spawn_rate,
        run_time=_run_time(args.run_time),
        expect_workers=expect,
        expect_workers_max_wait=getattr(args, "expect_workers_max_wait", None),
        print_stats=args.print_stats,
        exit_code_on_error=args.exit_code_on_error,
        tags=tuple(getattr(args, "tags", None) or ()),
        exclude_tags=tuple(getattr(args, "exclude_tags", None) or ()),
        max_users=getattr(args, "max_users", None) or DEFAULT_MAX_USERS,
        max_names=getattr(args, "max_names", DEFAULT_MAX_NAMES),
        shape=getattr(args, "shape", None),
        locustfile=Path(args.locustfile).name if getattr(args, "locustfile", None) else "",
        web_base_path=(getattr(args, "web_base_path", "") or "").rstrip("/"),
        web_auth=parse_web_auth(args.web_auth) if getattr(args, "web_auth", None) else None,
        web_auth_token=getattr(args, "web_auth_token", None),
        tls_cert=getattr(args, "tls_cert", None),
        tls_key=getattr(args, "tls_key", None),
        csv_prefix=getattr(args, "csv_prefix", None),
        csv_full_history=bool(getattr(args, "csv_full_history", False)),
        html_path=getattr(args, "html", None),
        json_output=bool(getattr(args, "json", False)),
    )


def _build_master(settings: MasterSettings, script_path: str) -> MasterRuntime:
    import horde
    from horde.logsetup import RECENT
    from horde.master.process import tune_process
    from horde.master.runtime import MasterRuntime, class_specs, script_files
    from horde.worker.api.environment import Environment
    from horde.worker.api.loader import load_script

    script = load_script(script_path)
    environment = Environment(
        events=horde.events, host=settings.host, user_classes=script.user_classes.values()
    )
    runtime = MasterRuntime(
        settings,
        class_specs(script.user_classes),
        scripts=script_files(script_path, script.source),
        environment=environment,
        shapes=dict(script.shape_classes),
        log_lines=RECENT.lines,
    )
    tune_process()  # before the first socket: libzmq's I/O thread inherits the policy
    return runtime


def _serve_master(runtime: MasterRuntime, headless: bool) -> int:
    """Run a started master headless, or serve until a signal; always close cleanly."""
    done = gevent.event.Event()

    def on_signal() -> None:
        if headless:
            runtime.interrupt()
        else:
            done.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, on_signal)
    try:
        if headless:
            tables = sys.stderr if runtime.settings.json_output else sys.stdout
            return int(runtime.run_headless(sys.stdout, tables))
        done.wait()
        log.info("shutting down: stopping the test and waiting for the workers' final stats")
        runtime.loops.command(lambda c, now: c.stop(now))
        runtime.wait_stopped()
        runtime.write_outputs(sys.stdout)
        return 0
    finally:
        runtime.close()


def cmd_master(args: argparse.Namespace) -> int:
    """``horde master``: a master that remote workers join."""
    settings = _master_settings(args, bind=args.bind, expect=args.expect_workers)
    runtime = _build_master(settings, args.locustfile)
    runtime.start()
    return _serve_master(runtime, args.headless)


def _spawn_workers(
    count: int, port: int, script: str, args: argparse.Namespace
) -> list[subprocess.Popen[bytes]]:
    """Start ``count`` local workers for the master on ``port``, with our logging flags."""
    command = [
        sys.executable,
        "-m",
        "horde",
        "worker",
        "--master",
        f"127.0.0.1:{port}",
        "-f",
        script,
        "--log-level",
        args.log_level,
        "--log-format",
        args.log_format,
        "--heartbeat-interval",
        str(args.heartbeat_interval),
        "--max-names",
        str(getattr(args, "max_names", DEFAULT_MAX_NAMES)),
        *(["-T", *args.tags] if getattr(args, "tags", None) else []),
        *(["-E", *args.exclude_tags] if getattr(args, "exclude_tags", None) else []),
    ]
    return [subprocess.Popen(command, stdin=subprocess.DEVNULL) for _ in range(count)]


def _reap(workers: Sequence[subprocess.Popen[bytes]]) -> None:
    """Wait for our workers to exit after ``quit``; kill (by PID) any that do not."""
    deadline = gevent.get_hub().loop.now() + WORKER_EXIT_WAIT
    for proc in workers:
        while proc.poll() is None and gevent.get_hub().loop.now() < deadline:
            gevent.sleep(0.05)
        if proc.poll() is None:
            log.warning("worker did not exit, killing it", pid=proc.pid)
            proc.kill()
            proc.wait()


def _run_local(args: argparse.Namespace, script: str, workers: int) -> int:
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    settings = _master_settings(args, bind="tcp://127.0.0.1:0", expect=workers)
    runtime = _build_master(settings, script)
    runtime.start()
    procs = _spawn_workers(workers, runtime.port, script, args)
    log.info("started local workers", count=workers, pids=[p.pid for p in procs])
    try:
        return _serve_master(runtime, args.headless)
    finally:
        _reap(procs)


def cmd_run(args: argparse.Namespace) -> int:
    """``horde run``: a master on loopback plus local workers."""
    return _run_local(args, args.locustfile, args.workers)


def cmd_worker(args: argparse.Namespace) -> int:
    """``horde worker``: join a master and run users for it."""
    from horde.worker.config import WorkerSettings
    from horde.worker.main import run_worker

    host, port = parse_master_address(args.master)
    settings = WorkerSettings(
        master_host=host,
        master_port=port,
        script=args.locustfile,
        heartbeat_interval=args.heartbeat_interval,
        stats_interval=args.stats_interval,
        max_names=args.max_names,
        tags=tuple(args.tags or ()),
        exclude_tags=tuple(args.exclude_tags or ()),
    )
    return run_worker(settings)


def parse_master_address(text: str, default_port: int = 5557) -> tuple[str, int]:
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


def cmd_demo(args: argparse.Namespace) -> int:
    """``horde demo``: the built-in scenario against the built-in target, on loopback."""
    from horde import demo_scenario
    from horde.demo_target import start_target

    target = start_target("127.0.0.1", 0)
    host = f"http://127.0.0.1:{target.server_port}"
    log.info("demo target listening", url=host)
    args.host = host
    args.headless = True
    args.web_host, args.web_port, args.no_web = "127.0.0.1", 0, False
    args.stop_timeout = None
    args.exit_code_on_error = 0
    args.heartbeat_interval, args.heartbeat_liveness = 1.0, 3
    try:
        code = _run_local(args, str(Path(demo_scenario.__file__)), args.workers)
    finally:
        target.stop(timeout=1)
    return code


def cmd_target(args: argparse.Namespace) -> int:
    """``horde target``: serve the demo target until SIGINT/SIGTERM."""
    from horde.demo_target import start_target

    server = start_target(args.host, args.port)
    print(f"demo target listening on http://{args.host}:{server.server_port}", flush=True)
    done = gevent.event.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, done.set)
    done.wait()
    server.stop(timeout=1)
    return 0
