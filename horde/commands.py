"""What each ``horde`` subcommand does, given its frozen settings.

:func:`dispatch` turns the parsed flags into settings (``horde.settings``) and runs the
master, the worker, the demo or the target; below it nothing sees the namespace.
``horde run`` and ``horde demo`` start their workers as child processes of their own
(``horde.local``), end the run when one of them fails, and stop exactly those, by PID.

Imports: everything below the CLI.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import gevent
import gevent.event
import structlog

from horde.health import HealthSettings, stamp_liveness
from horde.healthserver import serve_health
from horde.local import LocalWorkers, WorkerExit
from horde.logsetup import LogSettings
from horde.master.verdict_out import EXIT_ERRORED
from horde.protocol.options import ScriptOption
from horde.settings import (
    LOCAL_HOST,
    LocalRun,
    demo_run,
    health_settings,
    local_run,
    master_settings,
    script_thresholds,
    worker_settings,
)
from horde.worker.api.events import listener_failures

if TYPE_CHECKING:
    from horde.master.config import MasterSettings
    from horde.master.runtime import MasterRuntime
    from horde.worker.api.loader import LoadedScript

log = structlog.get_logger("horde")
LOCAL_WORKER_FAILED = EXIT_ERRORED
"""Exit code of a local run that a local worker's failure before the test ended: it could
not start (unless the run already failed)."""


@dataclass(frozen=True)
class Preloaded:
    """What the CLI loaded before parsing: ``-f``'s script and the options it added."""

    script: LoadedScript | None = None
    options: tuple[ScriptOption, ...] = ()


def dispatch(
    args: argparse.Namespace, logs: LogSettings, preloaded: Preloaded = Preloaded()
) -> int:
    """Build the settings of the subcommand named in ``args`` and run it."""
    if args.command == "run":
        run = local_run(args)
        run = replace(run, master=replace(run.master, script_options=preloaded.options))
        _warn_insecure(run.master.insecure)
        return run_local(run, logs, preloaded.script)
    if args.command == "master":
        settings = replace(master_settings(args), script_options=preloaded.options)
        _warn_insecure(settings.insecure)
        return cmd_master(settings, args.locustfile, preloaded.script, health_settings(args))
    if args.command == "worker":
        from horde.worker.main import run_worker

        worker = worker_settings(args)
        _warn_insecure(worker.insecure)
        options = {o.name: o.value for o in preloaded.options}
        return run_worker(worker, preloaded.script, options, health_settings(args))
    if args.command == "demo":
        return cmd_demo(demo_run(args), logs)
    if args.command == "keygen":
        from horde.keygen import keygen

        return keygen(
            args.directory, args.workers, args.force, sys.stdout, kustomize=args.kustomize
        )
    return cmd_target(args.host, args.port)


def _warn_insecure(insecure: bool) -> None:
    if insecure:
        log.warning(
            "--insecure: what would be refused without keys is allowed; a worker channel"
            " beyond loopback without CURVE can be joined, read and hijacked by anyone on"
            " the network, and a web API beyond loopback without auth can be driven by them"
        )


def _build_master(
    settings: MasterSettings, script_path: str, loaded: LoadedScript | None = None
) -> MasterRuntime:
    import horde
    from horde.logsetup import RECENT
    from horde.master.arrivalspec import arrival_classes
    from horde.master.process import tune_process
    from horde.master.runtime import MasterRuntime, class_specs, script_files
    from horde.master.statsconf import validate
    from horde.worker.api.environment import Environment
    from horde.worker.api.loader import load_script

    script = loaded if loaded is not None else load_script(script_path)
    thresholds = script_thresholds(script.module)
    if thresholds:  # the script's first, then --threshold's
        settings = replace(settings, thresholds=(*thresholds, *settings.thresholds))
    validate()  # the script's horde.stats percentiles, checked as Locust does
    environment = Environment(
        events=horde.events,
        host=settings.host,
        user_classes=script.user_classes.values(),
        parsed_options={o.name: o.value for o in settings.script_options},
    )
    runtime = MasterRuntime(
        settings,
        class_specs(script.user_classes),
        scripts=script_files(script_path, script.source),
        environment=environment,
        shapes=dict(script.shape_classes),
        log_lines=RECENT.lines,
        schedules=arrival_classes(script.user_classes),
    )
    if settings.iterations and runtime.environment is not None:
        from horde.master.iterations import end_after_iterations

        end_after_iterations(runtime.environment, settings.iterations)
    tune_process()
    return runtime


