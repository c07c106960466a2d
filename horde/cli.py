"""The ``horde`` command: ``run``, ``master``, ``worker``, ``demo`` and ``target``.

The only place that reads ``os.environ`` and monkey-patches: it parses flags (each flag
can also come from a ``HORDE_*`` environment variable, e.g. ``HORDE_USERS=50``), builds
one frozen settings object, configures logging, and hands over to the master or worker
runtime.

Imports: everything (it is the entry point).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from horde.protocol.counters import DEFAULT_MAX_NAMES, OVERFLOW_NAME
from horde.protocol.errors import HordeError

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
            "default": "INFO",
            "choices": ["DEBUG", "INFO", "WARNING", "ERROR"],
            "help": "log level (default INFO)",
        },
    ),
    (
        ("--log-format",),
        {
            "default": "console",
            "choices": ["console", "json"],
            "help": "readable console lines or JSON lines (default console)",
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
            "help": "require HTTP Basic auth on every web route (better: HORDE_WEB_AUTH)",
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
            "default": 1_000_000,
            "help": "refuse a /swarm above this many users (default 1000000)",
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
        {"type": int, "default": None, "help": "peak number of users (headless; default 1)"},
    ),
    (
        ("-r", "--spawn-rate"),
        {"type": float, "default": 1.0, "help": "users started per second (default 1)"},
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
            "default": "127.0.0.1",
            "help": "interface for the web API (default 127.0.0.1; 0.0.0.0 for all)",
        },
    ),
    (("--web-port",), {"type": int, "default": 8089, "help": "web API port (default 8089)"}),
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
            "default": 3.0,
            "metavar": "SECONDS",
            "help": "headless: print the stats table this often (default 3)",
        },
    ),
    (
        ("--exit-code-on-error",),
        {"type": int, "default": 1, "help": "exit code when any request failed (default 1)"},
    ),
    *TAGS,
    (
        ("--heartbeat-interval",),
        {"type": float, "default": 1.0, "help": "seconds between worker heartbeats (default 1)"},
    ),
    (
        ("--heartbeat-liveness",),
        {
            "type": int,
            "default": 3,
            "help": "missed intervals before a worker is missing (default 3)",
        },
    ),
]

RUN: list[Option] = [
    *TEST,
    (
        ("--workers",),
        {
            "type": int,
            "default": os.cpu_count() or 1,
            "help": "local worker processes (default: one per CPU core)",
        },
    ),
]

MASTER: list[Option] = [
    *TEST,
    (
        ("--bind",),
        {
            "default": "tcp://*:5557",
            "help": "ZeroMQ endpoint workers connect to (default tcp://*:5557)",
        },
    ),
    (
        ("--expect-workers",),
        {
            "type": int,
            "default": 1,
            "help": "headless: wait for this many workers first (default 1)",
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
            "default": "127.0.0.1:5557",
            "metavar": "HOST[:PORT]",
            "help": "the master's address (default 127.0.0.1:5557)",
        },
    ),
    (
        ("--heartbeat-interval",),
        {"type": float, "default": 1.0, "help": "seconds between heartbeats (default 1)"},
    ),
    (
        ("--stats-interval",),
        {"type": float, "default": 3.0, "help": "seconds between stats reports (default 3)"},
    ),
    *MAX_NAMES,
    *TAGS,
]

DEMO: list[Option] = [
    (("-u", "--users"), {"type": int, "default": 20, "help": "users (default 20)"}),
    (
        ("-r", "--spawn-rate"),
        {"type": float, "default": 10.0, "help": "users per second (default 10)"},
    ),
    (("-t", "--run-time"), {"default": "15s", "help": "duration (default 15s)"}),
    (("--workers",), {"type": int, "default": 2, "help": "worker processes (default 2)"}),
    (
        ("--print-stats",),
        {
            "type": float,
            "default": 3.0,
            "metavar": "SECONDS",
            "help": "print the stats table this often (default 3)",
        },
    ),
]

TARGET: list[Option] = [
    (("--host",), {"default": "127.0.0.1", "help": "interface (default 127.0.0.1)"}),
    (("--port",), {"type": int, "default": 8080, "help": "port, 0 for any (default 8080)"}),
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
    """The whole command line."""
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
            command.add_argument(*flags, **kwargs)
    return parser


def apply_env(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Let ``HORDE_<FLAG>`` variables set the defaults of every subcommand's flags."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                apply_env(subparser, environ)
            continue
        if not action.option_strings or action.dest in ("help", "version"):
            continue
        value = environ.get(f"HORDE_{action.dest.upper()}")
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
                    f"HORDE_{action.dest.upper()}={value!r} is not valid for "
                    f"{action.option_strings[-1]}"
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
    from horde.logsetup import configure

    configure(args.log_level, args.log_format, args.command)
    try:
        return commands.dispatch(args)
    except HordeError as exc:
        print(f"horde: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
