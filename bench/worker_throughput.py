#!/usr/bin/env python3
"""Requests/s of one horde worker on one core, against Locust's FastHttpUser and wrk.

What: the same scenario (50 users, ``wait_time = constant(0)``, one task
``self.client.get("/")``) run by a horde worker and by a ``locust --worker`` with
FastHttpUser, plus ``wrk -t1 -c50`` as the ceiling, against a private nginx.

How: nginx and the masters run on core 0 (``--target-core``); the generator under test (the
worker, or wrk) alone runs on core 1 (``--worker-core``). Each run waits for the first
requests, skips ``--warmup`` seconds of ramp, then counts the requests nginx served over
``--duration`` seconds (nginx's stub_status: the same independent counter for every tool) and
the generator process's CPU time over that window. Rounds interleave the tools so drift
affects all alike. The table shows each run, then the medians and the ratios
horde/Locust and horde/wrk. Exit status 1 if the median horde/Locust ratio is below
``--min-ratio`` (2.0).

``--baseline-tree DIR`` adds a fourth tool, ``baseline``: the same horde run from another
version's tree (a directory holding a ``horde/`` package laid out as installed), so a change
is compared with the code before it in the same invocation (ratio horde/baseline).

Run: ``.venv/bin/python bench/worker_throughput.py [--rounds 3] [--duration 20] [--quick]``
(wrap it in ``flock /tmp/horde-bench.lock`` on a shared machine).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    VENV_BIN,
    BenchError,
    Nginx,
    free_port,
    measure_window,
    median,
    require_tools,
    start_pinned,
    stop,
)

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
USERS = 50
TOOLS = ("horde", "locust", "wrk")


def _run_common(args: argparse.Namespace, nginx: Nginx) -> list[str]:
    """The headless-run flags horde's and Locust's masters share."""
    return [
        "--headless",
        "-u",
        str(USERS),
        "-r",
        str(USERS),
        "-t",
        f"{int(args.warmup + args.duration + 60)}s",
        "-H",
        nginx.url,
    ]


def _measured(
    nginx: Nginx,
    args: argparse.Namespace,
    logs: Path,
    generator_cmd: list[str],
    master_cmd: list[str] | None = None,
    *,
    tree: str = "",
) -> tuple[float, float]:
    """Start the master (if any) on the target's core and the generator on its own; measure.

    With ``tree``, both run with that directory first on ``sys.path`` (another version).
    """
    name = Path(generator_cmd[0]).name + ("-baseline" if tree else "")
    popen: dict[str, object] = {}
    if tree:
        popen = {"cwd": tree, "env": {**os.environ, "PYTHONPATH": tree}}
    master = generator = None
    try:
        if master_cmd:
            log = logs / f"{name}-master.log"
            master = start_pinned(master_cmd, args.target_core, log, **popen)
        generator = start_pinned(generator_cmd, args.worker_core, logs / f"{name}.log", **popen)
        alive = _alive(generator)
        return measure_window(nginx, generator.pid, args.warmup, args.duration, alive)
    finally:
        stop(generator)
        stop(master)


def _horde(
    nginx: Nginx, args: argparse.Namespace, logs: Path, tree: str = ""
) -> tuple[float, float]:
    port = free_port()
    script = str(SCENARIOS / "horde_get.py")
    horde = [str(VENV_BIN / "python"), "-m", "horde"] if tree else [str(VENV_BIN / "horde")]
    master = [*horde, "master", "-f", script, *_run_common(args, nginx)]
    master += ["--bind", f"tcp://127.0.0.1:{port}", "--no-web", "--expect-workers", "1"]
    worker = [*horde, "worker", "--master", f"127.0.0.1:{port}", "-f", script]
    return _measured(nginx, args, logs, worker, master, tree=tree)


def _baseline(nginx: Nginx, args: argparse.Namespace, logs: Path) -> tuple[float, float]:
    return _horde(nginx, args, logs, args.baseline_tree)


def _locust(nginx: Nginx, args: argparse.Namespace, logs: Path) -> tuple[float, float]:
    port = free_port()
    script = str(SCENARIOS / "locust_fast_get.py")
    master = [str(VENV_BIN / "locust"), "-f", script, "--master", *_run_common(args, nginx)]
    master += ["--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)]
    master += ["--expect-workers", "1", "--only-summary"]
    worker = [str(VENV_BIN / "locust"), "-f", script, "--worker"]
    worker += ["--master-host", "127.0.0.1", "--master-port", str(port)]
    return _measured(nginx, args, logs, worker, master)


def _wrk(nginx: Nginx, args: argparse.Namespace, logs: Path) -> tuple[float, float]:
    seconds = int(args.warmup + args.duration + 30)
    command = ["wrk", "-t1", f"-c{USERS}", f"-d{seconds}s", f"{nginx.url}/"]
    return _measured(nginx, args, logs, command)


def _alive(process: subprocess.Popen[bytes]) -> Callable[[], bool]:
    return lambda: process.poll() is None


RUNNERS = {"horde": _horde, "locust": _locust, "wrk": _wrk, "baseline": _baseline}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--duration", type=float, default=20.0, help="window seconds (20)")
    parser.add_argument("--warmup", type=float, default=3.0, help="ramp skipped, seconds (3)")
    parser.add_argument("--quick", action="store_true", help="smoke check: 1 round of 4 s")
    parser.add_argument("--min-ratio", type=float, default=2.0, help="horde/Locust to pass")
    parser.add_argument("--target-core", type=int, default=0, help="nginx and masters (0)")
    parser.add_argument("--worker-core", type=int, default=1, help="the generator (1)")
    parser.add_argument(
        "--baseline-tree",
        default="",
        help="also run horde from this directory (holding a horde/ package), e.g. the"
        " version before a change, and print horde/baseline",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 4.0, 2.0
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the rounds, print the table; 1 if horde/Locust is below the minimum ratio."""
    args = parse_args(argv)
    try:
        require_tools("nginx", "wrk", "taskset")
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tools = (*TOOLS, "baseline") if args.baseline_tree else TOOLS
    results: dict[str, list[tuple[float, float]]] = {tool: [] for tool in tools}
    with tempfile.TemporaryDirectory(prefix="horde-bench-") as tmp, Nginx(args.target_core) as nx:
        print(
            f"nginx on {nx.url} (core {args.target_core}); generators on core "
            f"{args.worker_core}; {args.rounds} rounds of {args.duration:g} s",
            flush=True,
        )
        for round_no in range(1, args.rounds + 1):
            for tool in tools:
                print(f"round {round_no}/{args.rounds}: {tool} ...", end=" ", flush=True)
                rps, cpu = RUNNERS[tool](nx, args, Path(tmp))
                results[tool].append((rps, cpu))
                print(f"{rps:,.0f} req/s at {cpu:.0f}% CPU", flush=True)
    return report(results, args.min_ratio)


