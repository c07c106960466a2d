"""Log lines reach stderr whole: one write per line, so processes sharing a pipe never split
each other's JSON lines (pure: a recording stream stands in for stderr)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import pytest
import structlog

from horde import logsetup
from horde.logsetup import LogSettings


class Recording:
    """A text stream that keeps each ``write`` call apart."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


@pytest.fixture
def structlog_config() -> Iterator[None]:
    """The logging configuration as it was, restored after the test."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.mark.parametrize("fmt", ["json", "console"])
@pytest.mark.usefixtures("structlog_config")
def test_each_log_line_is_written_in_one_call(monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    """print() would write the line and its newline in two calls; a line is one write."""
    stderr = Recording()
    monkeypatch.setattr(sys, "stderr", stderr)  # here: pytest sets its own before each call
    logsetup.configure(LogSettings(level="INFO", format=fmt), "worker")
    log = structlog.get_logger("horde.test")
    log.info("worker ready", worker="w1")
    log.warning("no answer from the master yet", attempts=6)
    assert len(stderr.writes) == 2, stderr.writes
    assert all(w.endswith("\n") and w.count("\n") == 1 for w in stderr.writes), stderr.writes
    if fmt == "json":
        events = [json.loads(w)["event"] for w in stderr.writes]
        assert events == ["worker ready", "no answer from the master yet"]
