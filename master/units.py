"""Response times in milliseconds as the master's outputs show them: converted, rounded, written.

Responsibility: the three ways the outputs turn a response time into what they show, each
written once. :func:`round_ms` keeps a time in ms to microsecond precision (3 decimals:
the ``/stats/requests`` rows, the CSV files, ``--json``); :func:`us_to_ms` does the same for
a time the merged stats hold in µs; :func:`format_ms` writes a time in ms as text with about
three significant digits (the console tables, the HTML report). Pure.

Imports: the standard library only.
"""

from __future__ import annotations

import math

__all__ = ["MS_DECIMALS", "format_ms", "round_ms", "us_to_ms"]

MS_DECIMALS = 3
"""Decimals a rounded time in ms keeps: microsecond precision, the histograms' resolution."""


def round_ms(ms: float) -> float:
    """Return a time in ms rounded to microsecond precision."""
    return round(ms, MS_DECIMALS)


def us_to_ms(us: float) -> float:
    """Return a time in µs as ms rounded to microsecond precision."""
    return round_ms(us / 1000)


def format_ms(ms: object) -> str:
    """Write a time in ms with about three significant digits ('' when not a finite number).

    ``1234.4`` -> ``"1234"`` (no decimals from 100 ms), ``12.34`` -> ``"12.3"``,
    ``1.234`` -> ``"1.23"``.
    """
    if not isinstance(ms, int | float) or not math.isfinite(ms):
        return ""
    if abs(ms) >= 100:
        return f"{ms:.0f}"
    if abs(ms) >= 10:
        return f"{ms:.1f}"
    return f"{ms:.2f}"
