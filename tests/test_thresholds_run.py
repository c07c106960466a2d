"""Thresholds with real processes: a headless run's exit code (0, 1, 2, 99) against
``horde target``, its ``--junit`` file (validated against the vendored JUnit schema) and
``--json``, ``--abort-on-fail`` ending a run early, and a web master's ``/swarm`` field,
``GET /stats/thresholds``, ``/metrics`` and report."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
import xmlschema

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

pytestmark = pytest.mark.process

JUNIT_XSD = Path(__file__).resolve().parent / "junit" / "junit-10.xsd"
BASIC = SCRIPTS / "basic.py"
SHORT = ("-u", "2", "-r", "10", "-t", "2s")
"""Two users for two seconds: enough requests to measure, little load on 2 cores."""

FAILING = textwrap.dedent(
    """
    from horde import HttpUser, constant, task

    class Failing(HttpUser):
        wait_time = constant(0.05)

        @task
        def broken(self):
            self.client.get("/status/500")
    """
)
SCRIPTED = textwrap.dedent(
    """
    from horde import HttpUser, constant, task

    thresholds = ["p95<1us"]

    class Reader(HttpUser):
        wait_time = constant(0.05)

        @task
        def home(self):
            self.client.get("/fast")
    """
)


def _junit(path: Path) -> dict[str, object]:
    """The JUnit file's one test suite, after validating the file against the schema."""
    schema = xmlschema.XMLSchema(JUNIT_XSD)
    schema.validate(str(path))
    suite: dict[str, object] = schema.to_dict(str(path))["testsuite"][0]
    return suite