def report(results: dict[str, list[tuple[float, float]]], min_ratio: float) -> int:
    """Print every run, the medians and the ratios; 1 if horde/Locust < ``min_ratio``."""
    print(f"\n{'tool':<8}{'round':>6}{'req/s':>12}{'CPU %':>8}{'req/s per core':>16}")
    for tool, runs in results.items():
        for index, (rps, cpu) in enumerate(runs, 1):
            per_core = rps / (cpu / 100) if cpu else float("nan")
            print(f"{tool:<8}{index:>6}{rps:>12,.0f}{cpu:>8.0f}{per_core:>16,.0f}")
    medians = {tool: median([rps for rps, _ in runs]) for tool, runs in results.items()}
    cpus = {tool: median([cpu for _, cpu in runs]) for tool, runs in results.items()}
    print()
    for tool in results:
        print(f"median {tool:<8}{medians[tool]:>12,.0f} req/s at {cpus[tool]:.0f}% CPU")
    ratio = medians["horde"] / medians["locust"]
    print(f"horde/Locust FastHttpUser: {ratio:.2f}x (need >= {min_ratio:g})")
    print(f"horde/wrk:                 {medians['horde'] / medians['wrk']:.2f}x")
    if "baseline" in medians:
        print(f"horde/baseline:            {medians['horde'] / medians['baseline']:.3f}x")
    return 0 if ratio >= min_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
