"""The numbers: seeded distributions read back within 1%, a fixed delay end to end, and the
coordinated-omission corrected series of pacing users.

Real processes: a master and two workers on loopback. The distributions go through the
public ``events.request`` API on both workers (different seeds) and are read back from the
master's JSON (``/stats/requests``) and CSV (``/stats/requests/csv``); each figure must be
within 1% of the exact nearest-rank value of the union of what the workers recorded.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import statistics
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    SCRIPTS,
    get_json,
    post,
    processes,
    run_headless,
    start_master,
    start_target,
    wait_for,
)

CSV_PERCENTILES = {
    "50%": 0.5,
    "66%": 0.66,
    "75%": 0.75,
    "80%": 0.8,
    "90%": 0.9,
    "95%": 0.95,
    "98%": 0.98,
    "99%": 0.99,
    "99.9%": 0.999,
    "99.99%": 0.9999,
    "100%": 1.0,
}
JSON_PERCENTILES = {
    "median_response_time": 0.5,
    "response_time_percentile_0.95": 0.95,
    "response_time_percentile_0.99": 0.99,
    "max_response_time": 1.0,
    "min_response_time": 0.0,
}
TOLERANCE = 0.01


def _distributions() -> Any:
    spec = importlib.util.spec_from_file_location("distributions", SCRIPTS / "distributions.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nearest_rank(values: list[float], p: float) -> float:
    """The exact nearest-rank percentile: the ceil(p * n)-th smallest value (p=0: the min)."""
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(p * len(ordered))))
    return ordered[rank - 1]


def _read_csv(url: str) -> list[dict[str, str]]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return list(csv.DictReader(io.StringIO(response.read().decode())))


@pytest.mark.process
def test_seeded_distributions_read_back_within_one_percent() -> None:
    """Lognormal, bimodal, sub-ms and multi-second samples from two workers: JSON and CSV
    percentiles, min, max and mean all within 1% of the exact values."""
    module = _distributions()
    union: dict[str, list[float]] = {}
    for seed in (1, 2):
        for name, values in module.samples(seed).items():
            union.setdefault(name, []).extend(values)
    per_worker = sum(len(v) for v in module.samples(1).values())
    with processes() as procs:
        master = start_master(procs, SCRIPTS / "distributions.py")
        for seed in (1, 2):
            procs.horde(
                "worker",
                "--master",
                f"127.0.0.1:{master.zmq_port}",
                "-f",
                str(SCRIPTS / "distributions.py"),
                env={"HORDE_TEST_SEED": str(seed)},
            )
        web = master.web
        wait_for(lambda: get_json(f"{web}/worker-count")["worker_count"] == 2, 30, "2 workers")
        status, _ = post(f"{web}/swarm", {"user_count": 2, "spawn_rate": 2})
        assert status == 200

        def merged() -> dict[str, Any] | None:
            report = get_json(f"{web}/stats/requests")
            total = next(r for r in report["stats"] if r["name"] == "Aggregated")
            return report if total["num_requests"] == 2 * per_worker else None

        report = wait_for(merged, 60, "every sample merged on the master")
        # one user per worker, so each seed was recorded exactly once
        assert sorted(w["requests"] for w in report["workers"]) == [per_worker, per_worker]
        rows = {r["name"]: r for r in report["stats"]}
        csv_rows = {r["Name"]: r for r in _read_csv(f"{web}/stats/requests/csv")}

    worst = (0.0, "")
    for name, values in union.items():
        figures: list[tuple[str, float, float]] = []
        for key, p in JSON_PERCENTILES.items():
            figures.append((f"JSON {key}", float(rows[name][key]), nearest_rank(values, p)))
        figures.append(
            ("JSON avg", float(rows[name]["avg_response_time"]), statistics.fmean(values))
        )
        for column, p in CSV_PERCENTILES.items():
            figures.append(
                (f"CSV {column}", float(csv_rows[name][column]), nearest_rank(values, p))
            )
        figures.append(("CSV Min", float(csv_rows[name]["Min Response Time"]), min(values)))
        assert int(csv_rows[name]["Request Count"]) == len(values)
        for label, shown, exact in figures:
            error = abs(shown - exact) / exact
            assert error <= TOLERANCE, f"{name} {label}: shown {shown}, exact {exact:.4f}"
            worst = max(worst, (error, f"{name} {label}"))
    print(f"worst relative percentile error: {worst[0]:.4%} ({worst[1]})")


@pytest.mark.process
def test_fixed_server_delay_median_within_delay_plus_loopback_overhead() -> None:
    """A 40 ms server-side delay is reported as 40 ms plus at most the measured overhead."""
    with processes() as procs:
        target = start_target(procs)
        master = start_master(procs, SCRIPTS / "delayed.py")
        procs.horde("worker", "--master", f"127.0.0.1:{master.zmq_port}")
        web = master.web
        wait_for(lambda: get_json(f"{web}/worker-count")["worker_count"] == 1, 30, "a worker")

        def phase(user_class: str, name: str, count: int) -> dict[str, Any]:
            post(f"{web}/stats/reset")
            status, body = post(
                f"{web}/swarm",
                {"user_count": 2, "spawn_rate": 10, "host": target, "user_classes": user_class},
            )
            assert status == 200, body

            def row() -> dict[str, Any] | None:
                stats = get_json(f"{web}/stats/requests")["stats"]
                found = next((r for r in stats if r["name"] == name), None)
                return found if found and found["num_requests"] >= count else None

            found = wait_for(row, 60, f"{count} requests to {name}")
            post(f"{web}/stop")
            wait_for(lambda: get_json(f"{web}/stats/requests")["state"] == "stopped", 20, "stop")
            return found

        probe = phase("Probe", "/fast", 400)
        delayed = phase("Delayed", "/delay", 150)
    overhead = probe["response_time_percentile_0.99"]
    median = delayed["median_response_time"]
    print(f"loopback overhead p99 {overhead} ms, median {probe['median_response_time']} ms;")
    print(f"delayed median {median} ms for a 40 ms delay")
    assert 40.0 <= median <= 40.0 + overhead + 1.0, (median, overhead)


@pytest.mark.process
def test_pacing_users_get_a_corrected_series(tmp_path: Path) -> None:
    """Iterations due every 50 ms that take 80 ms start ~30 ms late: the corrected series
    charges it (summary, JSON extra key, PREFIX_stats_corrected.csv); a plain user has none."""
    with processes() as procs:
        target = start_target(procs)
        done = run_headless(
            "paced.py",
            target,
            "-u",
            "4",
            "-r",
            "4",
            "-t",
            "4s",
            "--csv",
            str(tmp_path / "run"),
            "--json",
        )
    assert done.returncode == 0, done.stderr[-3000:]
    entries = {e["name"]: e for e in json.loads(done.stdout)}
    assert "corrected" not in entries["/fast"]
    paced = entries["/paced"]
    fixed = paced["corrected"]
    assert fixed["num_requests"] == paced["num_requests"]
    raw_median = paced["total_response_time"] / paced["num_requests"]
    assert 80 <= raw_median < 100
    assert 100 <= fixed["median_response_time"] <= 130, fixed
    assert fixed["min_response_time"] >= paced["min_response_time"]
    assert "corrected for coordinated omission" in done.stderr
    with (tmp_path / "run_stats_corrected.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["Name"] for r in rows] == ["/paced", "Aggregated"]
    assert int(rows[0]["Request Count"]) == paced["num_requests"]
    assert float(rows[0]["Median Response Time"]) == fixed["median_response_time"]
    with (tmp_path / "run_stats.csv").open() as f:
        assert next(csv.reader(f))[:3] == ["Type", "Name", "Request Count"]
