"""Thresholds, pure: the language, the metric table, sliding windows, verdicts, generator
health, exit codes and the JUnit file (validated against the vendored JUnit schema)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import xmlschema

from horde.cli import apply_env, build_parser
from horde.configfile import apply_config
from horde.master.entry import MergedEntry, Span
from horde.master.forms import FieldError, parse_swarm
from horde.master.registry import WorkerState
from horde.master.saturation import SATURATION_NOTE, SaturationWatch, over_limits
from horde.master.stats import MergedStats
from horde.master.swarm import RunState
from horde.master.threshold_syntax import (
    METRIC_KINDS,
    ThresholdSyntaxError,
    parse_threshold,
)
from horde.master.threshold_watch import (
    MAX_STEPS,
    SlidingWindow,
    ThresholdResult,
    ThresholdWatch,
)
from horde.master.thresholds import (
    REQUEST_METRICS,
    RUN_METRICS,
    Figures,
    ThresholdInputs,
    entry_figures,
    measure,
)
from horde.master.verdict import Verdict, VerdictReport
from horde.master.verdict_out import json_document, junit_xml, run_exit_code, verdict_text

JUNIT_XSD = Path(__file__).resolve().parent / "junit" / "junit-10.xsd"

# --- the language ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("p95<200ms", (None, "percentile", "<", 200.0, 0.95, None)),
        ("p99.9<1s", (None, "percentile", "<", 1000.0, 0.999, None)),
        ("p(99) <= 250 us", (None, "percentile", "<=", 0.25, 0.99, None)),
        ("avg<50ms", (None, "avg", "<", 50.0, None, None)),
        ("fail_ratio<0.01", (None, "fail_ratio", "<", 0.01, None, None)),
        ("fail_ratio<1%", (None, "fail_ratio", "<", 0.01, None, None)),
        ("rps>1000", (None, "rps", ">", 1000.0, None, None)),
        ("dropped_iterations==0", (None, "dropped_iterations", "==", 0.0, None, None)),
        ("Reader: dropped_iterations==0", ("Reader", "dropped_iterations", "==", 0.0, None, None)),
        ("GET /items/[id]: p99<300ms", ("GET /items/[id]", "percentile", "<", 300.0, 0.99, None)),
        ("a: b: max!=2s", ("a: b", "max", "!=", 2000.0, None, None)),
        ("p95<200ms over 30s", (None, "percentile", "<", 200.0, 0.95, 30.0)),
        ("/x: fail_rps>=0.5 over 2m", ("/x", "fail_rps", ">=", 0.5, None, 120.0)),
        ("generator_ok", (None, "generator_ok", "==", 1.0, None, None)),
        ("generator_ok==0", (None, "generator_ok", "==", 0.0, None, None)),
    ],
)
def test_good_thresholds_parse(text: str, expected: tuple[Any, ...]) -> None:
    """Each spelling of the language reads as its scope, metric, comparison and window."""
    scope, metric, op, bound, quantile, window = expected
    t = parse_threshold(text)
    assert (t.scope, t.metric, t.op, t.window, t.quantile) == (scope, metric, op, window, quantile)
    assert t.bound == pytest.approx(bound)
    assert t.text == text.strip()


@pytest.mark.parametrize(
    ("text", "column", "problem"),
    [
        ("", 1, "empty threshold"),
        ("p95<200", 8, "a time needs a unit"),
        ("p95<<200ms", 5, "expected a number"),
        ("p95 200ms", 5, "expected a comparison"),
        ("px<1ms", 1, "unknown metric 'px'"),
        ("percentile<1ms", 1, "unknown metric"),
        ("p101<1ms", 1, "between p0 and p100"),
        ("fail_ratio<1ms", 13, "takes no unit, or %"),
        ("rps>10%", 7, "takes no unit"),
        ("p95<1%", 6, "not %"),
        ("rps>10 extra", 8, "unexpected 'extra'"),
        ("p95<200ms over 2x", 16, "a window is a time span"),
        ("p95<200ms over 2h", 16, "a window lasts from 1 s"),
        (": p95<1ms", 1, "empty scope"),
        ("x: generator_ok", 1, "takes no scope"),
        ("generator_ok over 5s", 14, "takes no window"),
        ("dropped_iterations==0 over 5s", 23, "takes no window"),
        ("  avg < fast", 9, "expected a number"),
    ],
)
def test_bad_thresholds_name_the_column(text: str, column: int, problem: str) -> None:
    """A bad expression is refused with the 1-based column of the problem and a reason."""
    with pytest.raises(ThresholdSyntaxError) as caught:
        parse_threshold(text)
    assert caught.value.column == column, str(caught.value)
    assert problem in caught.value.problem
    assert f"column {column}:" in str(caught.value)


def test_every_metric_has_exactly_one_way_to_be_measured() -> None:
    """The metric tables cover every name the language knows, each once."""
    assert set(REQUEST_METRICS) | set(RUN_METRICS) == set(METRIC_KINDS)
    assert not set(REQUEST_METRICS) & set(RUN_METRICS)


# --- measuring ------------------------------------------------------------------------


def _entry(method: str, name: str, times_ms: list[float], failures: int = 0) -> MergedEntry:
    """A merged entry that saw one request per time in ``times_ms``."""
    entry = MergedEntry(method, name, Span(0.0))
    for ms in times_ms:
        us = round(ms * 1000)
        entry.hist.record(us)
        entry.num_requests += 1
        entry.total_rt_us += us
        entry.min_rt_us = us if entry.min_rt_us is None else min(entry.min_rt_us, us)
        entry.max_rt_us = max(entry.max_rt_us, us)
    entry.num_failures = failures
    return entry


def _inputs(entries: list[MergedEntry], now: float = 10.0, **extra: Any) -> ThresholdInputs:
    """What thresholds read: ``entries`` and their total, a run from 0 to ``now``."""
    total = _entry("", "Aggregated", [])
    for e in entries:
        total.hist.merge(e.hist)
        total.num_requests += e.num_requests
        total.num_failures += e.num_failures
        total.total_rt_us += e.total_rt_us
        total.max_rt_us = max(total.max_rt_us, e.max_rt_us)
        mins = [m for m in (total.min_rt_us, e.min_rt_us) if m is not None]
        total.min_rt_us = min(mins) if mins else None
    return ThresholdInputs(now, entries, total, 0.0, now, **extra)


ONE_TO_HUNDRED = [float(ms) for ms in range(1, 101)]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("GET /a: p95<1s", 95.0),
        ("GET /a: p50<1s", 50.0),
        ("GET /a: p100<1s", 100.0),
        ("GET /a: med<1s", 50.0),
        ("GET /a: min<1s", 1.0),
        ("GET /a: max<1s", 100.0),
        ("GET /a: avg<1s", 50.5),
        ("GET /a: fail_ratio<1", 10 / 100),
        ("p95<1s", 97.0),  # the whole run: 102 requests, two of them /b's
        ("max<1s", 1000.0),
        ("avg<1s", (5050 + 2000) / 102),
        ("fail_ratio<1", 10 / 102),
        ("rps>1", 102 / 10),
        ("fail_rps>1", 10 / 10),
        ("requests>1", 102.0),
        ("failures>1", 10.0),
        ("GET /a: requests>1", 100.0),
        ("/a: avg<1s", 50.5),
        ("Aggregated: requests>1", 102.0),
        ("POST /b: p50<1s", 1000.0),
        ("/missing: p95<1ms", None),  # no data: fails nothing
        ("/missing: fail_ratio<0.1", None),
        ("/missing: requests>0", 0.0),  # but a scope never seen has no requests
        ("/missing: rps>1", 0.0),
        ("dropped_iterations==0", 7.0),
        ("Pacer: dropped_iterations==0", 5.0),
        ("Other: dropped_iterations==0", 0.0),
        ("generator_ok", 1.0),
    ],
)
def test_metrics_measure_known_histograms(text: str, value: float | None) -> None:
    """Each metric's value over known figures (percentiles within the histogram's 1%)."""
    inputs = _inputs(
        [_entry("GET", "/a", ONE_TO_HUNDRED, failures=10), _entry("POST", "/b", [1000.0, 1000.0])],
        dropped_iterations={"Pacer": 5, "Reader": 2},
    )
    measured = measure(parse_threshold(text), inputs)
    if value is None:
        assert measured is None
    else:
        assert measured == pytest.approx(value, rel=0.01)


def test_a_scope_by_name_merges_its_methods() -> None:
    """A scope naming only a name takes every method's requests under it."""
    inputs = _inputs([_entry("GET", "/a", [1.0] * 3), _entry("POST", "/a", [9.0])])
    assert measure(parse_threshold("/a: requests>0"), inputs) == 4.0
    assert measure(parse_threshold("/a: max<1s"), inputs) == pytest.approx(9.0)
    assert measure(parse_threshold("POST /a: requests>0"), inputs) == 1.0


