"""Logging for every horde process: structlog, readable console lines or JSON lines.

Called once by the entry point with a frozen :class:`LogSettings` (from ``--log-level``
and ``--log-format``), which ``horde run`` also hands to its local workers through
:meth:`LogSettings.to_argv`. Logs go to standard error so that tables and ``--json``
output on standard output stay clean. The last lines are also kept in :data:`RECENT`
(bounded), which the master serves at ``GET /logs`` and a worker ships to its master.

Imports: the standard library and structlog.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections import deque
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import structlog

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
"""The levels ``--log-level`` accepts."""
FORMATS = ("console", "json")
"""The formats ``--log-format`` accepts: readable lines, or one JSON object a line."""
DEFAULT_LEVEL = "INFO"
DEFAULT_FORMAT = "console"
RECENT_LINES = 500
"""Log lines a process keeps for ``GET /logs``."""
MAX_LINE = 2000
"""Longest line kept (longer ones are cut)."""


class LogRing:
    """The last rendered log lines, plain text, bounded; safe to append from any thread."""

    def __init__(self, maxlen: int = RECENT_LINES) -> None:
        self._lines: deque[str] = deque(maxlen=maxlen)
        self._appended = 0
        self._taken = 0

    def append(self, line: str) -> None:
        """Keep ``line`` (cut to :data:`MAX_LINE` characters)."""
        self._lines.append(line[:MAX_LINE])
        self._appended += 1

    def lines(self) -> list[str]:
        """Every kept line, oldest first."""
        return list(self._lines)

    def take_new(self) -> list[str]:
        """The lines appended since the last call (at most the kept ones)."""
        appended = self._appended
        new = min(appended - self._taken, len(self._lines))
        self._taken = appended
        return list(self._lines)[-new:] if new > 0 else []


RECENT = LogRing()
"""This process's recent log lines."""


@dataclass(frozen=True, slots=True)
class LogSettings:
    """How a process logs: its level and its line format."""

    level: str = DEFAULT_LEVEL
    format: str = DEFAULT_FORMAT

    def to_argv(self) -> list[str]:
        """The flags that give a child process the same logging."""
        return ["--log-level", self.level, "--log-format", self.format]


def configure(settings: LogSettings, process: str = "") -> None:
    """Configure structlog and the standard library's root logger."""
    level, fmt = settings.level, settings.format
    numeric = getattr(logging, level.upper(), logging.INFO)
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso" if fmt == "json" else "%H:%M:%S", utc=False),
    ]
    if process:
        shared.insert(0, _bind_process(process))
    renderer: structlog.types.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[*shared, _keep_recent(renderer, fmt)],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # one write per line: print() writes the line and its newline apart, and with
        # PYTHONUNBUFFERED (set in the image) the processes sharing a stderr pipe (horde run,
        # worker --processes) then interleave halves of their JSON lines
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(
        level=numeric, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )


def recent_lines(event: Mapping[str, Any]) -> list[str]:
    """An event as ``/logs`` shows it: Locust's ``[time] process/LEVEL/logger: message``
    (the level in capitals, so Locust's web UI flags WARNING, ERROR and CRITICAL lines),
    then a traceback, if any, as plain text lines."""
    fields = dict(event)
    message = fields.pop("event", "")
    level = str(fields.pop("level", "info")).upper()
    stamp = fields.pop("timestamp", "")
    process = fields.pop("process", "")
    logger = fields.pop("logger", "horde")
    trace = fields.pop("exception", None)
    exc_info = fields.pop("exc_info", None)
    if trace is None and exc_info:
        info = sys.exc_info() if exc_info is True else exc_info
        if isinstance(info, BaseException):
            info = (type(info), info, info.__traceback__)
        if isinstance(info, tuple) and info[0] is not None:
            trace = "".join(traceback.format_exception(*info))
    extras = " ".join(f"{key}={value}" for key, value in fields.items())
    head = f"[{stamp}] {process}/{level}/{logger}: {message}" + (f" {extras}" if extras else "")
    return [head, *(str(trace).rstrip("\n").splitlines() if trace else [])]


def _keep_recent(renderer: structlog.types.Processor, fmt: str) -> structlog.types.Processor:
    """Wrap the renderer so that each event is also kept, as :func:`recent_lines`, in
    :data:`RECENT`."""

    def render(logger: Any, name: str, event: MutableMapping[str, Any]) -> Any:
        out = renderer(logger, name, dict(event))
        for line in recent_lines(event):
            RECENT.append(line)
        return out

    return render


def _bind_process(process: str) -> structlog.types.Processor:
    def add_process(
        _: object, __: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event.setdefault("process", process)
        return event

    return add_process
