"""A run's verdict as the outputs show it: summary lines, JUnit XML, ``--json``, exit code.

Responsibility: render a :class:`~horde.master.verdict.VerdictReport` for the console
summary (:func:`verdict_text`), as a JUnit XML file with one test case per threshold
(:func:`junit_xml`) and in the ``--json`` document (:func:`json_document`), and decide
the headless run's exit code from it (:func:`run_exit_code`). Each renders nothing when
the run had no thresholds and its generator was healthy, so outputs without thresholds
stay as they were. Pure.

Imports: the standard library and horde.master.
"""

from __future__ import annotations

import math
from typing import Any
from xml.etree import ElementTree

from horde.master.threshold_syntax import MetricKind
from horde.master.threshold_watch import ThresholdResult
from horde.master.units import format_ms
from horde.master.verdict import VerdictReport

__all__ = [
    "EXIT_ERRORED",
    "EXIT_THRESHOLD_FAILED",
    "format_value",
    "json_document",
    "junit_xml",
    "run_exit_code",
    "verdict_text",
]

EXIT_ERRORED = 3
"""Exit code of a run that could not start or errored (as horde itself detects it)."""
EXIT_THRESHOLD_FAILED = 99
"""Exit code of a run whose thresholds failed (k6's)."""


def run_exit_code(report: VerdictReport, *, failed: bool, exit_code_on_error: int) -> int:
    """The exit code of a run that ended as planned.

    With thresholds, they alone decide: 99 if any failed, else 0 (failed requests count
    only through a threshold such as ``fail_ratio<0.01``). Without, failed requests (or
    task exceptions: ``failed``) give ``exit_code_on_error``, as in Locust.
    """
    if report.results:
        return 0 if report.passed else EXIT_THRESHOLD_FAILED
    return exit_code_on_error if failed else 0


def format_value(result: ThresholdResult) -> str:
    """The measured value as text: ``143 ms``, ``0.0123``, ``no data``."""
    value = result.value
    if value is None:
        return "no data"
    if result.threshold.kind is MetricKind.TIME:
        return f"{format_ms(value)} ms"
    if result.threshold.kind is MetricKind.FLAG:
        return "true" if value else "false"
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def _outcome(result: ThresholdResult) -> str:
    if not result.ok:
        return f"FAIL (first after {result.first_failed_after:g} s)"
    if not result.judged:
        return "pass (window not full)"
    return "pass"


def verdict_text(report: VerdictReport) -> str:
    """The summary's lines about the verdict ('' when there is nothing to say)."""
    lines = []
    if report.results:
        width = max(30, *(len(r.threshold.text) for r in report.results))
        lines.append(f"{'Threshold':<{width}}  {'Value':>12}  Result")
        lines.append("-" * (width + 30))
        for r in report.results:
            lines.append(f"{r.threshold.text:<{width}}  {format_value(r):>12}  {_outcome(r)}")
        failed = sum(1 for r in report.results if not r.ok)
        if failed:
            lines.append(f"{failed} of {len(report.results)} thresholds failed.")
        else:
            lines.append(f"All {len(report.results)} thresholds passed.")
        if report.aborted:
            lines.append("The run was stopped early: a threshold failed (--abort-on-fail).")
    if report.saturation is not None:
        lines.append(f"Warning: {report.saturation.describe()}.")
    return "\n".join(lines)


def json_document(stats: list[dict[str, Any]], report: VerdictReport) -> Any:
    """``--json``: Locust's list as it is; with thresholds, ``{"stats", "thresholds"}``."""
    if not report.results:
        return stats
    return {"stats": stats, "thresholds": report.to_json()}


def junit_xml(report: VerdictReport, *, duration: float, timestamp: str, hostname: str) -> str:
    """A JUnit XML document: one test suite, one test case per threshold."""
    failures = sum(1 for r in report.results if not r.ok)
    seconds = f"{max(duration, 0.0):.3f}"
    counts = {"tests": str(len(report.results)), "failures": str(failures), "errors": "0"}
    root = ElementTree.Element("testsuites", {"name": "horde", "time": seconds, **counts})
    suite = ElementTree.SubElement(
        root,
        "testsuite",
        {
            "name": "horde thresholds",
            **counts,
            "skipped": "0",
            "time": seconds,
            "timestamp": timestamp,
            "hostname": hostname,
        },
    )
    properties = ElementTree.SubElement(suite, "properties")
    ElementTree.SubElement(properties, "property", {"name": "run_id", "value": report.run_id})
    note = report.saturation.describe() if report.saturation is not None else ""
    ElementTree.SubElement(properties, "property", {"name": "generator_note", "value": note})
    for r in report.results:
        case = ElementTree.SubElement(
            suite,
            "testcase",
            {"classname": "horde.thresholds", "name": r.threshold.text, "time": seconds},
        )
        measured = f"measured {format_value(r)}"
        if not r.ok:
            failure = ElementTree.SubElement(
                case,
                "failure",
                {"type": "threshold", "message": f"{r.threshold.text}: {measured}"},
            )
            failure.text = f"{measured}; first failed {r.first_failed_after:g} s after the start"
        ElementTree.SubElement(case, "system-out").text = measured
    ElementTree.indent(root)
    body = ElementTree.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'
