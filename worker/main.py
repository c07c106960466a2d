"""Assemble and run one worker process: script, environment, users, stats, link, agent, loops.

Called by the CLI after ``gevent.monkey.patch_all()``. Loads the script from ``-f`` or,
without it, receives the master's script first; then runs the agent until the master
says ``quit`` or the process gets SIGTERM/SIGINT (which stop the users, flush the stats
and tell the master before exiting).

Imports: gevent, horde.worker, horde.protocol, horde.health and horde.healthserver.
"""

from __future__ import annotations

import gc
import signal
import time
from collections.abc import Mapping
from typing import Any

import gevent
import structlog

import horde
from horde.health import HealthSettings, Verdict, stamp_liveness
from horde.healthserver import serve_health
from horde.logsetup import RECENT
from horde.protocol.errors import InitListenerError
from horde.worker.agent import WorkerAgent
from horde.worker.api.environment import Environment
from horde.worker.api.events import listener_failures
from horde.worker.api.loader import LoadedScript, load_script, load_source
from horde.worker.arrival import ArrivalRunner
from horde.worker.config import WorkerSettings
from horde.worker.fetch import fetch_scripts
from horde.worker.loops import WorkerRuntime
from horde.worker.parent import follow_parent
from horde.worker.pool import UserPool
from horde.worker.runner import HordeWorkerRunner
from horde.worker.stats import RequestRecorder
from horde.worker.transport import LinkStatus, WorkerLink

log = structlog.get_logger("horde.worker")
GC_THRESHOLDS = (10_000, 50, 50)
"""Collector thresholds (young, middle, old); Python's defaults are (700, 10, 10)."""


def obtain_script(settings: WorkerSettings, loaded: LoadedScript | None = None) -> LoadedScript:
    """The user script: as the CLI loaded it, from ``-f``, or fetched from the master."""
    if loaded is not None:
        return loaded
    if settings.script:
        return load_script(settings.script)
    files = fetch_scripts(settings.endpoint, timeout=settings.script_wait, curve=settings.curve)
    log.info("received the master's script", filename=files[0].filename)
    return load_source(files[0].filename, files[0].contents)


def build_agent(
    settings: WorkerSettings, script: LoadedScript, options: Mapping[str, Any] | None = None
) -> WorkerRuntime:
    """Wire a worker's parts; nothing runs until ``runtime.run()``. ``options``: the
    script's own options as this worker's command line gave them."""
    environment = Environment(
        events=horde.events,
        parsed_options=options,
        user_classes=list(script.user_classes.values()),
        tags=list(settings.tags) or None,
        exclude_tags=list(settings.exclude_tags) or None,
    )
    status = LinkStatus()
    link = WorkerLink(
        settings.endpoint,
        settings.node_id,
        status,
        heartbeat_interval=settings.heartbeat_interval,
        register_retry=settings.register_retry,
        max_frame=settings.max_frame,
        master_silence=settings.master_silence,
        curve=settings.curve,
    )
    runner = HordeWorkerRunner(environment)
    environment.runner = runner
    pool = UserPool(environment, script.user_classes)
    agent = WorkerAgent(settings, RequestRecorder(max_names=settings.max_names))
    runtime = WorkerRuntime(
        agent,
        link,
        status=status,
        environment=environment,
        pool=pool,
        new_log_lines=RECENT.take_new,
        arrivals=ArrivalRunner(
            environment,
            script.user_classes,
            pool_size=settings.arrival_pool,
            max_start_delay=settings.max_start_delay,
        ),
    )
    runner.attach(runtime)
    return runtime


def run_worker(
    settings: WorkerSettings,
    loaded: LoadedScript | None = None,
    options: Mapping[str, Any] | None = None,
    health: HealthSettings | None = None,
) -> int:
    """Run a worker until the master lets it go; return the exit code.

    With ``--health-port``, it is alive while its link thread (the heartbeat) makes its
    passes and ready while it is registered with a master."""
    if settings.parent_pid is not None and not follow_parent(settings.parent_pid):
        log.warning("the horde run that started this worker is gone; exiting")
        return 1
    watch = LinkWatch()
    server = serve_health(health, watch.live, watch.ready)  # answers while the script comes
    try:
        return _run(settings, loaded, options, watch)
    finally:
        if server is not None:
            server.stop()


class LinkWatch:
    """The health endpoints' view of a worker: its link's status, once it has one."""

    def __init__(self) -> None:
        self.status: LinkStatus | None = None

    def live(self) -> Verdict:
        """Alive while the link thread makes its passes (and while the script comes)."""
        status = self.status
        if status is None:
            return None
        return stamp_liveness(status.handoff.last_pass, time.monotonic())

    def ready(self) -> Verdict:
        """Ready while registered with a master."""
        status = self.status
        if status is None:
            return "starting"
        return None if status.registered else "unregistered"


def _run(
    settings: WorkerSettings,
    loaded: LoadedScript | None,
    options: Mapping[str, Any] | None,
    watch: LinkWatch,
) -> int:
    script = obtain_script(settings, loaded)
    runtime = build_agent(settings, script, options)
    events = runtime.environment.events
    runtime.listen()  # the recording listeners first, as Locust's runner registers them
    failures = listener_failures()
    events.init.fire(
        environment=runtime.environment, runner=runtime.environment.runner, web_ui=None
    )
    if listener_failures() > failures:
        raise InitListenerError("a listener of the script's init event failed (above)")
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, lambda: gevent.spawn(runtime.shutdown))
    watch.status = runtime.status
    # Start-up objects (modules, the script) never become garbage: left out of the
    # collector's passes, and full passes made rarer (as on the master): each stalls the
    # loop for 15-20 ms, which would drop arrival-rate iterations.
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    code = runtime.run()
    events.quit.fire(exit_code=code)  # after quitting, as Locust's last word
    return code
