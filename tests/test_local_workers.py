"""`horde run`'s local workers: the installed horde whatever the current folder holds, and
a worker that dies at start ends the run promptly, with its standard error shown."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import psutil
import pytest

from tests.support import SCRIPTS, VENV_BIN, free_port, processes, start_target

pytestmark = pytest.mark.process

#: Bounds on the whole command, generous for a loaded CI machine: the short run needs
#: about 5 s, and the failing one about 2 s (the worker's start-up, then at most 2 s).
RUN_BOUND = 40.0
DEATH_BOUND = 20.0

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


def run_horde(args: list[str], cwd: Path, timeout: float) -> tuple[int, str]:
    """Run the installed ``horde`` command in ``cwd``; return (exit code, output).

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
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
            proc.kill()
            proc.wait(timeout=10)
            out.seek(0)
            pytest.fail(f"horde {args[0]} still running after {timeout} s:\n{out.read()[-4000:]}")
        out.seek(0)
        return code, out.read()


def test_run_in_a_folder_holding_a_horde_package_uses_the_installed_horde(
    tmp_path: Path,
) -> None:
    """`horde run` in a folder with its own `horde/` package completes a short headless run."""
    bogus = tmp_path / "horde"
    bogus.mkdir()
    (bogus / "__init__.py").write_text('raise ImportError("the horde/ in the current folder")\n')
    with processes() as procs:
        target = start_target(procs)
        code, output = run_horde(
            [
                "run", "-f", str(SCRIPTS / "basic.py"), "--headless", "-H", target,
                "-u", "1", "-r", "10", "-t", "2s", "--workers", "1", "--no-web",
            ],
            tmp_path,
            RUN_BOUND,
        )  # fmt: skip
    assert code == 0, output[-4000:]
    assert "the horde/ in the current folder" not in output
    assert "Aggregated" in output


@pytest.mark.parametrize("mode", [["--headless"], ["--web-port", "0"]], ids=["headless", "web"])
def test_a_worker_that_dies_at_start_ends_the_run_with_its_stderr(
    tmp_path: Path, mode: list[str]
) -> None:
    """A local worker that fails at start ends `horde run` non-zero, its stderr in the output."""
    script = tmp_path / "dies_in_worker.py"
    script.write_text(DIES_IN_WORKER)
    code, output = run_horde(
        [
            "run", "-f", str(script), *mode, "-H", f"http://127.0.0.1:{free_port()}",
            "-u", "1", "-t", "60s", "--workers", "1",
        ],
        tmp_path,
        DEATH_BOUND,
    )  # fmt: skip
    assert code != 0, output[-4000:]
    assert "WORKER-STDERR-MARK" in output
