"""Master capacity: how many heartbeating, reporting workers one master process holds.

For each worker count (``--workers``, default 1000 and 5000) and each setup:

- ``horde/horde``: the horde master, simulated horde workers (``horde.stats`` deltas);
- ``horde/locust``: the horde master, simulated Locust workers (Locust's ``stats``);
- ``locust/locust``: Locust's master (``locust --master``), simulated Locust workers;

it starts the master pinned to core 0 and the simulators (``bench/simulate_workers.py``,
at most 2,500 workers a process) on core 1, waits until every worker registered, starts a
run of one user per worker, lets it settle (``--warmup``), then measures for ``--duration``
seconds (``--soak``: 300 s): heartbeat reply latency, horde ack lag (ack arrival minus
the delta's ``sent_at``), merge lag seen from outside (the count of marker entries in
``/stats/requests``, polled twice a second, against the deltas' send times), workers
shown missing, master CPU (% of a core), RSS at the window's start and end, and
``/stats/requests`` latency. Then the deltas stop (the simulators' SIGUSR2; heartbeats go
on) and the master must merge every one within a minute: the deltas never merged, and
the total's requests minus those sent (0 when the totals are exact). A run where a
simulator fell behind (p99 lateness above 100 ms, or any would-block drop) is invalid and
left out of the medians.

``--curve off on`` runs ``horde/horde`` both plain and with CurveZMQ (``on`` alone: only
with it): every simulated worker then has its own key pair, all of them on the master's
allow-list (a directory of ``*.key`` files written before the master starts with
``--secret-key`` and ``--allow-keys``). Locust workers cannot speak CURVE, so the other
setups run only plain. Every run also reports how long the handshakes took to be
admitted: from the last simulated worker's ``connect`` to the moment every one had its
first ``ack`` (``admit s``; with CURVE that is the CURVE handshake, the ZAP check and the
registration), the CPU of the master's libzmq I/O threads (where CURVE encrypts) beside
the whole process's, and how many workers rebuilt their socket for want of an ack (after
5 s, or with ``--worker-retry horde`` as a horde worker does: after 0.25 s, 0.5 s, 1 s, 2 s,
then every 3 s, so a slow admission brings more handshakes).

Prints a table of medians over ``--rounds`` (interleaved), the ratios CURVE on / off, and
exits 1 when the horde master with horde workers misses a goal at the largest count run
(the goal is 5,000), plain or with CURVE: heartbeat reply p99 < 50 ms, no worker missing,
every delta merged within 1 s of ``sent_at``, ``/stats/requests`` p99 < 200 ms, and with
``--soak`` RSS growth under 20 MB over the window.

The soak warms up for :data:`SOAK_WARMUP` seconds unless ``--warmup`` says otherwise.
libzmq queues each peer's messages, each way, in 16 KiB chunks of 256 messages, keeping a
spare chunk, and the kernel maps a chunk's pages as messages first reach them; so a
master's RSS climbs by about 64 KiB per worker over its first 512 messages each way (6.4
minutes at the simulated 1.33 messages a second), then stays flat. Growth before that is
the queues filling in, not a leak; the soak measures after it.

Wrap in ``flock /tmp/horde-bench.lock`` on shared machines.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from capacity_support import (
    HORDE_SCRIPT,
    LOCUST_SCRIPT,
    ZMQ_IO_THREAD,
    Poller,
    cpu_seconds,
    http_call,
    listen_overflows,
    merge_lags,
    pct,
    settle,
    start,
    stop,
    thread_cpu_seconds,
    threads_cpu_seconds,
    wait_http,
    worker_count,
)
from curve_keys import CurveKeys, write_curve_keys

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SETUPS = ("horde/horde", "horde/locust", "locust/locust")
CURVE_SETUPS = ("horde/horde",)
"""The setups whose workers can speak CURVE (Locust's cannot)."""
PER_PROCESS = 2500
MAX_LATENESS_MS = 100.0
GOAL_HB_P99_MS = 50.0
GOAL_MERGE_MS = 1000.0
GOAL_STATS_P99_MS = 200.0
GOAL_RSS_GROWTH = 20 * 2**20
SETTLE_SECONDS = 60.0
"""Longest wait, after the deltas stop, for the master to merge the last of them."""
SOAK_WARMUP = 420.0
"""Seconds before a soak's window: every worker's queues have passed 512 messages."""
MASTER_CORE, SIM_CORE = 0, 1


def log(text: str) -> None:
    """A progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def master_cmd(
    setup: str, tmp: Path, zmq_port: int, web_port: int, keys: CurveKeys | None = None
) -> list[str]:
    """The command line of the master under test (a CURVE server when given ``keys``)."""
    if setup.startswith("horde"):
        script = tmp / "horde_script.py"
        script.write_text(HORDE_SCRIPT)
        curve = []
        if keys is not None:
            curve = ["--secret-key", keys.master_secret, "--allow-keys", str(keys.allow_dir)]
        return [
            sys.executable,
            "-m",
            "horde",
            "master",
            "-f",
            str(script),
            "--bind",
            f"tcp://127.0.0.1:{zmq_port}",
            "--web-host",
            "127.0.0.1",
            "--web-port",
            str(web_port),
            "--log-level",
            "WARNING",
            *curve,
        ]
    script = tmp / "locust_script.py"
    script.write_text(LOCUST_SCRIPT)
    return [
        str(BIN / "locust"),
        "-f",
        str(script),
        "--master",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        str(zmq_port),
        "--web-host",
        "127.0.0.1",
        "--web-port",
        str(web_port),
        "--loglevel",
        "WARNING",
    ]


def sim_cmd(args: argparse.Namespace, zmq_port: int, fmt: str, share: int) -> list[str]:
    """The command line of a simulator process of ``share`` workers (without its tag and
    output file)."""
    return [
        sys.executable,
        str(ROOT / "bench" / "simulate_workers.py"),
        f"--master=tcp://127.0.0.1:{zmq_port}",
        f"--workers={share}",
        f"--format={fmt}",
        f"--entries={args.entries}",
        f"--buckets={args.buckets}",
        f"--retry={args.worker_retry}",
    ]


def run_once(
    setup: str, n: int, args: argparse.Namespace, tmp: Path, k: int, *, curve: bool = False
) -> dict[str, Any]:
    """One measured run of ``setup`` with ``n`` simulated workers (CURVE clients when
    ``curve``); return its figures."""
    zmq_port, web_port = 25557 + 2 * k, 28089 + 2 * k
    fmt = setup.split("/")[1]
    procs = max(1, math.ceil(n / PER_PROCESS))
    shares = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    keys = write_curve_keys(tmp / f"keys{k}", shares) if curve else None
    env = {"PYTHONPATH": args.horde_tree} if args.horde_tree else None
    master = start(
        master_cmd(setup, tmp, zmq_port, web_port, keys),
        core=MASTER_CORE,
        log=tmp / f"master{k}.log",
        env=env,
        cwd=args.horde_tree or None,  # first on sys.path with ``-m``
    )
    sims: list[Any] = []  # started in the try, stopped in its finally
    outs = [tmp / f"sim{k}_{i}.json" for i in range(procs)]
    result: dict[str, Any] = {"setup": setup, "curve": curve, "workers": n, "valid": False}
    try:
        if not wait_http(web_port, time.monotonic() + 30):
            tail = (tmp / f"master{k}.log").read_text()[-300:]
            result["error"] = f"master web port did not answer: {tail}"
            return result
        admit0 = cpu_seconds(master.pid), thread_cpu_seconds(master.pid), listen_overflows()
        for i, share in enumerate(shares):
            cmd = sim_cmd(args, zmq_port, fmt, share)
            cmd += [f"--tag={k}x{i}", f"--out={outs[i]}"]
            cmd += [f"--curve-keys={keys.sim_files[i]}"] if keys is not None else []
            sims.append(start(cmd, core=SIM_CORE, log=tmp / f"sim{k}_{i}.log"))
        registered = _await_registration(web_port, n)
        result.update(_admission_cpu(master.pid, admit0))
        log(f"{setup}{' CURVE' if curve else ''} N={n}: {registered} workers registered")
        if registered < n:
            tails = [(tmp / f"sim{k}_{i}.log").read_text()[-300:] for i in range(procs)]
            result["error"] = f"only {registered} of {n} workers registered: {tails}"
            return result
        body = f"user_count={n}&spawn_rate={n}"
        http_call(web_port, "POST", "/swarm", body=body, timeout=60)
        time.sleep(args.warmup)
        poller = Poller(web_port, master.pid)
        what = f"{setup}{' CURVE' if curve else ''} N={n}"
        window = _window(master.pid, sims, poller, args.soak or args.duration, what)
        result.update(_totals(sims, outs, web_port))
        for sim in sims:
            stop(sim, timeout=30)
        figures = [json.loads(p.read_text()) for p in outs if p.exists()]
        if len(figures) < procs:
            result["error"] = "a simulator wrote no figures"
            return result
        result.update(_reduce(figures, poller, **window))
        return result
    finally:
        for sim in sims:
            stop(sim)
        stop(master)


def _window(
    pid: int, sims: list[Any], poller: Poller, duration: float, what: str
) -> dict[str, Any]:
    """Measure the master ``pid`` for ``duration`` seconds while the simulators measure
    (from their SIGUSR1) and ``poller`` polls; return the window's start (wall clock),
    CPU % (all threads, and each thread) and RSS at its start and end."""
    for sim in sims:
        os.kill(sim.pid, signal.SIGUSR1)
    cpu0, threads0 = cpu_seconds(pid), threads_cpu_seconds(pid)
    t0, rss0 = time.monotonic(), _rss(pid)
    window_start = time.time()
    poller.start()
    _sleep_with_progress(duration, what, poller)
    cpu1, threads1 = cpu_seconds(pid), threads_cpu_seconds(pid)
    t1, rss1 = time.monotonic(), _rss(pid)
    poller.stop()
    return {
        "window_start": window_start,
        "cpu": (cpu1 - cpu0) / (t1 - t0) * 100,
        "threads": {k: (v - threads0.get(k, 0.0)) / (t1 - t0) * 100 for k, v in threads1.items()},
        "rss0": rss0,
        "rss1": rss1,
    }


def _await_registration(web_port: int, n: int) -> int:
    """Wait (at most 60 s plus 1 s per 100 workers) for ``n`` workers; return the count."""
    deadline = time.monotonic() + 60 + n / 100
    while worker_count(web_port) < n and time.monotonic() < deadline:
        time.sleep(0.5)
    return max(worker_count(web_port) for _ in range(3))


def _admission_cpu(pid: int, since: tuple[float, float, int]) -> dict[str, float]:
    """CPU seconds the master spent (all threads, and its libzmq I/O threads) and
    connections the kernel dropped for a full accept queue, from ``since`` (all three at
    the simulators' start) until every worker registered (seen from ``/worker-count``,
    polled every 0.5 s)."""
    return {
        "admit_cpu_s": cpu_seconds(pid) - since[0],
        "admit_io_cpu_s": thread_cpu_seconds(pid) - since[1],
        "listen_overflows": listen_overflows() - since[2],
    }


def _rss(pid: int) -> int:
    import psutil

    return int(psutil.Process(pid).memory_info().rss)


def _totals(sims: list[Any], outs: list[Path], web_port: int) -> dict[str, Any]:
    """Stop the deltas, wait until all are merged; how many were not, and whether the
    total's requests are exactly those sent (nothing lost, nothing counted twice)."""
    for sim in sims:
        os.kill(sim.pid, signal.SIGUSR2)
    files = [Path(f"{p}.sent") for p in outs]
    deadline = time.monotonic() + 10
    while not all(f.exists() for f in files) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not all(f.exists() for f in files):
        return {"unmerged": None, "requests_off": None}
    sent = [json.loads(f.read_text()) for f in files]
    deltas, requests = sum(s["deltas"] for s in sent), sum(s["requests"] for s in sent)
    markers, total = settle(web_port, deltas, time.monotonic() + SETTLE_SECONDS)
    log(f"sent {deltas} deltas ({requests} requests): {markers} merged, total {total}")
    return {"unmerged": deltas - markers, "requests_off": total - requests}


def _sleep_with_progress(duration: float, what: str, poller: Poller) -> None:
    end = time.monotonic() + duration
    while time.monotonic() < end:
        time.sleep(min(15.0, max(0.0, end - time.monotonic())))
        last = poller.polls[-1] if poller.polls else None
        if last is not None:
            log(
                f"{what}: {round(end - time.monotonic())} s left, "
                f"missing={last.missing} deltas merged={last.markers} "
                f"rss={last.rss / 2**20:.0f} MB"
            )


def _reduce(
    figures: list[dict[str, Any]],
    poller: Poller,
    *,
    window_start: float,
    cpu: float,
    threads: dict[str, float],
    rss0: int,
    rss1: int,
) -> dict[str, Any]:
    hb = [v for f in figures for v in f["hb_latency_ms"]]
    acks = [v for f in figures for v in f["ack_lag_ms"]]
    sent = [v for f in figures for v in f["delta_sent_at"]]
    polls = [p for p in poller.polls if p.at >= window_start]
    lags = merge_lags(polls, sent)
    stats_ms = [p.seconds * 1000 for p in polls]
    late99 = max((f["lateness_p99_ms"] or 0.0) for f in figures)
    would_block = sum(f["would_block"] for f in figures)
    acked = [f["all_acked"] for f in figures]
    admitted = max(acked) if all(acked) else None
    return {
        "valid": late99 <= MAX_LATENESS_MS and would_block == 0,
        "hb_p50_ms": pct(hb, 0.5),
        "hb_p99_ms": pct(hb, 0.99),
        "hb_max_ms": max(hb) if hb else None,
        "hb_samples": len(hb),
        "unanswered_beats": sum(f["unanswered_beats"] for f in figures),
        "ack_p99_ms": pct(acks, 0.99),
        "ack_max_ms": max(acks) if acks else None,
        "ext_merge_p99_ms": pct(lags, 0.99),
        "ext_merge_max_ms": max(lags) if lags else None,
        "missing_max": max((p.missing for p in polls), default=None),
        "polls_failed": sum(1 for p in polls if not p.ok),
        "stats_p99_ms": pct(stats_ms, 0.99),
        "stats_max_ms": max(stats_ms) if stats_ms else None,
        "cpu_pct": cpu,
        "io_cpu_pct": sum(v for k, v in threads.items() if k.startswith(ZMQ_IO_THREAD)),
        "threads_cpu_pct": {k: round(v, 1) for k, v in threads.items() if v >= 0.5},
        "admit_s": admitted and admitted - max(f["connect_last"] for f in figures),
        "admit_first_s": admitted and admitted - min(f["connect_first"] for f in figures),
        "admit_sim_cpu_s": admitted and sum(f["admit_cpu"] for f in figures),
        "rebuilds": sum(f["rebuilds"] for f in figures),
        "rss_start_mb": rss0 / 2**20,
        "rss_end_mb": rss1 / 2**20,
        "sim_late_p99_ms": late99,
        "sim_late_max_ms": max((f["lateness_max_ms"] or 0.0) for f in figures),
        "sim_would_block": would_block,
        "reconnects": sum(f["reconnects"] for f in figures),
    }


COLUMNS = (
    ("hb_p50_ms", "hb p50"),
    ("hb_p99_ms", "hb p99"),
    ("hb_max_ms", "hb max"),
    ("ack_p99_ms", "ack p99"),
    ("ack_max_ms", "ack max"),
    ("ext_merge_p99_ms", "ext p99"),
    ("ext_merge_max_ms", "ext max"),
    ("missing_max", "missing"),
    ("cpu_pct", "CPU %"),
    ("io_cpu_pct", "io CPU %"),
    ("stats_p99_ms", "/stats p99"),
    ("stats_max_ms", "/stats max"),
    ("rss_start_mb", "RSS0 MB"),
    ("rss_end_mb", "RSS1 MB"),
    ("sim_late_p99_ms", "sim late p99"),
    ("unmerged", "unmerged"),
    ("requests_off", "req off"),
    ("admit_s", "admit s"),
    ("listen_overflows", "listen ovf"),
    ("rebuilds", "rebuilds"),
)
DECIMALS = {"admit_s": 2}
"""Decimals shown for a column (1 unless named here)."""


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def table(results: list[dict[str, Any]], workers: list[int]) -> list[dict[str, Any]]:
    """Print medians of valid runs per (setup, CURVE, N) and the ratios CURVE on / off;
    return the rows."""
    header = f"{'setup':<14} {'curve':>6} {'N':>5} {'valid':>5} " + " ".join(
        f"{h:>10}" for _, h in COLUMNS
    )
    print(header)
    print("-" * len(header))
    rows = []
    for n in workers:
        for setup in SETUPS:
            for curve in (False, True):
                runs = [
                    r
                    for r in results
                    if r["setup"] == setup and r["workers"] == n and r["curve"] == curve
                ]
                if not runs:
                    continue
                valid = [r for r in runs if r["valid"]]
                row: dict[str, Any] = {
                    "setup": setup,
                    "curve": curve,
                    "workers": n,
                    "valid": len(valid),
                }
                cells = []
                for key, _ in COLUMNS:
                    row[key] = _median(valid, key)
                    places = DECIMALS.get(key, 1)
                    cells.append("-" if row[key] is None else f"{row[key]:>10.{places}f}")
                mode = "on" if curve else "off"
                print(
                    f"{setup:<14} {mode:>6} {n:>5} {len(valid):>2}/{len(runs):<2} "
                    + " ".join(f"{c:>10}" for c in cells)
                )
                rows.append(row)
    _ratios(rows)
    print("ms unless noted; hb = heartbeat reply latency; ack = horde ack lag from sent_at;")
    print("ext = age of the oldest unmerged delta at each /stats/requests poll (marker count);")
    print("CPU % = the master process, all threads; io CPU % = its libzmq I/O threads;")
    print("medians over valid rounds; sim late = simulator lateness vs its schedule;")
    print("after the window the deltas stop: unmerged = deltas sent minus merged at most")
    print(
        f"{SETTLE_SECONDS:g} s later; req off = the total's requests minus those sent (0: exact);"
    )
    print("admit s = seconds from the last worker's connect to every worker's first ack;")
    print("listen ovf = connections dropped meanwhile for a full accept queue (kernel-wide);")
    print("rebuilds = sockets rebuilt for want of an ack; on/off = CURVE on / off.")
    return rows


def _ratios(rows: list[dict[str, Any]]) -> None:
    """Print, for each (setup, N) run both ways, every column's CURVE on / off ratio."""
    for on in [r for r in rows if r["curve"]]:
        off = next(
            (
                r
                for r in rows
                if not r["curve"] and r["setup"] == on["setup"] and r["workers"] == on["workers"]
            ),
            None,
        )
        if off is None:
            continue
        cells = []
        for key, _ in COLUMNS:
            a, b = on[key], off[key]
            cells.append("-" if a is None or not b else f"{a / b:.2f}x")
        print(
            f"{on['setup']:<14} {'on/off':>6} {on['workers']:>5} {'':>5} "
            + " ".join(f"{c:>10}" for c in cells)
        )


def goals(
    rows: list[dict[str, Any]], soak: bool, curve: bool = False
) -> tuple[int | None, list[str]]:
    """The goals the horde master with horde workers (CURVE clients when ``curve``)
    missed at the largest worker count run (the goal is 5,000): that count and the
    misses (empty: all met)."""
    ours = [r for r in rows if r["setup"] == "horde/horde" and r["curve"] == curve]
    if not ours:
        return None, []
    row = max(ours, key=lambda r: r["workers"])
    if not row["valid"]:
        return row["workers"], ["no valid run"]
    missed = []
    if row["hb_p99_ms"] is None or row["hb_p99_ms"] >= GOAL_HB_P99_MS:
        missed.append(f"heartbeat reply p99 {row['hb_p99_ms']} ms")
    if row["missing_max"] != 0:
        missed.append(f"{row['missing_max']} workers missing")
    if row["ack_max_ms"] is None or row["ack_max_ms"] >= GOAL_MERGE_MS:
        missed.append(f"merge lag max {row['ack_max_ms']} ms")
    if row["stats_p99_ms"] is None or row["stats_p99_ms"] >= GOAL_STATS_P99_MS:
        missed.append(f"/stats/requests p99 {row['stats_p99_ms']} ms")
    if soak and (row["rss_end_mb"] - row["rss_start_mb"]) * 2**20 >= GOAL_RSS_GROWTH:
        missed.append(f"RSS grew {row['rss_end_mb'] - row['rss_start_mb']:.1f} MB")
    return row["workers"], missed


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--workers", type=int, nargs="+", default=[1000, 5000])
    p.add_argument("--setups", nargs="+", choices=SETUPS, default=list(SETUPS))
    p.add_argument(
        "--curve",
        nargs="+",
        choices=("off", "on"),
        default=["off"],
        help="run horde/horde plain (off), with CurveZMQ (on), or both (off on)",
    )
    p.add_argument(
        "--worker-retry",
        choices=("fixed", "horde"),
        default="fixed",
        help="a simulated worker without an ack registers again on a fresh socket after 5 s"
        " (fixed) or on a horde worker's schedule (0.25 s, doubling up to 3 s)",
    )
    p.add_argument("--duration", type=float, default=60.0, help="measured seconds per run")
    p.add_argument("--soak", action="store_const", const=300.0, default=0.0)
    p.add_argument(
        "--warmup", type=float, default=None, help=f"seconds (default 10; soak {SOAK_WARMUP:g})"
    )
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--entries", type=int, default=100, help="entries per delta")
    p.add_argument("--buckets", type=int, default=10, help="histogram buckets per entry")
    p.add_argument("--quick", action="store_true", help="1 round of 20 s, 5 s warm-up")
    p.add_argument("--json", default="", help="also write every run's figures here")
    p.add_argument(
        "--horde-tree",
        default="",
        help="run the horde master from this directory (holding a horde/ package), e.g. an"
        " older version for comparison",
    )
    args = p.parse_args(argv)
    if args.warmup is None:
        args.warmup = SOAK_WARMUP if args.soak else 10.0
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 20.0, 5.0
    modes = sorted({mode == "on" for mode in args.curve})
    os.sched_setaffinity(0, {SIM_CORE})
    results: list[dict[str, Any]] = []
    k = 0
    with tempfile.TemporaryDirectory(prefix="horde-capacity-") as tmp:
        for rnd in range(args.rounds):
            for n in args.workers:
                for setup in args.setups:
                    for curve in modes:
                        if curve and setup not in CURVE_SETUPS:
                            continue  # Locust workers cannot speak CURVE
                        k += 1
                        with_curve = " with CURVE" if curve else ""
                        log(f"round {rnd + 1}/{args.rounds}: {setup} with {n} workers{with_curve}")
                        res = run_once(setup, n, args, Path(tmp), k, curve=curve)
                        res["round"] = rnd + 1
                        results.append(res)
                        brief = {
                            key: (round(v, DECIMALS.get(key, 1)) if isinstance(v, float) else v)
                            for key, v in res.items()
                        }
                        log(f"result: {json.dumps(brief)}")
                        time.sleep(2)  # let the ports and the kernel settle
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    rows = table(results, args.workers)
    status = 0
    for curve in modes:
        workers, missed = goals(rows, bool(args.soak), curve)
        who = "horde master, horde workers" + (" with CURVE" if curve else "")
        if missed:
            print(f"{who}, {workers}: MISSED " + "; ".join(missed))
            status = 1
        elif workers is not None:
            print(f"{who}, {workers}: all goals met")
    return status


if __name__ == "__main__":
    sys.exit(main())
