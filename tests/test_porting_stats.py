"""Module settings a script assigns on ``locust.stats`` (``horde.stats`` after the porting
rule) change the master's outputs as they change Locust's: the CSV files' percentile
columns and write interval, the summary, ``/stats/requests`` and the checks before a run."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

import horde
from horde.master.csvout import REQUESTS_HEADER, requests_csv
from horde.master.report import stats_report
from horde.master.stats import MergedStats
from horde.master.summary import percentiles_table
from horde.worker.stats import RequestRecorder
from tests.fault_support import SCRIPTS, counting_target
from tests.support import as_locust_script, probe_env, run_headless, run_locust_fleet

T0 = 1_700_000_000.0


def read_csv(path: Path) -> list[list[str]]:
    """The rows of a CSV file, header first."""
    with path.open(newline="") as fh:
        return list(csv.reader(fh))


def merged(*latencies_by_second: tuple[float, list[float]]) -> MergedStats:
    """Merged stats holding GET /a requests of the given latencies (ms), each second's
    requests received one second later."""
    stats = MergedStats(started_at=T0)
    for seq, (sec, latencies) in enumerate(latencies_by_second, 1):
        rec = RequestRecorder()
        for ms in latencies:
            rec.record("GET", "/a", ms, 10, None, sec)
        delta = rec.take_horde_delta(
            run_id="r", epoch=0, seq=seq, now=sec + 1, user_classes_count={}, user_count=0
        )
        stats.merge_horde("w1", delta, sec + 1)
        stats.fold()
    return stats


@pytest.mark.process
@pytest.mark.timeout(150)
def test_a_scripts_csv_settings_give_the_csv_files_locust_writes(tmp_path: Path) -> None:
    """Under Locust (master and worker) and under horde, the script's percentiles are the
    CSV files' columns, its rows have them, and its interval sets how often history grows."""
    locust_script = as_locust_script(SCRIPTS / "stats_settings.py", tmp_path)
    with counting_target() as target:
        done = run_headless(
            SCRIPTS / "stats_settings.py", target.url, "-u", "1", "-t", "3s",
            "--csv", str(tmp_path / "horde"), timeout=90,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        flags = ["-u", "1", "-r", "10", "-t", "3s", "--csv", str(tmp_path / "locust")]
        env = probe_env(tmp_path / "probe.log")
        assert run_locust_fleet(locust_script, target.url, flags, env, timeout=90)[0] == 0
    ours, theirs = read_csv(tmp_path / "horde_stats.csv"), read_csv(tmp_path / "locust_stats.csv")
    assert ours[0] == theirs[0]
    assert ours[0][-4:] == ["25%", "50%", "90%", "99.9%"]
    assert [r[:2] for r in ours[1:]] == [r[:2] for r in theirs[1:]]  # GET /a, GET /b, total
    assert all(len(r) == len(ours[0]) and float(r[-1]) > 0 for r in ours[1:])
    ours, theirs = (read_csv(tmp_path / f"{k}_stats_history.csv") for k in ("horde", "locust"))
    assert ours[0] == theirs[0]
    assert "99.9%" in ours[0] and "99%" not in ours[0]
    # a write every 0.25 s over a 3 s run: more rows than the default 1 s gives, on both sides
    assert len(ours) - 1 >= 8 and len(theirs) - 1 >= 8
    heading = next(line for line in done.stdout.splitlines() if "25%" in line)
    assert heading.split()[2:6] == ["25%", "50%", "90%", "99.9%"]


def test_stats_requests_carries_the_scripts_statistics_and_chart_percentiles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """/stats/requests rows have Locust's keys for the script's PERCENTILES_TO_STATISTICS,
    its chart part the keys for PERCENTILES_TO_CHART, as Locust's StatsEntry and UI give."""
    from locust import stats as locust_stats

    for name, value in (("PERCENTILES_TO_STATISTICS", [0.9]), ("PERCENTILES_TO_CHART", [0.25])):
        monkeypatch.setattr(horde.stats, name, value)
        monkeypatch.setattr(locust_stats, name, value)
    theirs = locust_stats.RequestStats()
    theirs.log_request("GET", "/a", 10, 0)
    report = stats_report(merged((T0 + 1, [10.0])), T0 + 3)
    assert list(report["stats"][0]) == list(theirs.get("/a", "GET").to_dict())
    assert "response_time_percentile_0.9" in report["stats"][0]
    assert list(report["current_response_time_percentiles"]) == ["response_time_percentile_0.25"]


def test_report_percentiles_are_read_when_each_output_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CSV and the summary follow PERCENTILES_TO_REPORT as it is when they are made,
    also when a script mutates Locust's list in place; untouched, they are the defaults."""
    stats = merged((T0 + 1, [10.0, 20.0]))
    assert requests_csv(stats, T0 + 3).splitlines()[0].split(",") == list(REQUESTS_HEADER)
    monkeypatch.setattr(horde.stats, "PERCENTILES_TO_REPORT", [0.5])
    horde.stats.PERCENTILES_TO_REPORT.append(0.95)
    assert requests_csv(stats, T0 + 3).splitlines()[0].endswith("Failures/s,50%,95%")
    assert percentiles_table(stats).splitlines()[1].split()[2:] == ["50%", "95%", "#", "reqs"]


def test_the_current_percentile_window_is_the_scripts(monkeypatch: pytest.MonkeyPatch) -> None:
    """CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW sets the seconds behind the chart's
    percentiles: 3 s sees only the recent fast requests, 10 s the slow ones before too."""
    slow = [(T0 + s, [900.0] * 5) for s in range(1, 6)]
    fast = [(T0 + s, [10.0]) for s in range(6, 10)]
    stats = merged(*slow, *fast)
    monkeypatch.setattr(horde.stats, "PERCENTILES_TO_CHART", [0.5])
    report = stats_report(stats, T0 + 10)
    assert report["current_response_time_percentiles"]["response_time_percentile_0.5"] > 800
    monkeypatch.setattr(horde.stats, "CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW", 3)
    report = stats_report(stats, T0 + 10)
    assert report["current_response_time_percentiles"]["response_time_percentile_0.5"] < 11


BAD_CHART = """
from horde import HttpUser, stats, task

stats.PERCENTILES_TO_CHART = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]


class Reader(HttpUser):
    @task
    def read(self):
        self.client.get("/")
"""


@pytest.mark.process
@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("", "PERCENTILES_TO_CHART parameter should be a maximum of 6 parameters"),
        ("stats.PERCENTILES_TO_STATISTICS = [95]\n", "PERCENTILES_TO_STATISTICS parameter need"),
    ],
)
def test_settings_locust_refuses_end_the_run_before_it_starts(
    tmp_path: Path, setting: str, message: str
) -> None:
    """Seven chart percentiles, or a statistics percentile out of (0, 1), end horde with 1
    and Locust's message before any request, as under Locust."""
    script = tmp_path / "bad.py"
    text = BAD_CHART if not setting else BAD_CHART.replace(", 0.7]", "]") + setting
    script.write_text(text)
    with counting_target() as target:
        ours = run_headless(script, target.url, "-u", "1", "-t", "2s", timeout=60)
        locust = [sys.executable, "-m", "locust", "-f", str(as_locust_script(script, tmp_path))]
        theirs = subprocess.run(
            [*locust, "--headless", "-u", "1", "-t", "2s", "-H", target.url],
            env=probe_env(tmp_path / "probe.log"), capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
        assert target.total() == 0
    assert (ours.returncode, theirs.returncode) == (1, 1)
    assert message in ours.stderr and message in theirs.stderr


def test_horde_stats_offers_locusts_settings_with_locusts_values() -> None:
    """Every upper-case setting of locust.stats exists in horde.stats with Locust's default,
    and ``import horde as locust`` reaches it as ``locust.stats``."""
    from locust import stats as locust_stats

    names = {n for n in vars(locust_stats) if n.isupper() and len(n) > 1} - {"TYPE_CHECKING"}
    assert names == set(horde.stats.__all__)
    for name in names - {"STATS_NAME_WIDTH"}:  # Locust's depends on the terminal's width
        assert getattr(horde.stats, name) == getattr(locust_stats, name), name
    import horde as locust

    assert locust.stats is horde.stats
