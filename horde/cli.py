"""The ``horde`` command: ``run``, ``master``, ``worker``, ``demo`` and ``target``.

The only place that reads ``os.environ`` and monkey-patches: it parses flags (each flag
can also come from a ``HORDE_*`` environment variable, e.g. ``HORDE_USERS=50``, and its
``--help`` line names it), configures logging, and hands the namespace to
``horde.commands``, which turns it into frozen settings (``horde.settings``) at once.
Every default shown here is a named constant of the settings it ends up in.

Imports: everything (it is the entry point).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from horde import logsetup
from horde import settings as cmd
from horde.master import config as master
from horde.protocol.counters import DEFAULT_MAX_NAMES, OVERFLOW_NAME
from horde.protocol.errors import HordeError
from horde.worker import config as worker

__all__ = ["build_parser", "main"]

EPILOG = """\
examples:
  horde run -f locustfile.py --headless -u 100 -r 10 -t 1m -H http://127.0.0.1:8080
  horde master -f locustfile.py --bind tcp://*:5557 --web-port 8089
  horde worker -f locustfile.py --master 10.0.0.5:5557
  horde demo

Every flag can also be set with an environment variable: HORDE_ and the flag's name in
capitals with dashes as underscores (HORDE_USERS=100, HORDE_MASTER=10.0.0.5:5557).
"""


Option = tuple[tuple[str, ...], dict[str, Any]]

LOGGING: list[Option] = [
    (
        ("--log-level",),
        {
            "default": logsetup.DEFAULT_LEVEL,
            "choices": list(logsetup.LEVELS),
            "help": f"log level (default {logsetup.DEFAULT_LEVEL})",
        },
    ),
    (
        ("--log-format",),
        {
            "default": logsetup.DEFAULT_FORMAT,
            "choices": list(logsetup.FORMATS),
            "help": f"readable console lines or JSON lines (default {logsetup.DEFAULT_FORMAT})",
        },
    ),
]

TAGS: list[Option] = [
    (("-T", "--tags"), {"nargs": "*", "default": [], "help": "run only tasks with these tags"}),
    (("-E", "--exclude-tags"), {"nargs": "*", "default": [], "help": "skip tasks with these tags"}),
]

WEB: list[Option] = [
    (
        ("--web-base-path",),
        {
            "default": "",
            "metavar": "PATH",
            "help": "serve every web route under this prefix, e.g. /horde (behind a proxy)",
        },
    ),
    (
        ("--web-auth",),
        {
            "default": None,
            "metavar": "USER:PASSWORD",
            "help": "require HTTP Basic auth on every web route (better from the environment,"
            " which ps does not show)",
        },
    ),
    (
        ("--web-auth-token",),
        {
            "default": None,
            "metavar": "TOKEN",
            "help": "accept 'Authorization: Bearer TOKEN' on every web route",
        },
    ),
    (("--tls-cert",), {"default": None, "metavar": "FILE", "help": "serve HTTPS: certificate"}),
    (("--tls-key",), {"default": None, "metavar": "FILE", "help": "serve HTTPS: private key"}),
    (
        ("--max-users",),
        {
            "type": int,
            "default": master.DEFAULT_MAX_USERS,
            "help": f"refuse a /swarm above this many users (default {master.DEFAULT_MAX_USERS})",
        },
    ),
]

OUTPUTS: list[Option] = [
    (
        ("--csv",),
        {
            "dest": "csv_prefix",
            "default": None,
            "metavar": "PREFIX",
            "help": "write PREFIX_stats.csv, _failures.csv, _exceptions.csv every second",
        },
    ),
    (
        ("--csv-full-history",),
        {"action": "store_true", "help": "also append every interval to PREFIX_stats_history.csv"},
    ),
    (
        ("--html",),
        {"default": None, "metavar": "FILE", "help": "write the HTML report here at the end"},
    ),
    (
        ("--json",),
        {
            "action": "store_true",
            "help": "print the final stats as JSON on stdout (tables go to stderr)",
        },
    ),
    (
        ("--shape",),
        {
            "default": None,
            "metavar": "CLASS",
            "help": "run this LoadTestShape class of the script (headless)",
        },
    ),
]

MAX_NAMES: list[Option] = [
    (
        ("--max-names",),
        {
            "type": int,
            "default": DEFAULT_MAX_NAMES,
            "metavar": "N",
            "help": "distinct request names kept; requests under later names count as"
            f" {OVERFLOW_NAME!r}, with a warning (default {DEFAULT_MAX_NAMES})",
        },
    ),
]

TEST: list[Option] = [
    (
        ("-f", "--locustfile"),
        {
            "required": True,
            "metavar": "FILE",
            "help": "the user script (Python file defining User classes)",
        },
    ),
    (
        ("-u", "--users"),
        {
            "type": int,
            "default": None,
            "help": f"peak number of users (headless; default {master.DEFAULT_HEADLESS_USERS})",
        },
    ),
    (
        ("-r", "--spawn-rate"),
        {
            "type": float,
            "default": master.DEFAULT_SPAWN_RATE,
            "help": f"users started per second (default {master.DEFAULT_SPAWN_RATE:g})",
        },
    ),
    (
        ("-t", "--run-time"),
        {"default": None, "help": "stop after this long: 30, 30s, 5m, 1h20m (default: never)"},
    ),
    (("-H", "--host"), {"default": "", "help": "base URL of the system under test"}),
    (
        ("--headless",),
        {
            "action": "store_true",
            "help": "start at once, print stats, stop at --run-time; no swarm needed",
        },
    ),
    (
        ("--web-host",),
        {
            "default": master.DEFAULT_WEB_HOST,
            "help": f"interface for the web API (default {master.DEFAULT_WEB_HOST};"
            " 0.0.0.0 for all)",
        },
    ),
    (
        ("--web-port",),
        {
            "type": int,
            "default": master.DEFAULT_WEB_PORT,
            "help": f"web API port (default {master.DEFAULT_WEB_PORT})",
        },
    ),
    (("--no-web",), {"action": "store_true", "help": "do not serve the web API"}),
    *WEB,
    *OUTPUTS,
    *MAX_NAMES,
    (
        ("--stop-timeout",),
        {
            "type": float,
            "default": None,
            "help": "seconds users get to finish their task when stopping",
        },
    ),
    (
        ("--print-stats",),
        {
            "type": float,
            "default": master.DEFAULT_PRINT_STATS,
            "metavar": "SECONDS",
            "help": "headless: print the stats table this often"
            f" (default {master.DEFAULT_PRINT_STATS:g})",
        },
    ),
    (
        ("--exit-code-on-error",),
        {
            "type": int,
            "default": master.DEFAULT_EXIT_CODE_ON_ERROR,
            "help": "exit code when any request failed"
            f" (default {master.DEFAULT_EXIT_CODE_ON_ERROR})",
        },
    ),
    *TAGS,
    (
        ("--heartbeat-interval",),
        {
            "type": float,
            "default": master.DEFAULT_HEARTBEAT_INTERVAL,
            "help": "seconds between worker heartbeats"
            f" (default {master.DEFAULT_HEARTBEAT_INTERVAL:g})",
        },
    ),
    (
        ("--heartbeat-liveness",),
        {
            "type": int,
            "default": master.DEFAULT_HEARTBEAT_LIVENESS,
            "help": "missed intervals before a worker is missing"
            f" (default {master.DEFAULT_HEARTBEAT_LIVENESS})",
        },
    ),
]

RUN: list[Option] = [
    *TEST,
    (
        ("--workers",),
        {
            "type": int,
            "default": cmd.DEFAULT_LOCAL_WORKERS,
            "help": "local worker processes (default: one per CPU core)",
        },
    ),
]

MASTER: list[Option] = [
    *TEST,
    (
        ("--bind",),
        {
            "default": master.DEFAULT_BIND,
            "help": f"ZeroMQ endpoint workers connect to (default {master.DEFAULT_BIND})",
        },
    ),
    (
        ("--expect-workers",),
        {
            "type": int,
            "default": master.DEFAULT_EXPECT_WORKERS,
            "help": "headless: wait for this many workers first"
            f" (default {master.DEFAULT_EXPECT_WORKERS})",
        },
    ),
    (
        ("--expect-workers-max-wait",),
        {
            "type": float,
            "default": None,
            "help": "headless: stop waiting for workers after this long",
        },
    ),
]

WORKER: list[Option] = [
    (
        ("-f", "--locustfile"),
        {
            "default": None,
            "metavar": "FILE",
            "help": "the user script; without it, the master's script is used",
        },
    ),
    (
        ("--master",),
        {
            "default": worker.DEFAULT_MASTER,
            "metavar": "HOST[:PORT]",
            "help": f"the master's address (default {worker.DEFAULT_MASTER})",
        },
    ),
    (
        ("--heartbeat-interval",),
        {
            "type": float,
            "default": worker.DEFAULT_HEARTBEAT_INTERVAL,
            "help": f"seconds between heartbeats (default {worker.DEFAULT_HEARTBEAT_INTERVAL:g})",
        },
    ),
    (
        ("--stats-interval",),
        {
            "type": float,
            "default": worker.DEFAULT_STATS_INTERVAL,
            "help": f"seconds between stats reports (default {worker.DEFAULT_STATS_INTERVAL:g})",
        },
    ),
    *MAX_NAMES,
    *TAGS,
]

DEMO: list[Option] = [
    (
        ("-u", "--users"),
        {"type": int, "default": cmd.DEMO_USERS, "help": f"users (default {cmd.DEMO_USERS})"},
    ),
    (
        ("-r", "--spawn-rate"),
        {
            "type": float,
            "default": cmd.DEMO_SPAWN_RATE,
            "help": f"users per second (default {cmd.DEMO_SPAWN_RATE:g})",
        },
    ),
    (
        ("-t", "--run-time"),
        {"default": cmd.DEMO_RUN_TIME, "help": f"duration (default {cmd.DEMO_RUN_TIME})"},
    ),
    (
        ("--workers",),
        {
            "type": int,
            "default": cmd.DEMO_WORKERS,
            "help": f"worker processes (default {cmd.DEMO_WORKERS})",
        },
    ),
    (
        ("--print-stats",),
        {
            "type": float,
            "default": master.DEFAULT_PRINT_STATS,
            "metavar": "SECONDS",
            "help": f"print the stats table this often (default {master.DEFAULT_PRINT_STATS:g})",
        },
    ),
]

TARGET: list[Option] = [
    (
        ("--host",),
        {"default": cmd.TARGET_HOST, "help": f"interface (default {cmd.TARGET_HOST})"},
    ),
    (
        ("--port",),
        {
            "type": int,
            "default": cmd.TARGET_PORT,
            "help": f"port, 0 for any (default {cmd.TARGET_PORT})",
        },
    ),
]

#: Each subcommand: (name, one-line help, description, its options).
COMMANDS: list[tuple[str, str, str, list[Option]]] = [
    (
        "run",
        "a master plus local worker processes, on this machine",
        "Start a master bound to loopback and N local workers.",
        RUN,
    ),
    (
        "master",
        "the master alone; workers connect to it",
        "Start a master that remote workers join.",
        MASTER,
    ),
    ("worker", "a worker that joins a master", "Run users for a master (horde or Locust).", WORKER),
    (
        "demo",
        "a short distributed test against a built-in target",
        "Start the demo target on loopback and load it.",
        DEMO,
    ),
    (
        "target",
        "serve the demo target only (for trying things out)",
        "Serve horde's demo target until interrupted.",
        TARGET,
    ),
]


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; each flag's help names its environment variable."""
    from horde import __version__

    parser = argparse.ArgumentParser(
        prog="horde",
        description="horde: a distributed load generator that speaks Locust's protocol.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"horde {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, summary, description, options in COMMANDS:
        command = sub.add_parser(name, help=summary, description=description)
        for flags, kwargs in [*options, *LOGGING]:
            action = command.add_argument(*flags, **kwargs)
            action.help = f"{action.help} [env {env_name(action)}]"
    return parser


def env_name(action: argparse.Action) -> str:
    """The ``HORDE_*`` variable that sets a flag's default: ``--spawn-rate`` -> HORDE_SPAWN_RATE."""
    return f"HORDE_{action.dest.upper()}"


def apply_env(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Let ``HORDE_<FLAG>`` variables set the defaults of every subcommand's flags."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                apply_env(subparser, environ)
            continue
        if not action.option_strings or action.dest in ("help", "version"):
            continue
        value = environ.get(env_name(action))
        if value is None:
            continue
        if isinstance(action, argparse._StoreTrueAction):
            action.default = value.strip().lower() in ("1", "true", "yes", "on")
        elif action.nargs == "*":
            action.default = value.split(",") if value else []
        else:
            convert = action.type if callable(action.type) else str
            try:
                action.default = convert(value)
            except ValueError:
                parser.error(
                    f"{env_name(action)}={value!r} is not valid for {action.option_strings[-1]}"
                )
        action.required = False


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    from gevent import monkey

    monkey.patch_all()  # before anything imports socket, ssl or threading users
    parser = build_parser()
    apply_env(parser, os.environ)
    args = parser.parse_args(argv)
    from horde import commands

    logs = cmd.log_settings(args)
    logsetup.configure(logs, args.command)
    try:
        return commands.dispatch(args, logs)
    except HordeError as exc:
        print(f"horde: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
