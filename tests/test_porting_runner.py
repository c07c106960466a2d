"""environment.runner and custom messages: a horde master with a horde worker, and with a
real Locust worker, exchange a script's own messages both ways."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fault_support import SCRIPTS, counting_target
from tests.support import as_locust_script, free_port, probe_env, processes, wait_for

pytestmark = [pytest.mark.timeout(120), pytest.mark.process]


def test_custom_messages_between_a_horde_master_and_a_horde_worker(tmp_path: Path) -> None:
    """The master's greeting reaches the worker's handler; the worker's ack reaches the
    master's, with its node id; the master's runner is a MasterRunner; the worker's
    runner.stats holds its own first request."""
    log = tmp_path / "log"
    with counting_target() as target:
        command = [sys.executable, "-m", "horde", "run", "-f", str(SCRIPTS / "messages_probe.py")]
        command += ["--headless", "-u", "1", "-r", "10", "-t", "2s", "--workers", "1"]
        command += ["--web-port", "0", "-H", target.url]
        done = subprocess.run(
            command, env=probe_env(log), capture_output=True, text=True, timeout=60, check=False
        )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = log.read_text().splitlines()
    assert lines.count("master runner") == 1
    assert "worker greet there" in lines and "master ack True" in lines
    assert "worker stats True True True True True" in lines


def test_custom_messages_between_a_horde_master_and_a_locust_worker(tmp_path: Path) -> None:
    """The same script, with `locust` imports on a real Locust 2.47 worker: both ways, and
    the worker's runner.stats reads the same."""
    log = tmp_path / "log"
    locust_script = as_locust_script(SCRIPTS / "messages_probe.py", tmp_path)
    port = free_port()
    with counting_target() as target, processes() as procs:
        master = procs.horde(
            "master", "-f", str(SCRIPTS / "messages_probe.py"), "--bind",
            f"tcp://127.0.0.1:{port}", "--web-port", "0", "--headless", "--expect-workers",
            "1", "-u", "1", "-r", "10", "-t", "3s", "-H", target.url, env=probe_env(log),
        )  # fmt: skip
        procs.start(
            sys.executable, "-m", "locust", "-f", str(locust_script), "--worker",
            "--master-host", "127.0.0.1", "--master-port", str(port), env=probe_env(log),
        )  # fmt: skip
        wait_for(lambda: master.poll() is not None, 60, "the master to finish")
        assert master.returncode == 0, procs.output(master)[-2000:]
    lines = log.read_text().splitlines()
    assert "worker greet there" in lines and "master ack True" in lines
    assert "worker stats True True True True True" in lines
