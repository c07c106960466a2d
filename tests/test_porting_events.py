"""The same script's events under Locust 2.47 and under horde: which fire, on which side.

tests/scripts/events_probe.py notes every event it hears; it runs as written (horde
imports) under `horde run`, and with `locust` imports under a Locust master and worker.
Both must fire the same events on the same side, and a worker's report_to_master keys
must reach the master's worker_report.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fault_support import SCRIPTS, counting_target
from tests.support import (
    as_locust_script,
    probe_env,
    run_headless,
    run_locust_fleet,
    wait_for,
)

pytestmark = [pytest.mark.timeout(120), pytest.mark.process]


def sides(log: Path, master_pid: int) -> set[tuple[str, str]]:
    """The (side, event) pairs noted in ``log``: side is master for ``master_pid``."""
    pairs = set()
    for line in log.read_text().splitlines():
        pid, event = line.split()
        pairs.add(("master" if int(pid) == master_pid else "worker", event))
    return pairs


def test_events_fire_on_the_same_side_as_under_locust(tmp_path: Path) -> None:
    """init, test_start/stopping/stop, spawning_complete, worker_connect, worker_report with
    the worker's report_to_master keys, quitting and quit: the same pairs both ways."""
    horde_script = SCRIPTS / "events_probe.py"
    locust_script = as_locust_script(horde_script, tmp_path)
    with counting_target() as target:
        horde_log = tmp_path / "horde.log"
        command = [sys.executable, "-m", "horde", "run", "-f", str(horde_script), "--headless"]
        command += ["--workers", "1", "-u", "2", "-r", "10", "-t", "3s", "-H", target.url]
        run = subprocess.Popen(
            [*command, "--web-port", "0"], env=probe_env(horde_log), stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        _, err = run.communicate(timeout=60)
        assert run.returncode == 0, err[-2000:]
        horde_pairs = sides(horde_log, run.pid)

        locust_log = tmp_path / "locust.log"
        _, master_pid = run_locust_fleet(
            locust_script, target.url, ["-u", "2", "-r", "10", "-t", "3s"], probe_env(locust_log)
        )
        locust_pairs = sides(locust_log, master_pid)
    assert ("worker", "request") not in locust_pairs  # only the listed events are noted
    assert ("master", "worker_report_without_marker") not in horde_pairs
    assert horde_pairs == locust_pairs
    assert {("master", "worker_report"), ("worker", "report_to_master")} <= horde_pairs
    assert {("master", "spawning_complete"), ("worker", "spawning_complete")} <= horde_pairs


def test_the_master_fires_reset_stats_and_worker_connect_once_per_worker() -> None:
    """A reset fires reset_stats; a worker's ready-again after a stop is no new connect."""
    from horde.master.config import MasterSettings
    from horde.master.coordinator import Coordinator
    from horde.master.dispatch import UserClassSpec
    from horde.master.runtime import ScriptHooks
    from horde.protocol import messages as m
    from horde.worker.api.environment import Environment
    from horde.worker.api.events import Events

    heard: list[str] = []
    environment = Environment(events=Events())
    environment.events.reset_stats.add_listener(lambda: heard.append("reset_stats"))
    environment.events.worker_connect.add_listener(lambda client_id: heard.append(client_id))  # noqa: PLW0108 - called by keyword
    coordinator = Coordinator(
        MasterSettings(), [UserClassSpec("A", 1, 0)], lambda i, msg: None,
        hooks=ScriptHooks(environment),
    )  # fmt: skip
    coordinator.handle("w_1", m.ClientReady("w_1"), 100.0)
    coordinator.handle("w_1", m.ClientReady("w_1"), 101.0)
    coordinator.reset_stats(102.0)
    assert heard == ["w_1", "reset_stats"]


@pytest.mark.timeout(90)
def test_heartbeat_events_fire_and_a_blocking_listener_delays_no_heartbeat(
    tmp_path: Path,
) -> None:
    """heartbeat_sent on the master, heartbeat_received on the worker (on its event loop),
    usage_monitor on both; a listener that holds the worker's loop 2.5 s costs no
    heartbeat: the worker is never missing."""
    from tests.fault_support import cluster, events

    log = tmp_path / "events.log"
    os.environ["EVENTS_LOG"] = str(log)  # the cluster's children inherit it
    try:
        with cluster() as c:
            c.start_master("--heartbeat-interval", "0.5", script="heartbeat_probe.py")
            worker = c.worker("--heartbeat-interval", "0.5", script="heartbeat_probe.py")
            node = c.node_id(worker)
            c.wait_workers([node])
            wait_for(lambda: log.read_text().count("heartbeat_received") >= 4, 30, "beats")
            assert c.rows()[node]["state"] == "ready"
            assert "worker_missing" not in events(c.metrics())
            master_pid = c.master.pid if c.master is not None else -1
    finally:
        del os.environ["EVENTS_LOG"]
    pairs = sides(log, master_pid)
    assert {("master", "heartbeat_sent"), ("worker", "heartbeat_received")} <= pairs
    assert ("worker", "heartbeat_sent") not in pairs and (
        "master",
        "heartbeat_received",
    ) not in pairs


def test_usage_reports_fire_usage_monitor_and_cpu_warning_above_the_threshold() -> None:
    """usage_monitor every time; cpu_warning only above 90% (logged the first time)."""
    from horde.worker.api.environment import Environment
    from horde.worker.api.events import Events
    from horde.worker.api.usage import report_usage

    heard: list[tuple[str, float]] = []
    environment = Environment(events=Events())
    environment.events.usage_monitor.add_listener(
        lambda environment, cpu_usage, memory_usage: heard.append(("usage", cpu_usage))
    )
    environment.events.cpu_warning.add_listener(
        lambda environment, cpu_usage, message, timestamp: heard.append(("warning", timestamp))
    )
    assert report_usage(environment, 50.0, 1 << 20, False, 10.0) is False
    assert report_usage(environment, 95.0, 1 << 20, False, 20.0) is True
    assert heard == [("usage", 50.0), ("usage", 95.0), ("warning", 20.0)]


def test_test_start_listeners_see_the_runs_target_user_count() -> None:
    """The target is set before test_start fires (Locust scripts split data by it)."""
    from horde.master.config import MasterSettings
    from horde.master.coordinator import Coordinator, SwarmRequest
    from horde.master.dispatch import UserClassSpec
    from horde.master.swarm import RunHooks
    from horde.protocol import messages as m

    seen: list[int] = []

    class Hooks(RunHooks):
        def test_start(self) -> None:
            seen.append(coordinator.target_total)

    coordinator = Coordinator(
        MasterSettings(), [UserClassSpec("A", 1, 0)], lambda i, msg: None, hooks=Hooks()
    )
    coordinator.handle("w_1", m.ClientReady("w_1"), 100.0)
    coordinator.start(SwarmRequest(7, 10.0, "http://127.0.0.1:9", None), 100.0)
    assert seen == [7]


def test_a_request_listener_that_reschedules_still_lets_the_failure_be_recorded(
    tmp_path: Path,
) -> None:
    """A request listener added in init raising RescheduleTask ends the task at the failed
    request, which is still recorded as a failure (exit 1), under horde as under Locust."""
    script = SCRIPTS / "reschedule_on_failure.py"
    locust_script = as_locust_script(script, tmp_path)
    flags = ["-u", "1", "-r", "10", "-t", "2s"]
    with counting_target() as target:
        ours = run_headless(script, target.url, *flags, "--csv", str(tmp_path / "h"))
        locust = [sys.executable, "-m", "locust", "-f", str(locust_script), "--headless"]
        theirs = subprocess.run(
            [*locust, *flags, "-H", target.url, "--csv", str(tmp_path / "l")],
            env=probe_env(tmp_path / "probe.log"), capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
        assert target.counts()["/second"] == 0
    assert (ours.returncode, theirs.returncode) == (1, 1), ours.stderr[-2000:]
    for prefix in ("h", "l"):
        rows = {r["Name"]: r for r in csv.DictReader((tmp_path / f"{prefix}_stats.csv").open())}
        assert set(rows) == {"/first", "Aggregated"}
        assert int(rows["/first"]["Failure Count"]) == int(rows["/first"]["Request Count"]) > 0
