#!/usr/bin/env python3
"""Resident memory per idle simulated user: one horde worker against Locust's workers.

What: 10,000 idle users (one empty task, then ``wait_time = constant(600)``) on one
worker process, for horde's ``HttpUser`` and Locust's ``HttpUser`` and ``FastHttpUser``.

How: for each tool a master (web API on a free port, core 0) and one worker (core 1) start;
once the worker has joined and its RSS has settled, that RSS is the 0-user baseline; then
``POST /swarm`` asks for the users, and once the master reports them all and the RSS has
settled again, the cost per user is (RSS with users - RSS with none) / users. Rounds
interleave the tools (default 3). The table shows each run, the medians, and horde's ratio
to the lower Locust median; exit status 1 if horde's median is higher than that.

Run: ``.venv/bin/python bench/user_memory.py [--rounds 3] [--users 10000] [--quick]``
(wrap it in ``flock /tmp/horde-bench.lock`` on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    VENV_BIN,
    BenchError,
    Nginx,
    free_port,
    median,
    require_tools,
    rss_bytes,
    start_pinned,
    stop,
    wait_for,
)

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
TOOLS = {
    "horde HttpUser": "horde_idle.py",
    "Locust HttpUser": "locust_http_idle.py",
    "Locust FastHttpUser": "locust_fast_idle.py",
}


def _commands(tool: str, script: str, url: str, bind: int, web: int) -> tuple[list[str], ...]:
    if tool.startswith("horde"):
        horde = str(VENV_BIN / "horde")
        master = [horde, "master", "-f", script, "-H", url, "--bind", f"tcp://127.0.0.1:{bind}"]
        master += ["--web-port", str(web), "--max-users", "1000000"]
        return master, [horde, "worker", "--master", f"127.0.0.1:{bind}", "-f", script]
    locust = str(VENV_BIN / "locust")
    master = [locust, "-f", script, "--master", "-H", url, "--master-bind-host", "127.0.0.1"]
    master += ["--master-bind-port", str(bind), "--web-host", "127.0.0.1", "--web-port", str(web)]
    worker = [locust, "-f", script, "--worker", "--master-host", "127.0.0.1"]
    worker += ["--master-port", str(bind)]
    return master, worker


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _settled_rss(pid: int, timeout: float = 30.0) -> int:
    """The RSS once it has varied by under 0.5% over the last 2 s (or after ``timeout``)."""
    samples: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        samples.append(rss_bytes(pid))
        recent = samples[-5:]
        if len(recent) == 5 and max(recent) - min(recent) <= 0.005 * max(recent):
            break
        time.sleep(0.5)
    return samples[-1]


def one_run(tool: str, nginx: Nginx, args: argparse.Namespace, logs: Path) -> float:
    """Bytes of RSS per idle user for ``tool``."""
    web = free_port()
    master_cmd, worker_cmd = _commands(
        tool, str(SCENARIOS / TOOLS[tool]), nginx.url, free_port(), web
    )
    api = f"http://127.0.0.1:{web}"
    slug = tool.replace(" ", "-")
    master = worker = None
    try:
        master = start_pinned(master_cmd, args.target_core, logs / f"{slug}-master.log")
        worker = start_pinned(worker_cmd, args.worker_core, logs / f"{slug}-worker.log")
        wait_for(lambda: _get(f"{api}/worker-count")["worker_count"] >= 1, 60, f"{tool} worker")
        before = _settled_rss(worker.pid)
        form = {"user_count": args.users, "spawn_rate": args.spawn_rate, "host": nginx.url}
        body = urllib.parse.urlencode(form).encode()
        with urllib.request.urlopen(f"{api}/swarm", data=body, timeout=10) as response:
            response.read()
        wait_for(
            lambda: _get(f"{api}/stats/requests")["user_count"] >= args.users,
            args.users / args.spawn_rate + 120,
            f"{args.users} {tool} users",
        )
        after = _settled_rss(worker.pid)
        if worker.poll() is not None:
            raise BenchError(f"the {tool} worker exited (see {logs})")
        return (after - before) / args.users
    finally:
        stop(worker)
        stop(master)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--users", type=int, default=10_000, help="idle users (10000)")
    parser.add_argument("--spawn-rate", type=float, default=2_000, help="users/s (2000)")
    parser.add_argument("--quick", action="store_true", help="smoke check: 1 round, 2000 users")
    parser.add_argument("--target-core", type=int, default=0, help="nginx and masters (0)")
    parser.add_argument("--worker-core", type=int, default=1, help="the worker (1)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.users = 1, 2_000
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the rounds, print the table; 1 if horde uses more per user than Locust."""
    args = parse_args(argv)
    try:
        require_tools("nginx", "taskset")
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results: dict[str, list[float]] = {tool: [] for tool in TOOLS}
    with tempfile.TemporaryDirectory(prefix="horde-bench-") as tmp, Nginx(args.target_core) as nx:
        print(f"{args.users} idle users per worker, {args.rounds} rounds", flush=True)
        for round_no in range(1, args.rounds + 1):
            for tool in TOOLS:
                print(f"round {round_no}/{args.rounds}: {tool} ...", end=" ", flush=True)
                per_user = one_run(tool, nx, args, Path(tmp))
                results[tool].append(per_user)
                print(f"{per_user / 1024:.1f} KiB/user", flush=True)
    return report(results)


def report(results: dict[str, list[float]]) -> int:
    """Print every run, the medians and the ratio; 1 if horde's median is the higher."""
    print(f"\n{'tool':<22}{'round':>6}{'KiB/user':>10}")
    for tool, runs in results.items():
        for index, per_user in enumerate(runs, 1):
            print(f"{tool:<22}{index:>6}{per_user / 1024:>10.2f}")
    medians = {tool: median(runs) for tool, runs in results.items()}
    print()
    for tool, value in medians.items():
        print(f"median {tool:<22}{value / 1024:>8.2f} KiB/user")
    horde = medians["horde HttpUser"]
    locust = min(value for tool, value in medians.items() if tool.startswith("Locust"))
    print(f"horde / lower Locust: {horde / locust:.2f}x (need <= 1)")
    return 0 if horde <= locust else 1


if __name__ == "__main__":
    sys.exit(main())
