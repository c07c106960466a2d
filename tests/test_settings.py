"""One source of settings: flags and HORDE_* variables become the same frozen settings the
code's defaults describe, and a child worker's argv builds its settings again (no processes)."""

from __future__ import annotations

import argparse
import ast
import os
from dataclasses import replace
from pathlib import Path

import pytest

from horde.cli import apply_env, build_parser, env_name
from horde.local import WorkerExit, first_failure
from horde.logsetup import LogSettings
from horde.master.config import MasterSettings
from horde.protocol.errors import ConfigError
from horde.settings import (
    DEFAULT_LOCAL_WORKERS,
    DEMO_SCRIPT,
    LOCAL_BIND,
    demo_run,
    health_settings,
    local_run,
    log_settings,
    master_settings,
    worker_settings,
)
from horde.worker.config import WorkerSettings

ROOT = Path(__file__).resolve().parent.parent


def parse(argv: list[str], environ: dict[str, str] | None = None) -> argparse.Namespace:
    """Parse ``argv`` as the ``horde`` command does, with ``environ`` as the environment."""
    parser = build_parser()
    apply_env(parser, environ or {})
    return parser.parse_args(argv)


def subparsers() -> dict[str, argparse.ArgumentParser]:
    """Each subcommand's parser, by name."""
    (action,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_every_flag_names_its_environment_variable_in_help() -> None:
    """Each subcommand's --help names, for every flag, the HORDE_* variable that sets it."""
    base = {"HORDE_LOCUSTFILE": "s.py"}
    for name, parser in subparsers().items():
        text = parser.format_help()
        argv = [name, "keys"] if name == "keygen" else [name]  # keygen's DIR is required
        before = parse(argv, base)
        for action in parser._actions:
            if not action.option_strings or action.dest == "help":
                continue
            variable = env_name(action)
            assert variable in text, (name, action.dest)
            value = "7" if action.type in (int, float) else "x"
            if isinstance(action, argparse._StoreTrueAction):
                value = "1"
            elif action.choices:
                value = next(c for c in action.choices if c != action.default)
            after = parse(argv, {**base, variable: value})
            assert getattr(after, action.dest) != getattr(before, action.dest), variable


def test_flag_defaults_are_the_settings_defaults() -> None:
    """With no flags and no variables, each command builds exactly the settings' defaults."""
    master = master_settings(parse(["master", "-f", "dir/s.py", "--insecure"]))
    assert master == MasterSettings(locustfile="s.py", insecure=True)
    args = parse(["worker"])
    worker = worker_settings(args)
    assert worker == WorkerSettings(node_id=worker.node_id)
    assert log_settings(args) == LogSettings()
    run = local_run(parse(["run", "-f", "s.py"]))
    expected = MasterSettings(
        bind=LOCAL_BIND, expect_workers=DEFAULT_LOCAL_WORKERS, locustfile="s.py"
    )
    assert run.master == expected
    local = WorkerSettings(script="s.py", node_id=run.worker.node_id, parent_pid=os.getpid())
    assert run.worker == local
    assert run.workers == DEFAULT_LOCAL_WORKERS


def test_environment_variables_reach_the_settings() -> None:
    """HORDE_* variables end up in the frozen settings, converted; flags still win."""
    env = {"HORDE_SPAWN_RATE": "2.5", "HORDE_TAGS": "a,b", "HORDE_WEB_BASE_PATH": "/h/"}
    master = master_settings(parse(["master", "-f", "s.py", "-r", "4", "--insecure"], env))
    assert (master.spawn_rate, master.tags, master.web_base_path) == (4.0, ("a", "b"), "/h")
    worker = worker_settings(parse(["worker"], {"HORDE_MASTER": "[::1]:6000"}))
    assert (worker.master_host, worker.master_port) == ("::1", 6000)


@pytest.mark.parametrize(
    "settings",
    [
        WorkerSettings(),
        WorkerSettings(
            master_host="::1",
            master_port=6001,
            script="dir/my script.py",
            heartbeat_interval=0.1,
            stats_interval=1 / 3,
            max_names=17,
            tags=("a", "b c"),
            exclude_tags=("x",),
            parent_pid=4242,
        ),
    ],
    ids=["defaults", "every-flag"],
)
def test_worker_settings_survive_their_argv(settings: WorkerSettings) -> None:
    """A child started with to_argv() builds the same settings, whatever HORDE_* it inherits."""
    inherited = {"HORDE_TAGS": "other", "HORDE_STATS_INTERVAL": "9", "HORDE_MASTER": "h:1"}
    inherited |= {"HORDE_SECRET_KEY": "/no/such.key_secret", "HORDE_MASTER_KEY": "/no/such.key"}
    inherited |= {"HORDE_HEALTH_PORT": "9999"}  # a remote worker's: local ones serve none
    logs = LogSettings(level="DEBUG", format="json")
    args = parse(["worker", *settings.to_argv(), *logs.to_argv()], inherited)
    rebuilt = worker_settings(args)
    assert not health_settings(args).enabled
    assert rebuilt == replace(settings, node_id=rebuilt.node_id)
    assert rebuilt.node_id != settings.node_id  # each process is its own worker
    assert log_settings(args) == logs


def test_local_workers_share_the_masters_heartbeat_names_and_tags() -> None:
    """`horde run` starts workers with its own heartbeat interval, name cap, tags and script."""
    flags = ["--heartbeat-interval", "2", "--max-names", "5", "-T", "a", "-E", "b"]
    run = local_run(parse(["run", "-f", "s.py", *flags, "--workers", "3"]))
    expected = WorkerSettings(
        script="s.py", heartbeat_interval=2.0, max_names=5, tags=("a",), exclude_tags=("b",),
        parent_pid=os.getpid(),  # local workers end with horde run
    )  # fmt: skip
    assert run.worker == replace(expected, node_id=run.worker.node_id)
    assert (run.workers, run.master.expect_workers, run.script) == (3, 3, "s.py")


def test_demo_builds_a_headless_loopback_run_that_never_fails_on_errors() -> None:
    """`horde demo` gets its fixed master settings from its flags, not a rewritten namespace."""
    run = demo_run(parse(["demo", "-u", "5", "-t", "4s"]))
    expected = MasterSettings(
        bind=LOCAL_BIND,
        web_port=0,
        headless=True,
        users=5,
        spawn_rate=10.0,
        run_time=4.0,
        expect_workers=2,
        exit_code_on_error=0,
    )
    assert run.master == expected
    assert run.worker == WorkerSettings(
        script=str(DEMO_SCRIPT), node_id=run.worker.node_id, parent_pid=os.getpid()
    )
    assert DEMO_SCRIPT.is_file()


@pytest.mark.parametrize("command", ["run", "demo"])
def test_local_runs_need_a_worker(command: str) -> None:
    """--workers 0 is refused with a message naming the flag."""
    script = ["-f", "s.py"] if command == "run" else []
    builder = local_run if command == "run" else demo_run
    with pytest.raises(ConfigError, match="--workers must be at least 1"):
        builder(parse([command, *script, "--workers", "0"]))


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ([(1, None), (2, None)], None),
        ([(1, 0), (2, None)], None),
        ([(1, None), (2, 2), (3, 1)], WorkerExit(2, 2)),
        ([(1, -9)], WorkerExit(1, -9)),
    ],
)
def test_a_local_worker_fails_when_it_exits_non_zero(
    codes: list[tuple[int, int | None]], expected: WorkerExit | None
) -> None:
    """Running workers and those the master let go (exit 0) are fine; any other exit is not."""
    assert first_failure(codes) == expected


def reads_environment(source: str) -> bool:
    """Whether Python ``source`` touches ``os.environ`` or ``os.getenv`` (docstrings aside)."""
    names = {"environ", "environb", "getenv", "getenvb"}
    for node in ast.walk(ast.parse(source)):
        touches = (
            isinstance(node, ast.Attribute)
            and node.attr in names
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ) or (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and bool(names & {alias.name for alias in node.names})
        )
        if touches:
            return True
    return False


def test_nothing_below_the_entry_point_reads_the_environment() -> None:
    """Only horde/cli.py reads os.environ or os.getenv; the rest gets frozen settings."""
    assert reads_environment("import os\nos.environ.get('X')")
    assert reads_environment("from os import path, getenv")
    assert not reads_environment('"""reads ``os.environ``"""\nfrom os import path')
    readers = [
        str(path.relative_to(ROOT))
        for folder in ("horde", "master", "worker", "protocol")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if reads_environment(path.read_text(encoding="utf-8"))
    ]
    assert readers == ["horde/cli.py"]