def _serve_master(runtime: MasterRuntime, workers: LocalWorkers | None = None) -> int:
    """Run a started master headless, or serve until a signal (or until one of our
    local ``workers`` fails); always close cleanly."""
    headless = runtime.settings.headless
    done = gevent.event.Event()

    def end() -> None:
        if headless or runtime.settings.autostart:
            runtime.interrupt()  # an --autostart test ends as a headless one does
        if not headless:
            done.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, end)
    gevent.signal_handler(signal.SIGHUP, runtime.reload_keys)
    runtime.on_quit = end  # a script's environment.runner.quit()

    def worker_failed(failure: WorkerExit) -> bool:
        """End the run for a local worker that died before any test; else it is a lost worker."""
        if runtime.loops.run_snapshot().run_id:
            log.warning(
                "a local worker exited during the test; its users move to the others",
                pid=failure.pid,
                exit_code=failure.code,
            )
            return False
        log.error(
            "a local worker exited before the test started; ending the run"
            " (its standard error is above)",
            pid=failure.pid,
            exit_code=failure.code,
        )
        end()
        return True

    watcher = workers.watch(worker_failed) if workers is not None else None
    try:
        code = _follow(runtime, done)
    finally:
        if watcher is not None:
            watcher.kill()  # from here on, workers exit because we tell them to
        runtime.close()
    if workers is not None and workers.failure is not None:
        code = code or LOCAL_WORKER_FAILED
    environment = runtime.environment
    if environment is not None:  # the script's last words, as on Locust's master
        environment.events.quitting.fire(environment=environment)
        failures = listener_failures() + runtime.loops.coordinator.unhandled_errors
        code = exit_code(code, environment.process_exit_code, failures)
        environment.events.quit.fire(exit_code=code)
    return code


def exit_code(code: int, chosen: int | None, failures: int) -> int:
    """The master's exit code, as Locust decides it: the script's ``process_exit_code``
    if it set one, else the run's own, else 2 when a listener failed in an otherwise
    clean run."""
    if chosen is not None:
        return chosen
    if code == 0 and failures:
        return 2
    return code


def _follow(runtime: MasterRuntime, done: gevent.event.Event) -> int:
    """The headless run to its end, or the web master's life until ``done``.

    With ``--autostart`` the web master runs its test at once, as headless does; then it
    exits ``--autoquit`` seconds after the test ended, or serves on until ``done``.
    """
    s = runtime.settings
    if s.headless or s.autostart:
        tables = sys.stderr if s.json_output else sys.stdout
        code = int(runtime.run_headless(sys.stdout, tables))
        if s.headless:
            return code
        if s.autoquit is not None and not done.is_set():
            log.info("--autoquit: exiting soon", seconds=s.autoquit)
        elif not done.is_set():
            log.info("the test ended; the web UI stays until interrupted (--autoquit exits)")
        done.wait(timeout=s.autoquit)
        return code
    done.wait()
    log.info("shutting down: stopping the test and waiting for the workers' final stats")
    runtime.loops.command(lambda c, now: c.stop(now))
    runtime.wait_stopped()
    runtime.write_outputs(sys.stdout)
    return 0


def cmd_master(
    settings: MasterSettings,
    script: str,
    loaded: LoadedScript | None = None,
    health: HealthSettings | None = None,
) -> int:
    """``horde master``: a master that remote workers join (and ``--health-port``'s
    endpoints: alive while its timer loop turns, ready while its socket is bound)."""
    runtime = _build_master(settings, script, loaded)
    runtime.start()
    loops = runtime.loops
    server = serve_health(
        health,
        live=lambda: stamp_liveness(loops.turned, time.monotonic(), running=loops.running),
        ready=lambda: None if loops.running else "stopped",
    )
    try:
        return _serve_master(runtime)
    finally:
        if server is not None:
            server.stop()


def run_local(run: LocalRun, logs: LogSettings, loaded: LoadedScript | None = None) -> int:
    """``horde run``: a master on loopback plus local workers, watched while it runs."""
    runtime = _build_master(run.master, run.script, loaded)
    runtime.start()
    workers = LocalWorkers.start(run.workers, replace(run.worker, master_port=runtime.port), logs)
    try:
        return _serve_master(runtime, workers)
    finally:
        workers.reap()


def cmd_demo(run: LocalRun, logs: LogSettings) -> int:
    """``horde demo``: the built-in scenario against the built-in target, on loopback."""
    from horde.demo_target import start_target

    target = start_target(LOCAL_HOST, 0)
    host = f"http://{LOCAL_HOST}:{target.server_port}"
    log.info("demo target listening", url=host)
    try:
        return run_local(replace(run, master=replace(run.master, host=host)), logs)
    finally:
        target.stop(timeout=1)


def cmd_target(host: str, port: int) -> int:
    """``horde target``: serve the demo target until SIGINT/SIGTERM."""
    from horde.demo_target import start_target

    server = start_target(host, port)
    print(f"demo target listening on http://{host}:{server.server_port}", flush=True)
    done = gevent.event.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, done.set)
    done.wait()
    server.stop(timeout=1)
    return 0