@pytest.mark.timeout(120)
def test_passing_thresholds_exit_0_with_junit_and_json(tmp_path: Path) -> None:
    """Thresholds that hold: exit 0, a valid JUnit file without failures, and --json
    holding Locust's list beside the thresholds."""
    junit = tmp_path / "out" / "thresholds.xml"
    junit.parent.mkdir()
    with processes() as procs:
        target = start_target(procs)
        done = run_headless(
            "basic.py", target, *SHORT, "--json", "--junit", str(junit),
            "--threshold", "p95<5s", "--threshold", "GET /fast: fail_ratio<0.5 over 1s",
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "All 2 thresholds passed." in done.stderr
    document = json.loads(done.stdout)
    assert document["stats"][0]["name"] == "/fast"
    assert document["thresholds"]["passed"] is True
    assert [t["threshold"] for t in document["thresholds"]["thresholds"]] == [
        "p95<5s",
        "GET /fast: fail_ratio<0.5 over 1s",
    ]
    suite = _junit(junit)
    assert (suite["@tests"], suite["@failures"]) == ("2", "0")


@pytest.mark.timeout(120)
def test_a_failed_threshold_exits_99_and_the_scripts_thresholds_count(tmp_path: Path) -> None:
    """The script's ``thresholds`` and --threshold both apply; one failing gives 99 (and
    ``--log-format json`` logs the verdict as one line)."""
    script = tmp_path / "scripted.py"
    script.write_text(SCRIPTED)
    junit = tmp_path / "junit.xml"
    with processes() as procs:
        target = start_target(procs)
        done = run_headless(
            script, target, *SHORT, "--threshold", "requests>0", "--junit", str(junit),
            "--log-format", "json",
        )  # fmt: skip
    assert done.returncode == 99, done.stdout[-3000:] + done.stderr[-3000:]
    logged = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    verdict = [line for line in logged if line.get("event") == "verdict"]
    assert len(verdict) == 1 and verdict[0]["passed"] is False, done.stderr[-3000:]
    assert "p95<1us" in done.stdout and "FAIL (first after" in done.stdout
    assert "1 of 2 thresholds failed." in done.stdout
    suite = _junit(junit)
    assert (suite["@tests"], suite["@failures"]) == ("2", "1")


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("flags", "code"), [(("--threshold", "p99<10s"), 0), ((), 1)])
def test_failed_requests_fail_a_run_only_without_thresholds(
    tmp_path: Path, flags: tuple[str, ...], code: int
) -> None:
    """Every request fails: with a passing threshold the run passes (0), without any it
    exits with --exit-code-on-error's 1, as in Locust."""
    script = tmp_path / "failing.py"
    script.write_text(FAILING)
    with processes() as procs:
        target = start_target(procs)
        done = run_headless(script, target, *SHORT, *flags)
    assert done.returncode == code, done.stderr[-3000:]
    assert "/status/500" in done.stdout


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--threshold", "p95<<1ms"), "--threshold 'p95<<1ms': column 5: expected a number"),
        (("--threshold", "p95<1ms over 1y"), "column 14: a window is a time span"),
        (("--abort-grace", "-1"), "abort_grace must be 0 or more"),
    ],
)
def test_a_bad_threshold_is_a_usage_error(flags: tuple[str, ...], message: str) -> None:
    """A threshold that does not parse ends the command with 2, naming the column."""
    command = [sys.executable, "-m", "horde", "run", "-f", str(BASIC)]
    done = subprocess.run(
        [*command, "--headless", *flags],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.timeout(120)
def test_abort_on_fail_ends_the_run_early_with_99() -> None:
    """A run of 60 s with a failing threshold stops once the grace has passed."""
    started = time.monotonic()
    with processes() as procs:
        target = start_target(procs)
        done = run_headless(
            "basic.py", target, "-u", "2", "-r", "10", "-t", "60s",
            "--threshold", "p95<1us", "--abort-on-fail", "--abort-grace", "1",
        )  # fmt: skip
    elapsed = time.monotonic() - started
    assert done.returncode == 99, done.stderr[-3000:]
    assert "The run was stopped early: a threshold failed (--abort-on-fail)." in done.stdout
    assert elapsed < 30, elapsed


@pytest.mark.timeout(120)
def test_a_swarm_sets_its_thresholds_and_the_web_api_shows_them() -> None:
    """``/swarm``'s ``thresholds``: a bad one is a 400 naming the field; good ones are
    judged every second and shown by /stats/thresholds, /metrics and the report."""
    with processes() as procs:
        target = start_target(procs)
        master = start_master(procs, "basic.py", "--threshold", "p50<10s", "-H", target)
        procs.horde("worker", "-f", str(BASIC), "--master", f"127.0.0.1:{master.zmq_port}")
        wait_for(lambda: get_json(f"{master.web}/worker-count")["worker_count"], 30, "a worker")
        status, body = post(
            f"{master.web}/swarm", {"user_count": "2", "spawn_rate": "10", "thresholds": "p9<1"}
        )
        assert status == 400 and "thresholds" in body["message"], body
        assert "column 5" in body["message"]
        before = get_json(f"{master.web}/stats/thresholds")
        assert before["thresholds"] == [] and before["run_id"] == ""
        fields = {"user_count": "2", "spawn_rate": "10", "thresholds": "p95<1us\nrequests>0"}
        status, body = post(f"{master.web}/swarm", fields)
        assert status == 200, body

        def judged() -> dict[str, object] | None:
            doc = get_json(f"{master.web}/stats/thresholds")
            results = doc["thresholds"]
            return doc if results and results[1]["ok"] and results[0]["value"] else None

        doc = wait_for(judged, 30, "the thresholds to be judged")
        assert doc["passed"] is False and doc["generator_ok"] is True
        first = doc["thresholds"][0]  # type: ignore[index]
        assert (first["threshold"], first["ok"], first["unit"]) == ("p95<1us", False, "ms")
        metrics = _text(f"{master.web}/metrics")
        assert 'horde_threshold_passing{threshold="p95<1us"} 0.0' in metrics
        assert 'horde_threshold_passing{threshold="requests>0"} 1.0' in metrics
        assert "Thresholds: failed" in _text(f"{master.web}/stats/report")
        post(f"{master.web}/stop")


def _text(url: str) -> str:
    """GET ``url`` as text."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text: str = response.read().decode()
        return text
