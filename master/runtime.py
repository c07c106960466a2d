"""Assemble and drive one master process: transport, coordinator, loops, HTTP shim.

:class:`MasterRuntime` wires the parts from a :class:`MasterSettings` and a loaded user
script, starts them (:meth:`start`), and in headless mode drives a whole test
(:meth:`run_headless`): wait for ``--expect-workers``, swarm (or start ``--shape``), print
a live table, stop at ``--run-time`` (or on SIGINT/SIGTERM), wait for the workers' final
stats, print the summary, write ``--html``/``--json``, tell the workers to quit, and
return the exit code. With ``--csv`` it keeps the CSV files fresh in either mode.

Imports: gevent, structlog, horde.master, horde.protocol.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import gevent
import structlog
from gevent.pywsgi import WSGIServer

from horde.master.arrivalsout import arrivals_csv, arrivals_table, with_arrivals
from horde.master.config import DEFAULT_HEADLESS_USERS, MasterSettings
from horde.master.coordinator import Coordinator
from horde.master.csvfiles import CsvFiles
from horde.master.dispatch import UserClassSpec
from horde.master.htmlreport import render_report, report_data
from horde.master.http import WebContext, create_app, serve, wrap_auth
from horde.master.jsonout import locust_json, summary_json
from horde.master.judge import judge_loop, judge_once, write_junit
from horde.master.keybind import WRONG_KEY
from horde.master.loops import MasterLoops
from horde.master.metrics import HANDSHAKES_REFUSED
from horde.master.runner import HordeMasterRunner
from horde.master.statsconf import csv_interval
from horde.master.summary import (
    corrected_table,
    errors_table,
    percentiles_table,
    requests_table,
)
from horde.master.swarm import ACTIVE_RUN, RunHooks, RunState, SwarmRequest
from horde.master.transport import RouterTransport
from horde.master.verdict_out import EXIT_ERRORED, json_document, run_exit_code, verdict_text
from horde.master.view import workers_text
from horde.master.webui import WebUI
from horde.protocol.corrected import CORRECTED_KEY
from horde.protocol.errors import ConfigError, InitListenerError
from horde.protocol.messages import ScriptFile
from horde.protocol.rates import Schedule
from horde.worker.api.environment import Environment
from horde.worker.api.events import listener_failures
from horde.worker.api.usage import monitor_usage

log = structlog.get_logger("horde.master")
POLL = 0.1
EXIT_CUT_SHORT = EXIT_ERRORED
"""Exit code of a headless run cut short (every worker lost, its load shape failed...),
whatever ``--exit-code-on-error`` or the thresholds say."""
EXIT_COULD_NOT_START = EXIT_ERRORED
"""Exit code of a headless run that never started: fewer than ``--expect-workers`` came
within ``--expect-workers-max-wait`` (or it was interrupted while waiting)."""


def class_specs(user_classes: dict[str, type]) -> list[UserClassSpec]:
    """The dispatcher's view of a script's user classes."""
    return [
        UserClassSpec(
            name=name,
            weight=int(getattr(cls, "weight", 1) or 0),
            fixed_count=int(getattr(cls, "fixed_count", 0) or 0),
        )
        for name, cls in user_classes.items()
    ]


def script_files(path: str | None, source: str | None) -> tuple[ScriptFile, ...]:
    """The script a worker started without ``-f`` receives."""
    if path is None or source is None:
        return ()
    return (ScriptFile(Path(path).name, source),)


class ScriptHooks(RunHooks):
    """Fires the user script's listeners of the master's events, as Locust's master does."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.events = environment.events

    def test_start(self) -> None:
        """Fire ``events.test_start``."""
        self.events.test_start.fire(environment=self.environment)

    def test_stopping(self) -> None:
        """Fire ``events.test_stopping``."""
        self.events.test_stopping.fire(environment=self.environment)

    def test_stop(self) -> None:
        """Fire ``events.test_stop``."""
        self.events.test_stop.fire(environment=self.environment)

    def spawning_complete(self, user_count: int) -> None:
        """Fire ``events.spawning_complete``."""
        self.events.spawning_complete.fire(user_count=user_count)

    def reset_stats(self) -> None:
        """Fire ``events.reset_stats``."""
        self.events.reset_stats.fire()

    def worker_connect(self, worker_id: str) -> None:
        """Fire ``events.worker_connect``."""
        self.events.worker_connect.fire(client_id=worker_id)

    def heartbeat_sent(self, worker_id: str, now: float) -> None:
        """Fire ``events.heartbeat_sent`` (checked first: thousands come a second)."""
        if self.events.heartbeat_sent.listeners:
            self.events.heartbeat_sent.fire(client_id=worker_id, timestamp=now)

    def custom_message(self, worker_id: str, message: Any) -> bool:
        """Hand a custom message to the script's handler, if it registered one."""
        runner = self.environment.runner
        return bool(runner is not None and runner.deliver(message))

    def worker_report(self, worker_id: str, user_count: int, extra: Mapping[str, Any]) -> None:
        """Fire ``events.worker_report`` (only built when a listener waits for it)."""
        if self.events.worker_report.listeners:
            data = {k: v for k, v in extra.items() if k != CORRECTED_KEY}
            data["user_count"] = user_count
            self.events.worker_report.fire(client_id=worker_id, data=data)