# --- windows and verdicts ----------------------------------------------------------------


class Run:
    """A run on a virtual clock: each second adds requests to one cumulative entry."""

    def __init__(self) -> None:
        self.entry = _entry("GET", "/a", [])
        self.now = 0.0

    def second(self, count: int, ms: float) -> ThresholdInputs:
        """One more second with ``count`` requests of ``ms`` each."""
        self.now += 1.0
        more = _entry("GET", "/a", [ms] * count)
        e = self.entry
        e.hist.merge(more.hist)
        e.num_requests += more.num_requests
        e.total_rt_us += more.total_rt_us
        e.max_rt_us = max(e.max_rt_us, more.max_rt_us)
        e.min_rt_us = (
            more.min_rt_us if e.min_rt_us is None else min(e.min_rt_us, more.min_rt_us or 0)
        )
        return _inputs([e], self.now)


def test_a_window_holds_only_its_last_seconds() -> None:
    """A sliding window's figures are the last W seconds' requests, not the run's."""
    run = Run()
    window = SlidingWindow(5.0, 0.0)
    for count, ms in [(100, 10.0)] * 10 + [(50, 300.0)] * 2:
        inputs = run.second(count, ms)
        window.add(_figures(inputs), run.now)
    figures = window.figures(run.now)
    assert figures is not None
    assert (figures.requests, figures.seconds) == (3 * 100 + 2 * 50, 5.0)
    assert figures.hist.total == 400
    assert figures.total_rt_us == 300 * 10_000 + 100 * 300_000


