"""Headless outputs (--csv, --csv-full-history, --html, --json), --shape, and HTTPS with a token."""

from __future__ import annotations

import csv
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import trustme

from tests.support import processes, run_headless, start_master, start_target, wait_for

LOCUST_JSON_KEYS = [  # locust/stats.py StatsEntry.serialize(), in its order
    "name",
    "method",
    "last_request_timestamp",
    "start_time",
    "num_requests",
    "num_none_requests",
    "num_failures",
    "total_response_time",
    "max_response_time",
    "min_response_time",
    "total_content_length",
    "response_times",
    "num_reqs_per_sec",
    "num_fail_per_sec",
]


@pytest.mark.process
def test_headless_shape_run_writes_every_output(tmp_path: Path) -> None:
    """The script's only shape drives a headless run to its end without --shape, as in
    Locust; CSV, history, HTML and JSON outputs follow."""
    with processes() as procs:
        target = start_target(procs)
        done = run_headless(
            "shaped.py",
            target,
            "--print-stats",
            "1",
            "--csv",
            str(tmp_path / "out" / "run"),
            "--csv-full-history",
            "--html",
            str(tmp_path / "report.html"),
            "--json",
        )
    assert done.returncode == 0, done.stderr[-3000:]
    entries = json.loads(done.stdout)  # only JSON on stdout: the tables went to stderr
    assert [list(e) for e in entries] == [LOCUST_JSON_KEYS] * len(entries)
    by_name = {e["name"]: e for e in entries}
    assert by_name["/fast"]["num_requests"] > 0 and by_name["/login"]["num_requests"] > 0
    assert "load shape finished" in done.stderr and "users=4" in done.stderr
    assert "using the script's load shape" in done.stderr

    out = tmp_path / "out"
    with (out / "run_stats.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows[0][:4] == ["Type", "Name", "Request Count", "Failure Count"]
    assert rows[-1][1] == "Aggregated" and int(rows[-1][2]) == sum(
        e["num_requests"] for e in entries
    )
    for name in ("run_failures.csv", "run_exceptions.csv"):
        assert (out / name).read_text().count("\n") >= 1
    with (out / "run_stats_history.csv").open() as f:
        history = list(csv.reader(f))
    assert history[0][:4] == ["Timestamp", "User Count", "Type", "Name"]
    assert {row[3] for row in history[1:]} >= {"/fast", "Aggregated"}
    assert {row[1] for row in history[1:]} >= {"2", "4"}
    report = (tmp_path / "report.html").read_text()
    assert report.lower().startswith("<!doctype html>") and "/fast" in report and "/login" in report


@pytest.mark.process
def test_https_master_with_a_bearer_token(tmp_path: Path) -> None:
    """--tls-cert/--tls-key serve HTTPS; --web-auth-token guards every route."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with processes() as procs:
        started = start_master(
            procs,
            "basic.py",
            "--tls-cert",
            str(tmp_path / "cert.pem"),
            "--tls-key",
            str(tmp_path / "key.pem"),
            env={"HORDE_WEB_AUTH_TOKEN": "t0ken"},
            wait=False,
        )
        master, web = started.proc, started.web_port
        wait_for(lambda: "web ui" in procs.output(master), 20, "the web server")

        def fetch(token: str | None) -> int:
            request = urllib.request.Request(f"https://127.0.0.1:{web}/stats/requests")
            if token is not None:
                request.add_header("Authorization", f"Bearer {token}")
            try:
                with urllib.request.urlopen(request, timeout=5, context=context) as answer:
                    return int(answer.status)
            except urllib.error.HTTPError as exc:
                return exc.code

        assert fetch("t0ken") == 200
        assert fetch(None) == 401 and fetch("wrong") == 401
        assert "t0ken" not in procs.output(master)
