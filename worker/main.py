"""Assemble and run one worker process: script, environment, users, stats, link, agent, loops.

Called by the CLI after ``gevent.monkey.patch_all()``. Loads the script from ``-f`` or,
without it, receives the master's script first; then runs the agent until the master
says ``quit`` or the process gets SIGTERM/SIGINT (which stop the users, flush the stats
and tell the master before exiting).

Imports: gevent, horde.worker, horde.protocol.
"""

from __future__ import annotations

import signal

import gevent
import structlog

import horde
from horde.logsetup import RECENT
from horde.worker.agent import WorkerAgent
from horde.worker.api.environment import Environment
from horde.worker.api.loader import LoadedScript, load_script, load_source
from horde.worker.config import WorkerSettings
from horde.worker.fetch import fetch_scripts
from horde.worker.loops import WorkerRuntime
from horde.worker.pool import UserPool
from horde.worker.stats import RequestRecorder
from horde.worker.transport import LinkStatus, WorkerLink

log = structlog.get_logger("horde.worker")


def obtain_script(settings: WorkerSettings) -> LoadedScript:
    """The user script: from ``-f``, or fetched from the master."""
    if settings.script:
        return load_script(settings.script)
    files = fetch_scripts(settings.endpoint, timeout=settings.script_wait, curve=settings.curve)
    log.info("received the master's script", filename=files[0].filename)
    return load_source(files[0].filename, files[0].contents)


def build_agent(settings: WorkerSettings, script: LoadedScript) -> WorkerRuntime:
    """Wire a worker's parts; nothing runs until ``runtime.run()``."""
    environment = Environment(
        events=horde.events,
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
    pool = UserPool(environment, script.user_classes)
    agent = WorkerAgent(settings, RequestRecorder(max_names=settings.max_names))
    return WorkerRuntime(
        agent,
        link,
        status=status,
        environment=environment,
        pool=pool,
        new_log_lines=RECENT.take_new,
    )


def run_worker(settings: WorkerSettings) -> int:
    """Run a worker until the master lets it go; return the exit code."""
    script = obtain_script(settings)
    runtime = build_agent(settings, script)
    runtime.environment.events.init.fire(environment=runtime.environment)
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, lambda: gevent.spawn(runtime.shutdown))
    return runtime.run()
