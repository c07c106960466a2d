"""The flags of each ``horde`` subcommand: names, types, defaults and help.

Data only, read by ``horde.cli`` to build the parser. Every default is the named constant
of the settings the flag ends up in (``master/config.py``, ``worker/config.py``,
``horde/logsetup.py``, ``horde/settings.py``), and the help quotes that constant, so a
default is written once. ``horde.settings`` reads the parsed flags by their ``dest``.

The groups several subcommands share are in :mod:`horde.flaggroups`.

Imports: horde.flaggroups, horde.settings, horde.master.config, horde.worker.config and
horde.protocol.
"""

from __future__ import annotations

from horde import settings as cmd
from horde.flaggroups import (
    ARRIVAL_POOL,
    HEALTH,
    INSECURE,
    LOGGING,
    MAX_NAMES,
    OUTPUTS,
    SECRET_KEY,
    TAGS,
    THRESHOLDS,
    WEB,
    Option,
    flag,
)
from horde.master import config as master
from horde.protocol.defaults import DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_LIVENESS
from horde.worker import config as worker

__all__ = ["COMMANDS", "LOGGING", "Option"]


TEST: list[Option] = [
    flag(
        "-f",
        "--locustfile",
        required=True,
        metavar="FILE",
        help="the user script (Python file defining User classes)",
    ),
    flag(
        "-u",
        "--users",
        type=int,
        default=None,
        help=f"peak number of users (headless; default {master.DEFAULT_HEADLESS_USERS})",
    ),
    flag(
        "-r",
        "--spawn-rate",
        type=float,
        default=master.DEFAULT_SPAWN_RATE,
        help=f"users started per second (default {master.DEFAULT_SPAWN_RATE:g})",
    ),
    flag(
        "-t",
        "--run-time",
        default=None,
        help="stop after this long: 30, 30s, 5m, 1h20m (default: never)",
    ),
    flag("-H", "--host", default="", help="base URL of the system under test"),
    flag(
        "-i",
        "--iterations",
        type=int,
        default=0,
        metavar="N",
        help="each worker runs at most N task iterations, then the test ends once every"
        " worker's users have stopped (locust-plugins' -i; default 0: no limit)",
    ),
    flag(
        "--headless",
        action="store_true",
        help="start at once, print stats, stop at --run-time; no swarm needed",
    ),
    flag(
        "--autostart",
        action="store_true",
        help="start the test at once, as --headless does, but keep the web UI (Locust's flag)",
    ),
    flag(
        "--autoquit",
        type=float,
        default=None,
        metavar="SECONDS",
        help="with --autostart: exit this long after the test ends (default: stay)",
    ),
    flag(
        "--only-summary",
        action="store_true",
        help="headless: print only the final summary, not the periodic tables",
    ),
    flag(
        "--web-host",
        default=master.DEFAULT_WEB_HOST,
        help=f"interface for the web API (default {master.DEFAULT_WEB_HOST}; 0.0.0.0 for all)",
    ),
    flag(
        "--web-port",
        type=int,
        default=master.DEFAULT_WEB_PORT,
        help=f"web API port (default {master.DEFAULT_WEB_PORT})",
    ),
    flag("--no-web", action="store_true", help="do not serve the web API"),
    *WEB,
    *INSECURE,
    *OUTPUTS,
    *MAX_NAMES,
    flag(
        "--stop-timeout",
        type=float,
        default=None,
        help="seconds users get to finish their task when stopping",
    ),
    flag(
        "--print-stats",
        type=float,
        default=master.DEFAULT_PRINT_STATS,
        metavar="SECONDS",
        help=f"headless: print the stats table this often (default {master.DEFAULT_PRINT_STATS:g})",
    ),
    flag(
        "--exit-code-on-error",
        type=int,
        default=master.DEFAULT_EXIT_CODE_ON_ERROR,
        help=f"exit code when any request failed (default {master.DEFAULT_EXIT_CODE_ON_ERROR})",
    ),
    *THRESHOLDS,
    *TAGS,
    flag(
        "--arrival-rate",
        default=None,
        metavar="RATE",
        help="drive the user classes by a fleet-wide rate of iterations per second (split"
        " by weight) instead of users and wait_time; needs horde workers",
    ),
    flag(
        "--stages",
        default=None,
        metavar="SPAN:RATE,...",
        help="like --arrival-rate, in linear ramps from 0: 30s:100,2m:500,30s:0"
        " (the run stops after the last)",
    ),
    flag(
        "--heartbeat-interval",
        type=float,
        default=DEFAULT_HEARTBEAT_INTERVAL,
        help=f"seconds between worker heartbeats (default {DEFAULT_HEARTBEAT_INTERVAL:g})",
    ),
    flag(
        "--heartbeat-liveness",
        type=int,
        default=DEFAULT_HEARTBEAT_LIVENESS,
        help=f"missed intervals before a worker is missing (default {DEFAULT_HEARTBEAT_LIVENESS})",
    ),
]

