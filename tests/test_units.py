"""The master's response-time units: one converter, one rounder and one writer, each once."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import horde.master
from horde.master.units import format_ms, round_ms, us_to_ms

HELPER_NAMES = {"_ms", "round_ms", "us_to_ms", "format_ms"}
"""The names the five output helpers had, and the names of their one home's functions."""


@pytest.mark.parametrize(
    ("ms", "rounded"),
    [(0.0, 0.0), (1.23449, 1.234), (1.2346, 1.235), (12345.6789, 12345.679), (7, 7)],
)
def test_round_ms_keeps_microseconds(ms: float, rounded: float) -> None:
    """A time in ms keeps three decimals (microsecond precision)."""
    assert round_ms(ms) == rounded


@pytest.mark.parametrize(
    ("us", "ms"),
    [(0, 0.0), (1, 0.001), (1234, 1.234), (1234567, 1234.567), (0.4, 0.0), (2499.6, 2.5)],
)
def test_us_to_ms_converts_and_rounds(us: float, ms: float) -> None:
    """A time in µs becomes ms with microsecond precision."""
    assert us_to_ms(us) == ms


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0.0, "0.00"),
        (1.234, "1.23"),
        (9.999, "10.00"),
        (10.0, "10.0"),
        (12.34, "12.3"),
        (99.94, "99.9"),
        (100.0, "100"),
        (1234.4, "1234"),
        (-150.0, "-150"),
        (-12.34, "-12.3"),
        (float("nan"), ""),
        (float("inf"), ""),
        (None, ""),
        ("12", ""),
    ],
)
def test_format_ms_writes_about_three_significant_digits(ms: object, text: str) -> None:
    """A time in ms is written with two, one or no decimals as it grows; a non-number is ''."""
    assert format_ms(ms) == text


def test_no_master_module_defines_its_own_ms_helper() -> None:
    """The outputs use horde.master.units; no module of the master defines another ``_ms``."""
    folder = Path(horde.master.__file__).parent
    found = [
        f"{path.name}:{node.lineno}"
        for path in sorted(folder.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef)
        and node.name in HELPER_NAMES
        and path.name != "units.py"
    ]
    assert found == []
