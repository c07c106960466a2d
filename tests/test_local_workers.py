"""`horde run`'s local workers: the installed horde whatever the current folder holds, a
worker that dies at start ends the run promptly, with its standard error shown, a run that
loses every worker ends non-zero saying so, and workers run under the normal scheduling
policy."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.support import SCRIPTS, VENV_BIN, free_port, processes, start_target

pytestmark = pytest.mark.process

#: Bounds generous for a loaded CI machine: the short run needs about 5 s, the failing one
#: about 2 s (the worker's start-up), and its end follows the worker's death within 2 s.
RUN_BOUND = 40.0
DEATH_BOUND = 20.0
AFTER_DEATH_BOUND = 10.0

DIES_IN_WORKER = '''\
"""A script that loads on the master but makes every `horde worker` fail at start."""

import sys

from horde import HttpUser, constant, task

if "worker" in sys.argv:
    raise RuntimeError("this worker cannot start: WORKER-STDERR-MARK")


class Reader(HttpUser):
    wait_time = constant(0.05)

    @task
    def home(self) -> None:
        self.client.get("/fast")
'''


@dataclass(frozen=True)
class Finished:
    """How an installed ``horde`` command ended."""

    code: int
    output: str
    after_mark: float | None
    """Seconds from the first sight of the mark in its output (or the kill) to its exit
    (None: no mark)."""


def run_horde(args: list[str], cwd: Path, timeout: float, mark: str = "") -> Finished:
    """Run the installed ``horde`` command in ``cwd`` to its end, watching for ``mark``.

    On timeout, kill it and every process it started (by PID) and fail the test.
    """
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(
            [str(VENV_BIN / "horde"), *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + timeout
        seen: float | None = None
        while proc.poll() is None and time.monotonic() < deadline:
            if seen is None and mark:
                out.seek(0)
                seen = time.monotonic() if mark in out.read() else None
            time.sleep(0.02)
        if proc.poll() is None:
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
            proc.kill()
            proc.wait(timeout=10)
            out.seek(0)
            pytest.fail(f"horde {args[0]} still running after {timeout} s:\n{out.read()[-4000:]}")
        ended = time.monotonic()
        out.seek(0)
        output = out.read()
        if seen is None and mark in output:
            seen = ended
        return Finished(proc.returncode, output, None if seen is None else ended - seen)


def test_run_in_a_folder_holding_a_horde_package_uses_the_installed_horde(
    tmp_path: Path,
) -> None:
    """`horde run` in a folder with its own `horde/` package completes a short headless run."""
    bogus = tmp_path / "horde"
    bogus.mkdir()
    (bogus / "__init__.py").write_text('raise ImportError("the horde/ in the current folder")\n')
    with processes() as procs:
        target = start_target(procs)
        run = run_horde(
            [
                "run", "-f", str(SCRIPTS / "basic.py"), "--headless", "-H", target,
                "-u", "1", "-r", "10", "-t", "2s", "--workers", "1", "--no-web",
            ],
            tmp_path,
            RUN_BOUND,
        )  # fmt: skip
    assert run.code == 0, run.output[-4000:]
    assert "the horde/ in the current folder" not in run.output
    assert "Aggregated" in run.output


@pytest.mark.parametrize("mode", [["--headless"], ["--web-port", "0"]], ids=["headless", "web"])
def test_a_worker_that_dies_at_start_ends_the_run_with_its_stderr(
    tmp_path: Path, mode: list[str]
) -> None:
    """A local worker that fails at start ends `horde run` non-zero, its stderr in the output."""
    script = tmp_path / "dies_in_worker.py"
    script.write_text(DIES_IN_WORKER)
    run = run_horde(
        [
            "run", "-f", str(script), *mode, "-H", f"http://127.0.0.1:{free_port()}",
            "-u", "1", "-t", "60s", "--workers", "1",
        ],
        tmp_path,
        DEATH_BOUND,
        mark="WORKER-STDERR-MARK",
    )  # fmt: skip
    assert run.code != 0, run.output[-4000:]
    assert run.after_mark is not None, run.output[-4000:]  # the worker's traceback is shown
    assert run.after_mark < AFTER_DEATH_BOUND, run.output[-4000:]


def kill_a_worker_mid_run(args: list[str], cwd: Path) -> Finished:
    """Run the installed ``horde ARGS`` in ``cwd``; once spawning is complete, SIGKILL its
    first local worker and wait for the command's end. ``after_mark`` is the seconds from
    the kill to the end."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(
            [str(VENV_BIN / "horde"), *args],
            cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + RUN_BOUND
            output = ""
            while "spawning complete" not in output and time.monotonic() < deadline:
                time.sleep(0.05)
                out.seek(0)
                output = out.read()
            assert "spawning complete" in output, output[-4000:]
            workers = psutil.Process(proc.pid).children()
            started = time.monotonic()
            workers[0].kill()
            code = proc.wait(timeout=RUN_BOUND)
            lasted = time.monotonic() - started
        finally:
            if proc.poll() is None:
                for child in psutil.Process(proc.pid).children(recursive=True):
                    child.kill()
                proc.kill()
                proc.wait(timeout=10)
        out.seek(0)
        return Finished(code, out.read(), lasted)