RUN: list[Option] = [
    *TEST,
    flag(
        "--workers",
        "--processes",
        type=int,
        default=cmd.DEFAULT_LOCAL_WORKERS,
        help="local worker processes (default: one per CPU core; --processes is Locust's name)",
    ),
    *ARRIVAL_POOL,
]

MASTER: list[Option] = [
    *TEST,
    flag(
        "--bind",
        default=master.DEFAULT_BIND,
        help=f"ZeroMQ endpoint workers connect to (default {master.DEFAULT_BIND})",
    ),
    *SECRET_KEY,
    flag(
        "--allow-keys",
        default=None,
        metavar="KEYS",
        help="the worker public keys to admit (with --secret-key, workers must use CURVE):"
        " a directory of *.key files, one key file, or one Z85 key; reloaded on SIGHUP and"
        " when the files change",
    ),
    flag(
        "--expect-workers",
        type=int,
        default=master.DEFAULT_EXPECT_WORKERS,
        help="headless: wait for this many workers first"
        f" (default {master.DEFAULT_EXPECT_WORKERS})",
    ),
    flag(
        "--expect-workers-max-wait",
        type=float,
        default=None,
        help="headless: stop waiting for workers after this long",
    ),
    *HEALTH,
]

WORKER: list[Option] = [
    flag(
        "-f",
        "--locustfile",
        default=None,
        metavar="FILE",
        help="the user script; without it, the master's script is used",
    ),
    flag(
        "--master",
        default=worker.DEFAULT_MASTER,
        metavar="HOST[:PORT]",
        help=f"the master's address (default {worker.DEFAULT_MASTER})",
    ),
    *SECRET_KEY,
    flag(
        "--master-key",
        default=None,
        metavar="KEY",
        help="the master's CURVE public key (with --secret-key): master.key from"
        " `horde keygen`, or the Z85 key itself",
    ),
    flag(
        "--parent-pid",
        type=int,
        default=None,
        metavar="PID",
        help="exit when this process does (horde run sets it for its local workers)",
    ),
    *HEALTH,
    flag(
        "--processes",
        type=int,
        default=None,
        metavar="N",
        help="start N worker processes (-1: one per CPU core) and wait for them all, as"
        " Locust's --worker --processes",
    ),
    *INSECURE,
    flag(
        "--heartbeat-interval",
        type=float,
        default=DEFAULT_HEARTBEAT_INTERVAL,
        help=f"seconds between heartbeats (default {DEFAULT_HEARTBEAT_INTERVAL:g})",
    ),
    flag(
        "--stats-interval",
        type=float,
        default=worker.DEFAULT_STATS_INTERVAL,
        help=f"seconds between stats reports (default {worker.DEFAULT_STATS_INTERVAL:g})",
    ),
    *MAX_NAMES,
    *TAGS,
    *ARRIVAL_POOL,
]

DEMO: list[Option] = [
    flag(
        "-u", "--users", type=int, default=cmd.DEMO_USERS, help=f"users (default {cmd.DEMO_USERS})"
    ),
    flag(
        "-r",
        "--spawn-rate",
        type=float,
        default=cmd.DEMO_SPAWN_RATE,
        help=f"users per second (default {cmd.DEMO_SPAWN_RATE:g})",
    ),
    flag(
        "-t",
        "--run-time",
        default=cmd.DEMO_RUN_TIME,
        help=f"duration (default {cmd.DEMO_RUN_TIME})",
    ),
    flag(
        "--workers",
        type=int,
        default=cmd.DEMO_WORKERS,
        help=f"worker processes (default {cmd.DEMO_WORKERS})",
    ),
    flag(
        "--print-stats",
        type=float,
        default=master.DEFAULT_PRINT_STATS,
        metavar="SECONDS",
        help=f"print the stats table this often (default {master.DEFAULT_PRINT_STATS:g})",
    ),
]

TARGET: list[Option] = [
    flag("--host", default=cmd.TARGET_HOST, help=f"interface (default {cmd.TARGET_HOST})"),
    flag(
        "--port",
        type=int,
        default=cmd.TARGET_PORT,
        help=f"port, 0 for any (default {cmd.TARGET_PORT})",
    ),
]

KEYGEN: list[Option] = [
    flag("directory", metavar="DIR", help="where to write the keys (created if missing)"),
    flag(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="one key pair per worker (worker-1 ... worker-N) instead of one shared pair",
    ),
    flag("--force", action="store_true", help="overwrite keys already in DIR"),
    flag(
        "--kustomize",
        action="store_true",
        help="write what the Kubernetes manifests read, flat in DIR (their default:"
        " deploy/kubernetes/base/secrets): master.key(_secret), one worker.key(_secret)"
        " pair shared by every worker pod, web.env (HORDE_WEB_AUTH) and a .gitignore",
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
        "keygen",
        "write CURVE key pairs for a master and its workers",
        "Write a key pair for the master and one (or --workers N) for workers, in ZeroMQ's"
        " certificate format, and print which flags take which file.",
        KEYGEN,
    ),
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
