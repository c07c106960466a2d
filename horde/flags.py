"""The flags of each ``horde`` subcommand: names, types, defaults and help.

Data only, read by ``horde.cli`` to build the parser. Every default is the named constant
of the settings the flag ends up in (``master/config.py``, ``worker/config.py``,
``horde/logsetup.py``, ``horde/settings.py``), and the help quotes that constant, so a
default is written once. ``horde.settings`` reads the parsed flags by their ``dest``.

Imports: horde.logsetup, horde.settings, horde.health, horde.master.config,
horde.worker.config and horde.protocol.
"""

from __future__ import annotations

from typing import Any

from horde import logsetup
from horde import settings as cmd
from horde.health import DEFAULT_HEALTH_HOST
from horde.master import config as master
from horde.protocol.counters import DEFAULT_MAX_NAMES, OVERFLOW_NAME
from horde.protocol.defaults import DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_LIVENESS
from horde.worker import config as worker

__all__ = ["COMMANDS", "LOGGING", "Option"]

Option = tuple[tuple[str, ...], dict[str, Any]]
"""One flag: its names and ``add_argument``'s keyword arguments."""


def flag(*names: str, **kwargs: Any) -> Option:
    """One flag, written as ``add_argument`` takes it."""
    return names, kwargs


LOGGING: list[Option] = [
    flag(
        "--config",
        default=None,
        metavar="FILE",
        help="read settings from this file (locust.conf's 'key = value' lines); ./locust.conf"
        " and ./horde.conf are read when present; variables and flags override them",
    ),
    flag(
        "--log-level",
        default=logsetup.DEFAULT_LEVEL,
        choices=list(logsetup.LEVELS),
        help=f"log level (default {logsetup.DEFAULT_LEVEL})",
    ),
    flag(
        "--log-format",
        default=logsetup.DEFAULT_FORMAT,
        choices=list(logsetup.FORMATS),
        help=f"readable console lines or JSON lines (default {logsetup.DEFAULT_FORMAT})",
    ),
]

TAGS: list[Option] = [
    flag("-T", "--tags", nargs="*", default=[], help="run only tasks with these tags"),
    flag("-E", "--exclude-tags", nargs="*", default=[], help="skip tasks with these tags"),
]

WEB: list[Option] = [
    flag(
        "--web-base-path",
        default="",
        metavar="PATH",
        help="serve every web route under this prefix, e.g. /horde (behind a proxy)",
    ),
    flag(
        "--web-auth",
        default=None,
        metavar="USER:PASSWORD",
        help="require HTTP Basic auth on every web route (better from the environment,"
        " which ps does not show)",
    ),
    flag(
        "--web-auth-token",
        default=None,
        metavar="TOKEN",
        help="accept 'Authorization: Bearer TOKEN' on every web route",
    ),
    flag("--tls-cert", default=None, metavar="FILE", help="serve HTTPS: certificate"),
    flag("--tls-key", default=None, metavar="FILE", help="serve HTTPS: private key"),
    flag(
        "--max-users",
        type=int,
        default=master.DEFAULT_MAX_USERS,
        help=f"refuse a /swarm above this many users (default {master.DEFAULT_MAX_USERS})",
    ),
]

OUTPUTS: list[Option] = [
    flag(
        "--csv",
        dest="csv_prefix",
        default=None,
        metavar="PREFIX",
        help="write PREFIX_stats.csv, _failures.csv, _exceptions.csv every second",
    ),
    flag(
        "--csv-full-history",
        action="store_true",
        help="also append every interval to PREFIX_stats_history.csv",
    ),
    flag("--html", default=None, metavar="FILE", help="write the HTML report here at the end"),
    flag(
        "--json",
        action="store_true",
        help="print the final stats as JSON on stdout (tables go to stderr)",
    ),
    flag(
        "--shape",
        default=None,
        metavar="CLASS",
        help="run this LoadTestShape class of the script (default: the script's only one,"
        " as in Locust; a script with several offers them in the dashboard)",
    ),
]

THRESHOLDS: list[Option] = [
    flag(
        "--threshold",
        action="append",
        default=[],
        metavar="EXPR",
        help="a pass/fail threshold on the merged stats, e.g. 'p95<200ms',"
        " 'GET /items: p99<300ms over 30s', 'fail_ratio<0.01', 'generator_ok' (repeatable;"
        " the script's `thresholds` apply too); with thresholds a failed one exits 99 and"
        " failed requests alone exit 0 (in the variable: separated by ';' or new lines)",
    ),
    flag(
        "--abort-on-fail",
        action="store_true",
        help="stop the run as soon as a threshold fails (after --abort-grace)",
    ),
    flag(
        "--abort-grace",
        type=float,
        default=master.DEFAULT_ABORT_GRACE,
        metavar="SECONDS",
        help="seconds from the start before --abort-on-fail may stop a run"
        f" (default {master.DEFAULT_ABORT_GRACE:g})",
    ),
    flag(
        "--junit",
        default=None,
        metavar="FILE",
        help="write a JUnit XML file at the end, one test case per threshold",
    ),
]

MAX_NAMES: list[Option] = [
    flag(
        "--max-names",
        type=int,
        default=DEFAULT_MAX_NAMES,
        metavar="N",
        help="distinct request names kept; requests under later names count as"
        f" {OVERFLOW_NAME!r}, with a warning (default {DEFAULT_MAX_NAMES})",
    ),
]

ARRIVAL_POOL: list[Option] = [
    flag(
        "--arrival-pool",
        type=int,
        default=worker.DEFAULT_ARRIVAL_POOL,
        metavar="N",
        help="users pre-started on each worker per arrival-rate class, to start iterations"
        f" from (default {worker.DEFAULT_ARRIVAL_POOL}; not --max-users)",
    ),
    flag(
        "--max-start-delay",
        type=float,
        default=worker.DEFAULT_MAX_START_DELAY,
        metavar="SECONDS",
        help="an arrival-rate iteration that finds no free user this long after its due time"
        f" is dropped, not started late (default {worker.DEFAULT_MAX_START_DELAY:g})",
    ),
]

INSECURE: list[Option] = [
    flag(
        "--insecure",
        action="store_true",
        help="allow what is refused without keys: listening (or connecting) beyond loopback"
        " with no CURVE keys, a web API beyond loopback with no --web-auth (logs a warning)",
    ),
]

HEALTH: list[Option] = [
    flag(
        "--health-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve /healthz (alive) and /readyz (ready) on this port, without auth or data,"
        " also headless (default: off; 0 is off too)",
    ),
    flag(
        "--health-host",
        default=DEFAULT_HEALTH_HOST,
        help=f"interface for the health endpoints (default {DEFAULT_HEALTH_HOST})",
    ),
]

SECRET_KEY: list[Option] = [
    flag(
        "--secret-key",
        default=None,
        metavar="KEY",
        help="this side's CURVE secret key: a *.key_secret file from `horde keygen`,"
        " or the 40-character Z85 key itself",
    ),
]

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
