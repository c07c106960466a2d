"""What a Kubernetes Job needs from a headless run, with real processes on loopback: a start
barrier that fails with exit 3 and one clear line, workers that exit 0 when their master
ends the run and wait (alive, not ready) for a master gone for good, a SIGTERM that flushes
the outputs, the summary as one JSON log line, and nothing written but the outputs when
the working folder and HOME are read-only."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from horde.master.runtime import EXIT_COULD_NOT_START
from tests.support import SCRIPTS, Processes, free_port, processes, start_target, wait_for
from tests.test_health import answers
from tests.test_settings import parse

pytestmark = pytest.mark.timeout(120)

NOBODY = 65534
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm")


def master(procs: Processes, port: int, target: str, *extra: str) -> subprocess.Popen[str]:
    """A headless ``--no-web`` master of basic.py on ``port``."""
    return procs.horde(
        *("master", "-f", str(SCRIPTS / "basic.py"), "--headless", "--no-web", "-H", target),
        *("--bind", f"tcp://127.0.0.1:{port}", *extra),
    )


def worker(procs: Processes, port: int, *extra: str) -> subprocess.Popen[str]:
    """A worker of basic.py for the master on ``port``."""
    return procs.horde(
        "worker", "-f", str(SCRIPTS / "basic.py"), "--master", f"127.0.0.1:{port}", *extra
    )


def aggregated_requests(path: Path) -> int:
    """The ``Aggregated`` request count of a ``_stats.csv`` file (0 before it has one)."""
    if not path.exists():
        return 0
    rows = list(csv.DictReader(path.read_text().splitlines()))
    return next((int(r["Request Count"]) for r in rows if r["Name"] == "Aggregated"), 0)


def test_the_summary_line_comes_only_with_json_logs() -> None:
    """--log-format json asks the master for the summary log line; the console does not."""
    from horde.settings import master_settings

    base = ["master", "-f", "s.py", "--insecure"]
    assert master_settings(parse([*base, "--log-format", "json"])).log_summary
    assert not master_settings(parse(base)).log_summary


def test_a_barrier_that_times_out_exits_3_naming_who_came() -> None:
    """One worker of two, then SIGTERM or the end of --expect-workers-max-wait: exit 3
    with one line saying 1 of 2, and the worker that came is let go with exit 0."""
    port = free_port()
    with processes() as procs:
        target = start_target(procs)
        run = master(procs, port, target, "--expect-workers", "2")
        joined = worker(procs, port)
        wait_for(lambda: "worker ready" in procs.output(run), 30, "the first worker")
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=30) == EXIT_COULD_NOT_START
        assert "could not start: 1 of 2 expected workers connected before the interrupt" in (
            procs.output(run)
        )
        assert joined.wait(timeout=20) == 0
        timed = master(
            procs, port, target, "--expect-workers", "2", "--expect-workers-max-wait", "2"
        )
        again = worker(procs, port)
        assert timed.wait(timeout=60) == EXIT_COULD_NOT_START, procs.output(timed)
        lines = [line for line in procs.output(timed).splitlines() if "could not start" in line]
        assert len(lines) == 1
        assert "1 of 2 expected workers connected within --expect-workers-max-wait 2 s" in lines[0]
        assert again.wait(timeout=20) == 0


def test_sigterm_mid_run_flushes_the_outputs_and_logs_one_summary_line(tmp_path: Path) -> None:
    """A master SIGTERMed mid-run stops the test, writes its CSV and HTML files and logs
    the summary as one JSON line whose total is the CSV's, within seconds; its worker
    exits 0 promptly."""
    port, out = free_port(), tmp_path / "out"
    with processes() as procs:
        target = start_target(procs)
        run = master(
            procs, port, target, "-t", "60", "-u", "4", "-r", "4", "--log-format", "json",
            "--csv", str(out / "run"), "--html", str(out / "report.html"),
        )  # fmt: skip
        joined = worker(procs, port)
        wait_for(lambda: aggregated_requests(out / "run_stats.csv") > 20, 30, "requests")
        run.send_signal(signal.SIGTERM)
        began = time.monotonic()
        assert run.wait(timeout=30) == 0, procs.output(run)
        stopped = time.monotonic() - began
        assert joined.wait(timeout=10) == 0
        assert stopped < 10, stopped
        summaries = [
            json.loads(line)
            for line in procs.output(run).splitlines()
            if line.startswith("{") and json.loads(line).get("event") == "summary"
        ]
        assert len(summaries) == 1
        total = summaries[0]["total"]
        assert total["num_requests"] == aggregated_requests(out / "run_stats.csv") > 20
        (entry,) = summaries[0]["entries"]
        assert (entry["method"], entry["name"], entry["num_failures"]) == ("GET", "/fast", 0)
        assert "/fast" in (out / "report.html").read_text()


def test_a_worker_outlives_a_master_gone_for_good_alive_but_not_ready() -> None:
    """A worker whose master is killed keeps trying to register (a Job's
    activeDeadlineSeconds ends it): alive, no longer ready."""
    port, health = free_port(), free_port()
    with processes() as procs:
        target = start_target(procs)
        run = master(procs, port, target, "-t", "60")
        joined = worker(procs, port, "--health-port", str(health), "--health-host", "127.0.0.1")
        wait_for(lambda: answers(health, "/readyz", (200, "ok\n")), 30, "a registered worker")
        run.kill()
        run.wait(timeout=10)
        wait_for(lambda: answers(health, "/readyz", (503, "unregistered\n")), 30, "unready")
        assert answers(health, "/healthz", (200, "ok\n")) and joined.poll() is None


def test_outputs_go_to_their_folder_and_nothing_else_is_written(shared_dir: Path) -> None:
    """Master and worker run as a user that can write only the output folder and TMPDIR
    (cwd and HOME read-only): the run passes, the outputs are written, TMPDIR stays empty,
    and (as root, run as nobody) no file of that user appears in the world-writable places."""
    home, out, tmp = shared_dir / "home", shared_dir / "out", shared_dir / "tmp"
    for folder, mode in ((home, 0o555), (out, 0o777), (tmp, 0o777)):
        folder.mkdir()
        folder.chmod(mode)
    script = shared_dir / "basic.py"
    shutil.copy(SCRIPTS / "basic.py", script)
    script.chmod(0o644)
    user: list[str] = []
    if os.geteuid() == 0:
        user = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1"}
    port = free_port()
    marker = time.time()
    with processes() as procs:
        target = start_target(procs)
        horde = [*user, sys.executable, "-m", "horde"]
        common = {"env": env, "cwd": home, "stdin": subprocess.DEVNULL, "text": True}
        flags = ["--csv", str(out / "run"), "--html", str(out / "report.html")]
        run = subprocess.Popen(
            [*horde, "master", "-f", str(script), "--headless", "--no-web", "-t", "3", "-H", target,
             "--bind", f"tcp://127.0.0.1:{port}", "--log-format", "json", *flags],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **common,
        )  # fmt: skip
        procs.children.append(run)
        joined = subprocess.run(
            [*horde, "worker", "-f", str(script), "--master", f"127.0.0.1:{port}"],
            capture_output=True, timeout=60, check=False, **common,
        )  # fmt: skip
        output, _ = run.communicate(timeout=60)
        assert run.returncode == 0, output
        assert joined.returncode == 0, joined.stdout + joined.stderr
    written = sorted(p.name for p in out.iterdir())
    assert written == [
        "report.html", "run_exceptions.csv", "run_failures.csv", "run_stats.csv",
        "run_stats_corrected.csv", "run_stats_history.csv",
    ]  # fmt: skip
    assert aggregated_requests(out / "run_stats.csv") > 0
    assert list(home.iterdir()) == [] and list(tmp.iterdir()) == []
    if user:
        stray = subprocess.run(
            ["find", *WORLD_WRITABLE, "-xdev", "-user", str(NOBODY), "-newermt", f"@{marker}"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert [p for p in stray.stdout.split() if not p.startswith(str(shared_dir))] == []