def _figures(inputs: ThresholdInputs) -> Figures | None:
    """The cumulative figures of the run's one entry."""
    return entry_figures(list(inputs.entries), 0.0)


def test_a_long_window_keeps_a_bounded_number_of_steps() -> None:
    """An hour's window keeps at most MAX_STEPS steps, its figures spanning one step more."""
    run = Run()
    window = SlidingWindow(3600.0, 0.0)
    for _ in range(5000):
        window.add(_figures(run.second(2, 5.0)), run.now)
    assert len(window._steps) <= MAX_STEPS + 1
    figures = window.figures(run.now)
    assert figures is not None and window.full(run.now)
    assert 3600.0 <= figures.seconds <= 3600.0 + 3600.0 / MAX_STEPS
    assert figures.requests == 2 * figures.seconds
    assert figures.hist.total == figures.requests


def test_a_window_starts_over_when_the_stats_are_reset() -> None:
    """Cumulative figures that go down (a stats reset) empty the window."""
    run = Run()
    window = SlidingWindow(10.0, 0.0)
    for _ in range(3):
        window.add(_figures(run.second(10, 5.0)), run.now)
    run.entry = _entry("GET", "/a", [])
    window.add(_figures(run.second(4, 5.0)), run.now)
    figures = window.figures(run.now)
    assert figures is not None and figures.requests == 4


