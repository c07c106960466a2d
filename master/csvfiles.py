"""The ``--csv PREFIX`` files on disk, refreshed once per interval, as Locust's ``--csv``.

Responsibility: :class:`CsvFiles` writes the documents :mod:`horde.master.csvout` renders:
the snapshot files are replaced atomically (a temporary file, then a rename), the history
file is appended to. A file that cannot be written is a :class:`ConfigError` naming it.
This module is the CSV outputs' only I/O.

Imports: the standard library, :mod:`horde.protocol` and :mod:`horde.master`.
"""

from __future__ import annotations

import contextlib
import csv
import os
import secrets
from collections.abc import Iterable, Sequence

from horde.master.corrected import CorrectedStats
from horde.master.csvout import (
    corrected_csv,
    exceptions_csv,
    failures_csv,
    history_header,
    history_rows,
    requests_csv,
)
from horde.master.exceptions import GroupedException
from horde.master.stats import MergedStats
from horde.master.statsconf import report_percentiles
from horde.protocol.errors import ConfigError

__all__ = ["CsvFiles"]


def _config_error(path: str, exc: OSError) -> ConfigError:
    """Return the :class:`ConfigError` for a CSV file that could not be written."""
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        return ConfigError(f"CSV folder {folder!r} does not exist (writing {path!r})")
    return ConfigError(f"cannot write CSV file {path!r}: {exc.strerror or exc}")


def _replace(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a temporary file in its folder, then a rename."""
    folder, base = os.path.split(path)
    tmp = os.path.join(folder, f".{base}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise _config_error(path, exc) from exc


class CsvFiles:
    """The ``--csv PREFIX`` files, refreshed by :meth:`write` once per interval.

    ``PREFIX_stats.csv``, ``PREFIX_stats_corrected.csv``, ``PREFIX_failures.csv`` and
    ``PREFIX_exceptions.csv`` are rewritten atomically each time;
    ``PREFIX_stats_history.csv`` gets this interval's rows appended, as Locust: the
    ``Aggregated`` row always, every entry's row too when ``full_history`` is on. The
    history file is truncated and given its header by the first :meth:`write` (the
    constructor does no I/O). The folder must exist.
    """

    def __init__(self, prefix: str, full_history: bool) -> None:
        """Prepare to write the files named after ``prefix``."""
        self.prefix = prefix
        self.full_history = full_history
        self._history_percentiles: tuple[float, ...] | None = None
        """The history file's percentile columns, fixed by its header (None: not started)."""

    @property
    def stats_path(self) -> str:
        """Path of the requests CSV."""
        return f"{self.prefix}_stats.csv"

    @property
    def failures_path(self) -> str:
        """Path of the failures CSV."""
        return f"{self.prefix}_failures.csv"

    @property
    def exceptions_path(self) -> str:
        """Path of the exceptions CSV."""
        return f"{self.prefix}_exceptions.csv"

    @property
    def corrected_path(self) -> str:
        """Path of the coordinated-omission corrected CSV."""
        return f"{self.prefix}_stats_corrected.csv"

    @property
    def arrivals_path(self) -> str:
        """Path of the arrival-rate iterations CSV (written only for such runs)."""
        return f"{self.prefix}_arrivals.csv"

    @property
    def history_path(self) -> str:
        """Path of the stats history CSV."""
        return f"{self.prefix}_stats_history.csv"

    def write(
        self,
        stats: MergedStats,
        exceptions: Iterable[GroupedException],
        user_count: int,
        now: float,
        corrected: CorrectedStats | None = None,
        *,
        arrivals: str | None = None,
    ) -> None:
        """Rewrite the snapshot files and append this interval's history rows (and write
        ``arrivals``, the text of ``PREFIX_arrivals.csv``, when given).

        Raises :class:`ConfigError` naming the path when a file cannot be written.
        """
        _replace(self.stats_path, requests_csv(stats, now))
        _replace(self.corrected_path, corrected_csv(corrected or CorrectedStats()))
        _replace(self.failures_path, failures_csv(stats))
        _replace(self.exceptions_path, exceptions_csv(exceptions))
        if arrivals is not None:
            _replace(self.arrivals_path, arrivals)
        first = self._history_percentiles is None
        ps = (
            report_percentiles() if self._history_percentiles is None else self._history_percentiles
        )
        rows = history_rows(stats, user_count, now, full_history=self.full_history, percentiles=ps)
        self._append_history(rows, ps if first else None)
        self._history_percentiles = ps

    def _append_history(self, rows: list[list[object]], header: Sequence[float] | None) -> None:
        """Append ``rows`` to the history file; with ``header`` (its percentiles), truncate it
        and write the header first."""
        try:
            with open(
                self.history_path, "a" if header is None else "w", encoding="utf-8", newline=""
            ) as fh:
                writer = csv.writer(fh)
                if header is not None:
                    writer.writerow(history_header(header))
                writer.writerows(rows)
        except OSError as exc:
            raise _config_error(self.history_path, exc) from exc
