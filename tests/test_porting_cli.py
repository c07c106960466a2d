"""The command line a Locust user types: locust.conf / --config, --autostart and
--autoquit, --only-summary, --processes (for horde run, and for a worker)."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from horde.cli import apply_env, build_parser
from horde.configfile import apply_config, config_files, read_config
from horde.forked import child_argv, process_count
from horde.protocol.errors import ConfigError
from horde.settings import local_run, master_settings
from tests.fault_support import SCRIPTS, counting_target
from tests.support import free_port, get_json, processes, start_master, wait_for


def parse(
    argv: list[str], files: list[Path], env: dict[str, str] | None = None
) -> argparse.Namespace:
    """The namespace of ``argv`` with ``files`` read first, then ``env``."""
    parser = build_parser()
    apply_config(parser, files)
    apply_env(parser, env or {})
    return parser.parse_args(argv)


def test_a_locust_conf_sets_defaults_that_variables_and_flags_override(tmp_path: Path) -> None:
    """Keys as Locust spells them (dashes or underscores, true/false, lists); then HORDE_*
    variables, then flags win; Locust's mode keys are ignored."""
    conf = tmp_path / "locust.conf"
    conf.write_text(
        "# a Locust config\nlocustfile = s.py\nheadless = true\nusers = 30\n"
        "spawn-rate = 5\nrun_time = 1m\ntags = [a, b]\nmaster = true\nexpect-workers = 2\n"
    )
    args = parse(["master", "--insecure", "-u", "40"], [conf], {"HORDE_SPAWN_RATE": "7"})
    settings = master_settings(args)
    assert (settings.users, settings.spawn_rate, settings.run_time) == (40, 7.0, 60.0)
    assert settings.headless and settings.tags == ("a", "b") and settings.expect_workers == 2
    assert settings.locustfile == "s.py"


def test_bad_config_files_name_the_file_line_and_key(tmp_path: Path) -> None:
    """An unknown key, a line without '=', a bad boolean: errors naming file and line."""
    conf = tmp_path / "locust.conf"
    conf.write_text("users = 3\nno-such-setting = 1\n")
    with pytest.raises(ConfigError, match=r"locust.conf:2: 'no_such_setting' is not a horde"):
        parse(["master"], [conf])
    conf.write_text("users 3\n")
    with pytest.raises(ConfigError, match=r"locust.conf:1: expected 'key = value'"):
        read_config(conf)
    conf.write_text("headless = maybe\n")
    with pytest.raises(ConfigError, match="takes true or false"):
        parse(["master"], [conf])


def test_config_files_are_the_present_defaults_then_the_named_one(tmp_path: Path) -> None:
    """./locust.conf and ./horde.conf when present, then HORDE_CONFIG, then --config."""
    (tmp_path / "horde.conf").write_text("users = 1\n")
    named = tmp_path / "other.conf"
    found = config_files(["run", "--config", str(named)], tmp_path, "env.conf")
    assert found[-3:] == [tmp_path / "horde.conf", Path("env.conf"), named]
    assert tmp_path / "locust.conf" not in found


def test_processes_is_locusts_name_for_local_workers() -> None:
    """`horde run --processes 3` starts three local workers."""
    assert local_run(parse(["run", "-f", "s.py", "--processes", "3"], [])).workers == 3


def test_a_workers_processes_are_its_own_command_less_the_count() -> None:
    """Each child gets the command's arguments without --processes, plus --parent-pid;
    -1 is one per CPU core and other counts below 1 are refused."""
    argv = ["worker", "--processes", "3", "--master", "m:5557", "--processes=2", "-f", "x.py"]
    assert child_argv(argv, 42) == [
        "worker",
        "--master",
        "m:5557",
        "-f",
        "x.py",
        "--parent-pid",
        "42",
    ]
    assert process_count(3) == 3 and process_count(-1) >= 1
    with pytest.raises(ConfigError, match="--processes"):
        process_count(0)


@pytest.mark.process
@pytest.mark.timeout(90)
def test_a_worker_with_processes_joins_as_that_many_workers_and_waits_for_them() -> None:
    """`horde worker --processes 2` joins the master as two workers; SIGTERM to the command
    ends both, and it exits with their exit code (0), as Locust's parent does."""
    with processes() as procs:
        master = start_master(procs, "basic.py")
        address = f"127.0.0.1:{master.zmq_port}"
        fleet = procs.horde("worker", "--master", address, "--processes", "2")

        def workers() -> int:
            return int(get_json(f"{master.web}/stats/requests")["worker_count"])

        wait_for(lambda: workers() == 2, 30, "two workers registered")
        fleet.send_signal(signal.SIGTERM)
        assert fleet.wait(timeout=30) == 0
        wait_for(lambda: workers() == 0, 30, "both workers gone")


@pytest.mark.process
@pytest.mark.timeout(90)
def test_autostart_runs_at_once_with_the_web_ui_and_autoquit_exits(tmp_path: Path) -> None:
    """--autostart starts the test while the web API serves it; --autoquit exits after it,
    0; a locust.conf in the working folder supplies the settings."""
    (tmp_path / "locust.conf").write_text(
        f"locustfile = {SCRIPTS / 'basic.py'}\nusers = 2\nspawn-rate = 10\nrun-time = 3s\n"
    )
    port = free_port()
    log = tmp_path / "run.log"
    with counting_target() as target, log.open("w") as out:
        command = [sys.executable, "-m", "horde", "run", "--autostart", "--autoquit", "1"]
        command += ["--workers", "1", "--web-port", str(port), "-H", target.url]
        run = subprocess.Popen(command, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(
                lambda: get_json(f"http://127.0.0.1:{port}/stats/requests")["user_count"] == 2,
                30,
                "the autostarted test running",
            )
            assert run.wait(timeout=30) == 0
        finally:
            if run.poll() is None:
                run.kill()
                run.wait(timeout=10)
        assert target.total() > 0
    assert "--autoquit: exiting soon" in log.read_text()


@pytest.mark.process
@pytest.mark.timeout(90)
def test_only_summary_prints_the_tables_once() -> None:
    """--only-summary: the final summary only; without it, periodic tables too."""
    with counting_target() as target:
        counts = []
        for extra in (["--only-summary"], []):
            command = [sys.executable, "-m", "horde", "run", "-f", str(SCRIPTS / "basic.py")]
            command += ["--headless", "-u", "2", "-r", "10", "-t", "3s", "--workers", "1"]
            command += ["--web-port", "0", "--print-stats", "0.5", "-H", target.url, *extra]
            done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
            assert done.returncode == 0, done.stderr[-2000:]
            counts.append(done.stdout.count("Aggregated"))
    assert counts[0] == 2 and counts[1] > 2  # the summary's two tables, or more
