"""Parse run times as Locust users write them: ``20``, ``20s``, ``3m``, ``1h20m``, ``1h30m10s``.

Pure; raises ``ValueError`` with a message quoting the bad text.

Imports: the standard library only.
"""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)([hms])")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}


def parse_timespan(text: str | int | float) -> float:
    """Return the number of seconds ``text`` stands for; a bare number means seconds."""
    if isinstance(text, bool):
        raise ValueError(f"invalid time span {text!r}")
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        value = text.strip().lower()
        if not value:
            raise ValueError("empty time span")
        try:
            seconds = float(value)
        except ValueError:
            pos, seconds = 0, 0.0
            for match in _PART.finditer(value):
                if match.start() != pos:
                    break
                seconds += float(match.group(1)) * _UNITS[match.group(2)]
                pos = match.end()
            if pos != len(value) or pos == 0:
                raise ValueError(
                    f"invalid time span {text!r}: use e.g. 20, 20s, 3m, 1h20m"
                ) from None
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"time span must be positive, got {text!r}")
    return seconds
