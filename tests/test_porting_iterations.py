"""``-i/--iterations N`` as Locust users know it (locust-plugins' flag; Locust 2.47 has
none): each worker runs at most N task iterations, its users stop at their next task and
the test ends, before its run time, with the exit code of its failures."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from horde.master.config import MasterSettings
from horde.protocol.errors import ConfigError
from horde.worker.api.environment import Environment
from horde.worker.api.events import Events
from horde.worker.api.iterations import DONE_MESSAGE, take_iteration
from tests.fault_support import SCRIPTS, counting_target
from tests.support import as_locust_script, probe_env, run_headless


class FakeRunner:
    """A worker runner with a fixed user count that records what it sends."""

    def __init__(self, users: int) -> None:
        self.user_count = users
        self.sent: list[str] = []

    def send_message(self, msg_type: str, data: object = None) -> None:
        """Record the message type."""
        self.sent.append(msg_type)


def test_the_limit_lets_n_iterations_start_then_stops_each_user_once() -> None:
    """With iterations=3, three iterations start; then every user asking stops, and the
    last of the two users to stop tells the master, once; a new test counts afresh."""
    runner = FakeRunner(users=2)
    env = Environment(events=Events(), parsed_options={"iterations": 3}, runner=runner)
    assert [take_iteration(env) for _ in range(3)] == [True] * 3
    assert take_iteration(env) is False and runner.sent == []
    assert take_iteration(env) is False and runner.sent == [DONE_MESSAGE]
    env.iterations.reset()
    assert take_iteration(env) is True
    assert take_iteration(Environment(events=Events())) is True  # no option: no limit


def test_iterations_travel_to_the_workers_as_locust_plugins_reads_them() -> None:
    """-i N is the spawn's ``iterations`` option (parsed_options, as locust-plugins reads
    it); absent without -i; a negative count is refused."""
    assert MasterSettings(iterations=5).run_options["iterations"] == 5
    assert "iterations" not in MasterSettings().run_options
    with pytest.raises(ConfigError, match="iterations"):
        MasterSettings(iterations=-1)


@pytest.mark.process
@pytest.mark.timeout(150)
def test_iterations_end_the_run_after_n_iterations_as_under_locust(tmp_path: Path) -> None:
    """With -i 7 and a 60 s run time, horde (one worker) and Locust with locust-plugins
    each make exactly 7 iterations (7 GET /a, 7 GET /b), then end early with 0."""
    locust_script = as_locust_script(SCRIPTS / "iterations.py", tmp_path)
    flags = ["-u", "2", "-r", "10", "-t", "60s", "-i", "7"]
    results = {}
    for side in ("horde", "locust"):
        with counting_target() as target:
            started = time.monotonic()
            if side == "horde":
                done = run_headless(SCRIPTS / "iterations.py", target.url, *flags, timeout=90)
            else:
                locust = [sys.executable, "-m", "locust", "-f", str(locust_script), "--headless"]
                done = subprocess.run(
                    [*locust, *flags, "-H", target.url],
                    env=probe_env(tmp_path / "probe.log", WITH_LOCUST_PLUGINS="1"),
                    capture_output=True, text=True, timeout=90, check=False,
                )  # fmt: skip
            elapsed = time.monotonic() - started
            results[side] = (done.returncode, dict(target.counts()), elapsed < 30)
            assert done.returncode == 0, (side, done.stderr[-2000:])
    assert results["horde"] == results["locust"] == (0, {"/a": 7, "/b": 7}, True)