def test_a_windowed_threshold_fails_for_good_while_the_whole_run_passes() -> None:
    """One slow second fails ``p95<100ms over 5s`` for good, showing the worst window;
    over the whole run the same spike is under 5% of requests and passes."""
    thresholds = [parse_threshold("p95<100ms over 5s"), parse_threshold("p95<100ms")]
    watch = ThresholdWatch(thresholds, 0.0)
    run = Run()
    seen = []
    for count, ms in [(100, 10.0)] * 10 + [(100, 300.0)] + [(100, 10.0)] * 19:
        windowed, whole = watch.check(run.second(count, ms))
        seen.append((run.now, windowed.ok, windowed.judged))
    assert seen[3] == (4.0, True, False)  # not judged before the window is full
    assert seen[9] == (10.0, True, True)
    assert seen[10] == (11.0, False, True)
    assert (windowed.ok, windowed.first_failed_after) == (False, 11.0)
    assert windowed.value == pytest.approx(300.0, rel=0.01)  # the worst window
    assert whole.ok and whole.value == pytest.approx(10.0, rel=0.01)
    assert not watch.passed


def test_a_whole_run_threshold_is_judged_on_the_final_figures() -> None:
    """A whole-run threshold that failed on the way passes if the final figures do."""
    watch = ThresholdWatch([parse_threshold("avg<100ms")], 0.0)
    run = Run()
    first = watch.check(run.second(10, 500.0))[0]
    assert not first.ok and first.first_failed_after == 1.0
    last = None
    for _ in range(20):
        last = watch.check(run.second(100, 10.0))[0]
    assert last is not None and last.ok and watch.passed
    assert last.first_failed_after == 1.0  # kept, for the record


def test_a_run_shorter_than_its_window_is_judged_on_the_whole_run_at_the_end() -> None:
    """Before its window fills, a windowed threshold is shown, not judged, until the end."""
    watch = ThresholdWatch([parse_threshold("p95<100ms over 1m")], 0.0)
    run = Run()
    for _ in range(5):
        result = watch.check(run.second(10, 500.0))[0]
        assert result.ok and not result.judged
    final = watch.check(run.second(10, 500.0), final=True)[0]
    assert final.judged and not final.ok


def _snapshot(
    stats: MergedStats, now: float, state: RunState, thresholds: tuple[Any, ...], **kw: Any
) -> Any:
    """A stand-in for the master's snapshot: only what the verdict reads."""
    run = SimpleNamespace(now=now, run_id="run1", state=state)
    workers = kw.get("workers", ())
    return SimpleNamespace(
        run=run, stats=stats, workers=workers, thresholds=thresholds, arrivals=()
    )


def test_abort_on_fail_waits_for_the_grace_then_fires_once() -> None:
    """``--abort-on-fail`` stops a failing run only after the grace, and asks only once."""
    stats = MergedStats(started_at=100.0)
    stats.total.hist.record(500_000)
    stats.total.num_requests = 1
    stats.total.total_rt_us = 500_000
    stats.total.min_rt_us = stats.total.max_rt_us = 500_000
    thresholds = (parse_threshold("p95<100ms"),)
    verdict = Verdict(abort_on_fail=True, abort_grace=10.0)
    decisions = []
    for now in (101.0, 105.0, 110.0, 111.0):
        verdict.observe(_snapshot(stats, now, RunState.RUNNING, thresholds))
        decisions.append(verdict.should_abort(now))
    assert decisions == [False, False, True, False]
    assert verdict.report.aborted and not verdict.report.passed


def test_no_abort_without_the_flag_and_a_final_report_is_kept() -> None:
    """Without ``--abort-on-fail`` nothing stops; a stopped run's report stays final."""
    stats = MergedStats(started_at=0.0)
    verdict = Verdict()
    thresholds = (parse_threshold("requests>5"),)
    verdict.observe(_snapshot(stats, 50.0, RunState.RUNNING, thresholds))
    assert not verdict.should_abort(50.0)
    final = verdict.observe(_snapshot(stats, 51.0, RunState.STOPPED, thresholds))
    assert final.final and not final.passed
    stats.total.num_requests = 10
    assert verdict.observe(_snapshot(stats, 52.0, RunState.STOPPED, thresholds)) is final


