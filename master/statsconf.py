"""The statistics settings a script may assign, read when an output is made.

Responsibility: Locust's outputs read ``locust.stats``' module names (``PERCENTILES_TO_REPORT``,
``PERCENTILES_TO_STATISTICS``, ``PERCENTILES_TO_CHART``, ``CSV_STATS_INTERVAL_SEC``,
``CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW``) at the moment they are made, so a locustfile
that assigns them (``locust.stats.PERCENTILES_TO_REPORT = [...]``) changes them. This module
names Locust 2.47's defaults once (``horde.stats`` starts from them), reads ``horde.stats``
when asked and checks the chart and statistics percentiles as Locust does before a run.

Imports: the standard library, :mod:`horde.protocol` (errors) and, when asked,
:mod:`horde.stats` (which imports this module for its defaults).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from horde.protocol.errors import ScriptError

__all__ = [
    "DEFAULT_CSV_STATS_INTERVAL_SEC",
    "DEFAULT_CURRENT_WINDOW",
    "DEFAULT_PERCENTILES_TO_CHART",
    "DEFAULT_PERCENTILES_TO_REPORT",
    "DEFAULT_PERCENTILES_TO_STATISTICS",
    "MAX_CHART_PERCENTILES",
    "chart_percentiles",
    "csv_interval",
    "current_window",
    "report_percentiles",
    "statistics_percentiles",
    "validate",
]

DEFAULT_PERCENTILES_TO_REPORT = (0.5, 0.66, 0.75, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0)
"""Percentiles of the summary tables, CSV files, ``--json`` and report (Locust's default)."""
DEFAULT_PERCENTILES_TO_STATISTICS = (0.95, 0.99)
"""Percentiles each ``/stats/requests`` row carries."""
DEFAULT_PERCENTILES_TO_CHART = (0.5, 0.95)
"""Percentiles of ``current_response_time_percentiles`` (the UI's chart)."""
DEFAULT_CSV_STATS_INTERVAL_SEC = 1.0
"""Seconds between two writes of the ``--csv`` files."""
DEFAULT_CURRENT_WINDOW = 10
"""Seconds behind the current response-time percentiles."""
MAX_CHART_PERCENTILES = 6
"""Most chart percentiles Locust accepts."""


def _settings() -> ModuleType:
    """``horde.stats``, imported when first asked (it imports this module for its defaults)."""
    return importlib.import_module("horde.stats")


def _percentiles(name: str) -> tuple[float, ...]:
    """The script's ``horde.stats.<name>`` as a tuple of floats."""
    return tuple(float(p) for p in getattr(_settings(), name))


def report_percentiles() -> tuple[float, ...]:
    """``PERCENTILES_TO_REPORT`` as it is now."""
    return _percentiles("PERCENTILES_TO_REPORT")


def statistics_percentiles() -> tuple[float, ...]:
    """``PERCENTILES_TO_STATISTICS`` as it is now."""
    return _percentiles("PERCENTILES_TO_STATISTICS")


def chart_percentiles() -> tuple[float, ...]:
    """``PERCENTILES_TO_CHART`` as it is now."""
    return _percentiles("PERCENTILES_TO_CHART")


def csv_interval() -> float:
    """``CSV_STATS_INTERVAL_SEC`` as it is now (seconds between two CSV writes)."""
    return float(_settings().CSV_STATS_INTERVAL_SEC)


def current_window() -> int:
    """``CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW`` as it is now (whole seconds, at least 1)."""
    return max(int(_settings().CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW), 1)


def _valid(p: object) -> bool:
    """Whether ``p`` is a percentile Locust accepts: a number strictly between 0 and 1."""
    try:
        return 0 < float(p) < 1  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def validate() -> None:
    """Check the chart and statistics percentiles as Locust does before a run.

    Raises :class:`ScriptError` with Locust's message: more than six chart percentiles, or
    one that is not a number strictly between 0 and 1.
    """
    settings = _settings()
    chart, statistics = settings.PERCENTILES_TO_CHART, settings.PERCENTILES_TO_STATISTICS
    if len(chart) > MAX_CHART_PERCENTILES:
        raise ScriptError(
            "stats.PERCENTILES_TO_CHART parameter should be a maximum of 6 parameters"
        )
    for name, values in (("CHART", chart), ("STATISTICS", statistics)):
        if not all(_valid(p) for p in values):
            raise ScriptError(
                f"stats.PERCENTILES_TO_{name} parameter need to be float and value between."
                " 0 < percentile < 1 Eg 0.95"
            )
