"""Exit codes as Locust decides them: a failing init listener is fatal (1), a script's
environment.process_exit_code wins, and a listener that failed, or a user class that could
not be created (Locust's unhandled greenlet exception), during an otherwise clean run
makes it 2."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from horde.commands import exit_code
from tests.fault_support import counting_target

BODY = textwrap.dedent(
    """
    from horde import HttpUser, constant, events, task

    class Visitor(HttpUser):
        wait_time = constant(0.2)

        @task
        def home(self):
            self.client.get("/")
    """
)

SCRIPTS = {
    "init_fails": (
        "@events.init.add_listener\ndef boom(environment, **kw):\n    raise RuntimeError('no')\n"
    ),
    "chooses_3": (
        "@events.quitting.add_listener\n"
        "def choose(environment, **kw):\n    environment.process_exit_code = 3\n"
    ),
    "stop_fails": (
        "@events.test_stop.add_listener\n"
        "def boom(environment, **kw):\n    raise ValueError('late')\n"
    ),
    "user_init_fails": (
        "def broken(self, environment):\n    raise KeyError('API_HOST')\n\n"
        "Visitor.__init__ = broken\n"
    ),
}


def test_the_exit_code_rule() -> None:
    """The script's choice wins; a failed listener turns a clean 0 into 2, nothing else."""
    assert exit_code(0, None, 0) == 0
    assert exit_code(0, None, 1) == 2
    assert exit_code(1, None, 1) == 1
    assert exit_code(1, 0, 5) == 0


@pytest.mark.process
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("name", "code"),
    [("init_fails", 1), ("chooses_3", 3), ("stop_fails", 2), ("user_init_fails", 2)],
)
def test_exit_codes_follow_locusts_rules(tmp_path: Path, name: str, code: int) -> None:
    """Each script's headless run exits with the code Locust gives it."""
    script = tmp_path / f"{name}.py"
    script.write_text(BODY + SCRIPTS[name])
    with counting_target() as target:
        command = [sys.executable, "-m", "horde", "run", "-f", str(script), "--headless"]
        command += ["-u", "1", "-r", "10", "-t", "1s", "--workers", "1", "--web-port", "0"]
        done = subprocess.run(
            [*command, "-H", target.url], capture_output=True, text=True, timeout=90, check=False
        )
    assert done.returncode == code, done.stderr[-2000:]
