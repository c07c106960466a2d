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


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level (default INFO)",
    )
    parser.add_argument(
        "--log-format",
        default="console",
        choices=["console", "json"],
        help="readable console lines or JSON lines (default console)",
    )


def _test_options(parser: argparse.ArgumentParser, *, script_required: bool) -> None:
    parser.add_argument(
        "-f",
        "--locustfile",
        required=script_required,
        metavar="FILE",
        help="the user script (Python file defining User classes)",
    )
    parser.add_argument(
        "-u", "--users", type=int, default=None, help="peak number of users (headless; default 1)"
    )
    parser.add_argument(
        "-r", "--spawn-rate", type=float, default=1.0, help="users started per second (default 1)"
    )
    parser.add_argument(
        "-t",
        "--run-time",
        default=None,
        help="stop after this long: 30, 30s, 5m, 1h20m (default: run until stopped)",
    )
    parser.add_argument("-H", "--host", default="", help="base URL of the system under test")
    parser.add_argument(
        "--headless",
        action="store_true",
        help="start at once, print stats, stop at --run-time; no swarm needed",
    )
    parser.add_argument(
        "--web-host",
        default="127.0.0.1",
        help="interface for the web API (default 127.0.0.1; 0.0.0.0 for all)",
    )
    parser.add_argument("--web-port", type=int, default=8089, help="web API port (default 8089)")
    parser.add_argument("--no-web", action="store_true", help="do not serve the web API")
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=None,
        help="seconds users get to finish their task when stopping",
    )
    parser.add_argument(
        "--print-stats",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="headless: print the stats table this often (default 3)",
    )
    parser.add_argument(
        "--exit-code-on-error",
        type=int,
        default=1,
        help="exit code when any request failed (default 1)",
    )
    parser.add_argument(
        "-T",
        "--tags",
        nargs="*",
        default=[],
        help="run only tasks with these tags (sent to every worker)",
    )
    parser.add_argument(
        "-E",
        "--exclude-tags",
        nargs="*",
        default=[],
        help="skip tasks with these tags (sent to every worker)",
    )
    parser.add_argument(
        "--heartbeat-interval",
        type=float,
        default=1.0,
        help="seconds between worker heartbeats (default 1)",
    )
    parser.add_argument(
        "--heartbeat-liveness",
        type=int,
        default=3,
        help="missed intervals before a worker is missing (default 3)",
    )


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

    run = sub.add_parser(
        "run",
        help="a master plus local worker processes, on this machine",
        description="Start a master bound to loopback and N local workers.",
    )
    _test_options(run, script_required=True)
    run.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="local worker processes (default: one per CPU core)",
    )
    _common(run)

    master = sub.add_parser(
        "master",
        help="the master alone; workers connect to it",
        description="Start a master that remote workers join.",
    )
    _test_options(master, script_required=True)
    master.add_argument(
        "--bind",
        default="tcp://*:5557",
        help="ZeroMQ endpoint workers connect to (default tcp://*:5557)",
    )
    master.add_argument(
        "--expect-workers",
        type=int,
        default=1,
        help="headless: wait for this many workers before starting (default 1)",
    )
    master.add_argument(
        "--expect-workers-max-wait",
        type=float,
        default=None,
        help="headless: give up waiting for workers after this many seconds",
    )
    _common(master)

    worker = sub.add_parser(
        "worker",
        help="a worker that joins a master",
        description="Run users for a master (horde or Locust).",
    )
    worker.add_argument(
        "-f",
        "--locustfile",
        default=None,
        metavar="FILE",
        help="the user script; without it, the master's script is used",
    )
    worker.add_argument(
        "--master",
        default="127.0.0.1:5557",
        metavar="HOST[:PORT]",
        help="the master's address (default 127.0.0.1:5557)",
    )
    worker.add_argument(
        "--heartbeat-interval",
        type=float,
        default=1.0,
        help="seconds between heartbeats (default 1)",
    )
    worker.add_argument(
        "--stats-interval",
        type=float,
        default=3.0,
        help="seconds between stats reports (default 3)",
    )
    worker.add_argument(
        "-T", "--tags", nargs="*", default=[], help="run only tasks with these tags"
    )
    worker.add_argument(
        "-E", "--exclude-tags", nargs="*", default=[], help="skip tasks with these tags"
    )
    _common(worker)

    demo = sub.add_parser(
        "demo",
        help="a short distributed test against a built-in target",
        description="Start the demo target on loopback and load it.",
    )
    demo.add_argument("-u", "--users", type=int, default=20, help="users (default 20)")
    demo.add_argument(
        "-r", "--spawn-rate", type=float, default=10.0, help="users per second (default 10)"
    )
    demo.add_argument("-t", "--run-time", default="15s", help="duration (default 15s)")
    demo.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    demo.add_argument(
        "--print-stats",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="print the stats table this often (default 3)",
    )
    _common(demo)

    target = sub.add_parser(
        "target",
        help="serve the demo target only (for trying things out)",
        description="Serve horde's demo target until interrupted.",
    )
    target.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    target.add_argument("--port", type=int, default=8080, help="port, 0 for any (default 8080)")
    _common(target)
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