class MasterRuntime:
    """One master: its loops, its web server and (headless) its test."""

    def __init__(
        self,
        settings: MasterSettings,
        user_classes: Sequence[UserClassSpec],
        *,
        scripts: Sequence[ScriptFile] = (),
        environment: Environment | None = None,
        clock: Callable[[], float] = time.time,
        shapes: Mapping[str, Callable[[], Any]] | None = None,
        log_lines: Callable[[], list[str]] = list,
        schedules: Mapping[str, Schedule] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.environment = environment
        hooks = ScriptHooks(environment) if environment is not None else None
        coordinator = Coordinator(
            settings,
            user_classes,
            self._send,
            scripts=scripts,
            started_at=clock(),
            hooks=hooks,
            shapes=shapes,
            schedules=schedules,
        )
        if settings.shape is not None and settings.shape not in coordinator.shapes:
            raise ConfigError(
                f"--shape {settings.shape!r}: the script's load shapes are "
                f"{sorted(coordinator.shapes) or 'none'}"
            )
        only = next(iter(coordinator.shapes)) if len(coordinator.shapes) == 1 else None
        self.default_shape = settings.shape or only
        """``--shape``, else the script's only load shape (used as Locust uses it), else None."""
        if self.default_shape is not None and settings.shape is None:
            log.info("using the script's load shape", shape=self.default_shape)
        self.csv = (
            CsvFiles(settings.csv_prefix, settings.csv_full_history)
            if settings.csv_prefix
            else None
        )
        self.context = WebContext(
            locustfile=settings.locustfile,
            user_classes=list(environment.user_classes) if environment is not None else [],
            shape_names=sorted(coordinator.shapes),
            default_shape=self.default_shape,
            version=_version(),
            log_lines=log_lines,
            history_csv_path=(
                str(self.csv.history_path) if self.csv and settings.csv_full_history else None
            ),
        )
        transport = RouterTransport(
            settings.bind,
            max_frame=settings.max_frame,
            curve=settings.curve,
            on_refused=self._refused,
            on_handshake_refused=lambda: coordinator.counters.count(HANDSHAKES_REFUSED),
        )
        if transport.gate is not None:
            coordinator.key_of = transport.gate.key_of
        self.loops = MasterLoops(coordinator, [transport], clock=clock)
        self.on_quit: Callable[[], None] = self.interrupt
        """What ``environment.runner.quit()`` ends the master with (the CLI sets its own)."""
        if environment is not None:
            environment.runner = HordeMasterRunner(environment, self.loops, self._quit)
        self.web: WSGIServer | None = None
        self.endpoint = ""
        self._interrupted = False
        self._csv_loop: gevent.Greenlet | None = None
        self._usage_loop: gevent.Greenlet | None = None
        self._judge_loop: gevent.Greenlet | None = None

    def _refused(self, identity: bytes, reason: str) -> None:
        """A CURVE frame whose key may not speak for its identity: counted and dropped."""
        worker = identity.decode("utf-8", "replace")
        detail = "a frame under another key than the one this worker registered with"
        if reason != WRONG_KEY:
            detail = "a frame under a key that is no longer on the allow-list"
        self.loops.coordinator.count_malformed(worker, reason, detail, self.clock())

    def _quit(self) -> None:
        self.on_quit()  # looked up when called: the CLI replaces it after construction

    def reload_keys(self) -> None:
        """Read the allow-list of worker keys again (SIGHUP); a plain master ignores it."""
        zap = self.loops.transport.zap
        if zap is None:
            log.warning("SIGHUP: this master has no worker keys to reload (it is not secure)")
            return
        log.info("SIGHUP: reloading the worker keys", source=zap.source)
        zap.reload()

    def _send(self, worker_id: str, message: object) -> None:
        self.loops.send(worker_id, message)  # type: ignore[arg-type]

    def start(self) -> None:
        """Create the ``--csv`` folder, fire ``events.init``, bind the worker socket and,
        unless disabled, the web server."""
        if self.settings.csv_prefix:
            folder = Path(self.settings.csv_prefix).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)  # as Locust does
            except OSError as exc:
                raise ConfigError(f"--csv: cannot create the folder {folder}: {exc}") from exc
        s = self.settings
        flask_app = create_app(self.loops, self.context) if s.web_port is not None else None
        if self.environment is not None:
            # Headless, Locust has no web UI: scripts that check for one see None, though
            # horde still serves its API (unless --no-web).
            web_ui = WebUI(flask_app, self.loops, self.context) if flask_app else None
            web_ui = None if s.headless else web_ui
            self.environment.web_ui = web_ui
            failures = listener_failures()
            self.environment.events.init.fire(
                environment=self.environment, runner=self.environment.runner, web_ui=web_ui
            )
            if listener_failures() > failures:
                raise InitListenerError("a listener of the script's init event failed (above)")
        self.endpoint = self.loops.start()[0]
        if flask_app is not None and s.web_port is not None:
            host, port = s.web_host, s.web_port
            app = wrap_auth(flask_app, s.web_auth, s.web_auth_token)
            try:
                web = serve(app, host, port, certfile=s.tls_cert, keyfile=s.tls_key)
            except (OSError, ConfigError) as exc:
                self.loops.stop()
                raise ConfigError(f"cannot serve the web API on {host}:{port}: {exc}") from exc
            self.web = web
            scheme = "https" if s.tls_cert else "http"
            log.info(
                "web ui",
                url=f"{scheme}://{host}:{web.server_port}{s.web_base_path}/",
                auth="basic" if s.web_auth else ("token" if s.web_auth_token else "none"),
            )
        if self.csv is not None:
            self._csv_loop = gevent.spawn(self._write_csv_loop)
        if self.environment is not None:
            self._usage_loop = gevent.spawn(monitor_usage, self.environment)
        self._judge_loop = gevent.spawn(judge_loop, self.loops)

    def _write_csv_loop(self) -> None:
        """Rewrite the ``--csv`` files every interval while a run is on, and once after it.

        A run shorter than the interval still gets written: any run whose files were not
        written since it began (its id changed) is written at the next interval.
        """
        written: tuple[str, bool] = ("", False)  # (run id, whether it was still running)
        while True:
            interval = self.settings.csv_interval
            gevent.sleep(csv_interval() if interval is None else interval)
            run = self.loops.run_snapshot()
            running = run.state in (*ACTIVE_RUN, RunState.STOPPING)
            if run.run_id and (running or written != (run.run_id, False)):
                self.write_csv()
                written = (run.run_id, running)

    def write_csv(self) -> None:
        """Write the ``--csv`` files now (a failure is logged, never raised)."""
        if self.csv is None:
            return
        snap = self.loops.snapshot()
        try:
            arrivals = arrivals_csv(snap.arrivals) if snap.arrivals else None
            self.csv.write(
                snap.stats,
                snap.exceptions,
                snap.run.user_count,
                snap.run.now,
                snap.corrected,
                arrivals=arrivals,
            )
        except (OSError, ConfigError) as exc:
            log.error("cannot write the CSV files", error=str(exc))

    def write_outputs(self, out: TextIO) -> None:
        """The end of a run: final CSV files, the ``--html`` report, ``--json`` on ``out``,
        the ``summary`` log line (``--log-format json``)."""
        s = self.settings
        self.write_csv()
        if s.html_path:
            data = report_data(
                self.loops.snapshot(), locustfile=s.locustfile, show_download_link=False
            )
            try:
                Path(s.html_path).write_text(render_report(data), encoding="utf-8")
                log.info("HTML report written", path=s.html_path)
            except OSError as exc:
                log.error("cannot write the HTML report", path=s.html_path, error=str(exc))
        report = judge_once(self.loops)
        if s.json_output:
            snap = self.loops.snapshot()
            entries = with_arrivals(locust_json(snap.stats, snap.corrected), snap.arrivals)
            out.write(json.dumps(json_document(entries, report), indent=4) + "\n")
            out.flush()
        if s.junit_path:
            write_junit(self.loops, s.junit_path)
        if s.log_summary:  # the figures leave a pod in its log
            snap = self.loops.snapshot()
            log.info("summary", **summary_json(snap.stats, snap.corrected))
            if report.results or report.saturation is not None:
                log.info("verdict", **report.to_json())

    @property
    def port(self) -> int:
        """The worker socket's TCP port."""
        return self.loops.transport.port

    @property
    def web_port(self) -> int | None:
        """The web server's TCP port (resolved when 0 was asked for)."""
        return None if self.web is None else int(self.web.server_port)

    def interrupt(self) -> None:
        """SIGINT/SIGTERM: stop the test and finish as if the run time had passed."""
        self._interrupted = True
        self.loops.command(lambda c, now: c.stop(now))

    def wait_stopped(self) -> bool:
        """Wait (bounded by the stop wait) until a stopping run has stopped."""
        s = self.settings
        deadline = self.clock() + s.stop_wait + (s.stop_timeout or 0) + 1.0
        while self.loops.run_snapshot().state is RunState.STOPPING and self.clock() < deadline:
            gevent.sleep(POLL)
        return self.loops.run_snapshot().state is not RunState.STOPPING

    def close(self) -> None:
        """Tell the workers to quit, then stop serving."""
        self.loops.command(lambda c, now: c.quit())
        gevent.sleep(0.2)  # let the quit messages leave before the socket closes
        for loop in (self._csv_loop, self._usage_loop, self._judge_loop):
            if loop is not None:
                loop.kill(block=False)
        if self.web is not None:
            self.web.stop(timeout=1)
        self.loops.stop()

    # --- headless ------------------------------------------------------------------------

    def wait_for_workers(self, count: int, timeout: float | None) -> bool:
        """Wait until ``count`` workers are ready; log progress every few seconds."""
        started = self.clock()
        next_note = started
        while (ready := self.loops.run_snapshot().worker_count) < count:
            now = self.clock()
            if self._interrupted or (timeout is not None and now - started > timeout):
                return False
            if now >= next_note:
                log.info(
                    "waiting for workers",
                    ready=ready,
                    expected=count,
                )
                next_note = now + 5
            gevent.sleep(POLL)
        return True

    def run_headless(self, out: TextIO, tables: TextIO | None = None) -> int:
        """Run one test to its end and return the process exit code.

        Tables go to ``tables`` (``out`` unless ``--json``, which keeps ``out`` for JSON).
        """
        s = self.settings
        if tables is None:
            tables = out
        if not self.wait_for_workers(s.expect_workers, s.expect_workers_max_wait):
            came, expected = self.loops.run_snapshot().worker_count, s.expect_workers
            wait = s.expect_workers_max_wait
            within = f"within --expect-workers-max-wait {wait:g} s" if wait is not None else ""
            when = "before the interrupt" if self._interrupted else within
            log.error(
                f"could not start: {came} of {expected} expected workers connected {when};"
                " exiting without a test",
                workers=came,
                expected=expected,
            )
            return EXIT_COULD_NOT_START
        users = s.users if s.users is not None else DEFAULT_HEADLESS_USERS
        shape = self.default_shape
        run_time = s.run_time
        if shape is not None and not getattr(
            self.loops.coordinator.shapes[shape], "use_common_options", False
        ):
            if run_time is not None or s.users is not None:
                log.warning(
                    "--run-time, --users and --spawn-rate have no effect on a load shape unless"
                    " its class sets use_common_options = True (as in Locust)",
                    shape=shape,
                )
            run_time = None
        request = SwarmRequest(
            users, s.spawn_rate, s.host, run_time, shape_class=shape, arrival=s.arrival
        )
        self.loops.command(lambda c, now: c.start(request, now))
        code = self._follow_run(tables)
        self.write_outputs(out)
        return code

    def _follow_run(self, out: TextIO) -> int:
        """Print live tables until the run stops, then the summary; return the exit code."""
        s = self.settings
        next_print = self.clock() + s.print_stats
        while self.loops.run_snapshot().state is not RunState.STOPPED:
            gevent.sleep(POLL)
            now = self.clock()
            if now >= next_print and not s.only_summary:
                out.write(requests_table(self.loops.snapshot(now).stats, now) + "\n")
                out.flush()
                next_print = now + s.print_stats
        judge_once(self.loops)  # the final figures' verdict
        snap = self.loops.snapshot()
        out.write("\n" + requests_table(snap.stats, snap.run.now) + "\n")
        out.write("\n")
        out.write(percentiles_table(snap.stats) + "\n")
        corrected = corrected_table(snap.stats, snap.corrected)
        if corrected:
            out.write("\n" + corrected + "\n")
        if snap.arrivals:
            out.write("\n" + arrivals_table(snap.arrivals) + "\n")
        if snap.stats.errors():
            out.write("\nError report\n" + errors_table(snap.stats) + "\n")
        out.write("\n" + workers_text(snap) + "\n")
        end = snap.run.end
        cut_short = end.describe() if end is not None and end.reason.cut_short else None
        if cut_short:
            out.write(f"\nThe run was cut short: {cut_short}.\n")
        verdict = verdict_text(snap.verdict)
        if verdict:
            out.write("\n" + verdict + "\n")
        out.flush()
        if cut_short:
            log.error("exiting with an error: the run was cut short", reason=cut_short)
            return EXIT_CUT_SHORT
        failed = bool(snap.stats.total.num_failures or snap.exceptions)
        return run_exit_code(snap.verdict, failed=failed, exit_code_on_error=s.exit_code_on_error)


def _version() -> str:
    from horde import __version__

    return __version__
