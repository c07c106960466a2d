"""The flag groups several ``horde`` subcommands share: logging, web, outputs, thresholds,
arrival pool, keys, health, and :func:`flag` itself.

Data only. Every default is the named constant of the settings the flag ends up in, and
the help quotes it, so a default is written once; :mod:`horde.flags` composes these groups
into each subcommand's flags.

Imports: horde.logsetup, horde.health, horde.master.config, horde.worker.config and
horde.protocol.
"""

from __future__ import annotations

from typing import Any

from horde import logsetup
from horde.health import DEFAULT_HEALTH_HOST
from horde.master import config as master
from horde.protocol.counters import DEFAULT_MAX_NAMES, OVERFLOW_NAME
from horde.worker import config as worker

__all__ = [
    "ARRIVAL_POOL",
    "HEALTH",
    "INSECURE",
    "LOGGING",
    "MAX_NAMES",
    "OUTPUTS",
    "SECRET_KEY",
    "TAGS",
    "THRESHOLDS",
    "WEB",
    "Option",
    "flag",
]

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