def test_a_worker_killed_during_the_test_is_a_lost_worker_not_the_end(tmp_path: Path) -> None:
    """A local worker SIGKILLed mid-test loses its users to the other; the run goes to its end."""
    with processes() as procs:
        target = start_target(procs)
        run = kill_a_worker_mid_run(
            [
                "run", "-f", str(SCRIPTS / "basic.py"), "--headless", "-H", target,
                "-u", "4", "-r", "10", "-t", "8s", "--workers", "2", "--no-web",
            ],
            tmp_path,
        )  # fmt: skip
    assert run.code == 0, run.output[-4000:]
    assert "a local worker exited during the test" in run.output, run.output[-4000:]
    assert run.after_mark is not None and run.after_mark > 4.0, run.output[-4000:]  # ran on
    assert "cut short" not in run.output, run.output[-4000:]


def test_a_run_that_loses_its_only_worker_ends_non_zero_saying_why(tmp_path: Path) -> None:
    """A run whose only local worker is SIGKILLed ends early, non-zero, and says it was cut
    short because every worker was lost."""
    with processes() as procs:
        target = start_target(procs)
        run = kill_a_worker_mid_run(
            [
                "run", "-f", str(SCRIPTS / "basic.py"), "--headless", "-H", target,
                "-u", "2", "-r", "10", "-t", "60s", "--workers", "1", "--no-web",
            ],
            tmp_path,
        )  # fmt: skip
    assert run.code != 0, run.output[-4000:]
    assert run.after_mark is not None and run.after_mark < AFTER_DEATH_BOUND, run.output[-4000:]
    assert "The run was cut short: every worker was lost" in run.output, run.output[-4000:]


POLICY_SCRIPT = '''\
"""A script whose workers print the scheduling policy they run under."""

import os
import sys

from horde import User, constant, task

if "worker" in sys.argv:
    print(f"WORKER-POLICY={os.sched_getscheduler(0)}", flush=True)


class Idle(User):
    wait_time = constant(1)

    @task
    def rest(self) -> None:
        pass
'''


def test_local_workers_run_under_the_normal_policy_not_the_masters_batch(tmp_path: Path) -> None:
    """`horde run`'s workers do not inherit the master's SCHED_BATCH (their link thread would
    starve for the GIL behind spinning users)."""
    script = tmp_path / "policy.py"
    script.write_text(POLICY_SCRIPT)
    run = run_horde(
        [
            "run", "-f", str(script), "--headless", "-u", "1", "-r", "10", "-t", "1s",
            "--workers", "1", "--no-web",
        ],
        tmp_path,
        RUN_BOUND,
    )  # fmt: skip
    assert run.code == 0, run.output[-4000:]
    assert f"WORKER-POLICY={os.SCHED_OTHER}" in run.output, run.output[-4000:]


def test_local_workers_end_when_horde_run_is_killed() -> None:
    """SIGKILL on `horde run` (no chance to tell its workers): they end within seconds
    instead of retrying to register forever."""
    with processes() as procs:
        run = procs.horde(
            "run", "-f", str(SCRIPTS / "basic.py"), "--workers", "1", "--web-port", "0"
        )
        start = time.monotonic()
        while time.monotonic() - start < 30:
            children = psutil.Process(run.pid).children()
            if children and "worker ready" in procs.output(run):  # registered: past its start
                break
            time.sleep(0.05)
        (worker,) = psutil.Process(run.pid).children()
        run.kill()
        gone, _ = psutil.wait_procs([worker], timeout=15)
        assert gone, "the local worker outlived its horde run"