# --- generator health -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("samples", "flagged_at"),
    [
        ([(t, 95.0, 0.0) for t in range(7)], 6),  # 6 s over the CPU limit: flagged after 5
        ([(t, 95.0, 0.0) for t in range(6)], None),  # exactly 5 s: not "more than 5"
        ([(t, 10.0, 0.2) for t in range(8)], 6),  # loop lag alone
        ([(t, 95.0 if t != 3 else 50.0, 0.0) for t in range(9)], None),  # broken streaks
        ([(t, 90.0, 0.1) for t in range(20)], None),  # at the limits is not over them
        ([(t, 20.0, None) for t in range(20)], None),  # no lag reported (Locust workers)
    ],
)
def test_a_generator_is_flagged_after_more_than_five_seconds_over_a_limit(
    samples: list[tuple[float, float, float | None]], flagged_at: float | None
) -> None:
    """One worker's samples: flagged the first time a streak over a limit passes 5 s."""
    watch = SaturationWatch()
    first = None
    for now, cpu, lag in samples:
        watch.observe("w1", cpu, lag, now)
        if watch.flag is not None and first is None:
            first = now
    assert first == flagged_at
    assert watch.ok is (flagged_at is None)


def test_saturation_is_per_worker_and_a_lost_worker_ends_its_streak() -> None:
    """Two workers' streaks do not add up, and forgetting a worker ends its streak."""
    watch = SaturationWatch()
    for now in range(4):
        watch.observe("a", 99.0, None, now)
        watch.observe("b", 99.0, None, now + 3)
    watch.forget("a")
    watch.observe("a", 99.0, None, 8.0)
    assert watch.ok
    assert over_limits(91.0, None) and not over_limits(89.0, 0.05)


def test_generator_ok_fails_once_a_worker_is_saturated() -> None:
    """``generator_ok`` reads the verdict's health watch; the report carries the note."""
    stats = MergedStats(started_at=0.0)
    busy = SimpleNamespace(worker_id="w1", state=WorkerState.RUNNING, cpu_usage=99.0, loop_lag=0.3)
    verdict = Verdict()
    thresholds = (parse_threshold("generator_ok"),)
    report = VerdictReport()
    for now in range(8):
        report = verdict.observe(
            _snapshot(stats, float(now), RunState.RUNNING, thresholds, workers=(busy,))
        )
    assert report.saturation is not None and not report.passed
    assert SATURATION_NOTE in verdict_text(report)
    assert report.to_json()["generator_ok"] is False


# --- outputs ------------------------------------------------------------------------------


def _report(*texts_and_values: tuple[str, float]) -> VerdictReport:
    """A final report of thresholds measured at the given values (whole run)."""
    results = []
    for text, value in texts_and_values:
        t = parse_threshold(text)
        results.append(ThresholdResult(t, value, t.passes(value), None if t.passes(value) else 3.0))
    return VerdictReport("run1", tuple(results), None, True)


@pytest.mark.parametrize(
    ("report", "failed", "code"),
    [
        (VerdictReport(), False, 0),
        (VerdictReport(), True, 1),
        (_report(("p95<200ms", 150.0)), True, 0),  # with thresholds, failures alone do not fail
        (_report(("p95<200ms", 250.0)), False, 99),
        (_report(("p95<200ms", 150.0), ("fail_ratio<0.01", 0.5)), True, 99),
    ],
)
def test_exit_codes_of_a_run_that_ended_as_planned(
    report: VerdictReport, failed: bool, code: int
) -> None:
    """Thresholds decide when set (0 or 99); otherwise failed requests give 1."""
    assert run_exit_code(report, failed=failed, exit_code_on_error=1) == code


def test_without_thresholds_the_outputs_are_unchanged() -> None:
    """No threshold and a healthy generator: no summary lines, Locust's JSON list as is."""
    assert verdict_text(VerdictReport()) == ""
    stats = [{"name": "/a"}]
    assert json_document(stats, VerdictReport()) is stats


def test_the_summary_and_json_show_each_threshold() -> None:
    """Each threshold appears with its measured value and verdict."""
    report = _report(("p95<200ms", 250.0), ("rps>10", 12.5))
    text = verdict_text(report)
    assert "p95<200ms" in text and "250 ms" in text and "FAIL (first after 3 s)" in text
    assert "12.5" in text and "1 of 2 thresholds failed." in text
    document = json_document([], report)
    assert document["thresholds"]["passed"] is False
    assert [t["ok"] for t in document["thresholds"]["thresholds"]] == [False, True]


def test_the_junit_file_is_valid_and_has_one_case_per_threshold(tmp_path: Path) -> None:
    """The JUnit XML validates against the published schema; failures carry the value."""
    report = _report(("GET /a: p95<200ms", 250.0), ("fail_ratio<0.01", 0.0), ("x<y: rps>1", 2.0))
    xml = junit_xml(report, duration=12.3456, timestamp="2026-01-01T00:00:00", hostname="h")
    path = tmp_path / "junit.xml"
    path.write_text(xml, encoding="utf-8")
    schema = xmlschema.XMLSchema(JUNIT_XSD)
    schema.validate(str(path))
    parsed = schema.to_dict(str(path))
    suite = parsed["testsuite"][0]
    assert (suite["@tests"], suite["@failures"], suite["@time"]) == ("3", "1", "12.346")
    cases = suite["testcase"]
    assert [c["@name"] for c in cases] == ["GET /a: p95<200ms", "fail_ratio<0.01", "x<y: rps>1"]
    assert "250 ms" in cases[0]["failure"][0]["@message"]
    assert "failure" not in cases[1]


def test_a_swarm_field_is_parsed_or_refused_by_name() -> None:
    """``/swarm``'s ``thresholds``: lines or repeated values; a bad one names the field."""
    request = parse_swarm({"user_count": "1", "thresholds": "p95<1s\n\nrps>1"})
    assert [t.text for t in request.thresholds or ()] == ["p95<1s", "rps>1"]
    assert parse_swarm({"user_count": "1", "thresholds": ""}).thresholds == ()
    assert parse_swarm({"user_count": "1"}).thresholds is None
    with pytest.raises(FieldError) as caught:
        parse_swarm({"user_count": "1", "thresholds": ["p95<1s", "p95<1"]})
    assert caught.value.field == "thresholds" and "column 6" in str(caught.value)


def test_thresholds_come_from_the_environment_and_config_files(tmp_path: Path) -> None:
    """``HORDE_THRESHOLD`` and a config file's ``threshold`` hold several, ';' apart;
    flags add to them."""
    parser = build_parser()
    apply_env(parser, {"HORDE_THRESHOLD": "p95<1s; rps>1\navg<2s"})
    args = parser.parse_args(["master", "-f", "x.py", "--threshold", "requests>0"])
    assert args.threshold == ["p95<1s", "rps>1", "avg<2s", "requests>0"]
    config = tmp_path / "horde.conf"
    config.write_text("threshold = p99<3s; generator_ok\nabort-on-fail = true\n")
    parser = build_parser()
    apply_config(parser, [config])
    args = parser.parse_args(["run", "-f", "x.py"])
    assert (args.threshold, args.abort_on_fail) == (["p99<3s", "generator_ok"], True)


def test_the_dashboard_shows_thresholds_and_offers_the_field() -> None:
    """The dashboard polls /stats/thresholds into its panel and its form sends the field."""
    static = Path(__file__).resolve().parent.parent / "master" / "static"
    page = (static / "index.html").read_text()
    for needle in ('id="thresholds-panel"', 'id="thresholds-table"', 'name="thresholds"'):
        assert needle in page
    script = (static / "app.js").read_text()
    assert 'getJSON("stats/thresholds")' in script
    assert 'fields.set("thresholds", value("thresholds"))' in script
