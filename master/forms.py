"""Validation of the ``/swarm`` form: every field checked, coerced, or refused by name.

Responsibility: turn a form (``application/x-www-form-urlencoded``, repeated fields as
lists) or a JSON object into a :class:`SwarmRequest`, or raise :class:`FieldError`
naming the culprit. Run options travel to the workers, so only those on
:data:`RUN_OPTIONS` are accepted; output paths, auth settings and anything that writes
files or reaches the workers' environment are refused. Pure: no Flask here.

Imports: the standard library, horde.master and horde.protocol.errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from horde.master.arrivalspec import constant, parse_stages
from horde.master.swarm import SwarmRequest
from horde.master.threshold_syntax import Threshold, ThresholdSyntaxError, parse_thresholds
from horde.master.timespan import parse_timespan
from horde.protocol.errors import ConfigError, RequestError
from horde.protocol.options import ScriptOption
from horde.protocol.rates import Schedule

MAX_TEXT = 200
"""Longest text value (a profile name, a tag) a form may carry."""
MAX_LIST = 100
"""Most values a list field (tags, user classes) may carry."""


class FieldError(RequestError):
    """A request field that cannot be used; ``field`` names it."""

    field: str

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field)


Form = Mapping[str, Any]
"""A form with each value a string, a list of strings (repeated fields) or JSON values."""


def _show(raw: object) -> str:
    return repr(str(raw)[:40])


def _one(form: Form, name: str) -> Any:
    """The field's value; None when absent (repeated form fields keep their last value)."""
    return form.get(name)


def int_field(form: Form, name: str, *, required: bool) -> int | None:
    """A whole number (``"10"``, ``10`` or ``"10.0"``); None when absent and optional."""
    raw = _one(form, name)
    if raw is None or raw == "":
        if required:
            raise FieldError(name, f"{name} is required")
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise FieldError(name, f"{name} must be an integer, got {_show(raw)}")
    try:
        value = float(raw)
    except ValueError:
        raise FieldError(name, f"{name} must be an integer, got {_show(raw)}") from None
    if not math.isfinite(value) or value != int(value):
        raise FieldError(name, f"{name} must be an integer, got {_show(raw)}")
    return int(value)


def float_field(form: Form, name: str, *, minimum: float, inclusive: bool) -> float | None:
    """A finite number above ``minimum`` (or equal, if ``inclusive``); None when absent."""
    raw = _one(form, name)
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise FieldError(name, f"{name} must be a number, got {_show(raw)}")
    try:
        value = float(raw)
    except ValueError:
        raise FieldError(name, f"{name} must be a number, got {_show(raw)}") from None
    low_ok = value >= minimum if inclusive else value > minimum
    if not math.isfinite(value) or not low_ok:
        bound = "at least" if inclusive else "above"
        raise FieldError(name, f"{name} must be a number {bound} {minimum:g}, got {_show(raw)}")
    return value


def text_field(form: Form, name: str) -> str | None:
    """A short single-line text; None when absent."""
    raw = _one(form, name)
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise FieldError(name, f"{name} must be a string")
    if len(raw) > MAX_TEXT or _control(raw):
        raise FieldError(name, f"{name} must be one line of at most {MAX_TEXT} characters")
    return raw.strip()


def list_field(form: Form, name: str) -> tuple[str, ...] | None:
    """Repeated fields or a JSON list of strings; each value may be comma-separated."""
    raw = form.get(name)
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise FieldError(name, f"{name} must be a list of strings")
    if len(raw) > MAX_LIST or any(len(v) > MAX_TEXT for v in raw):
        raise FieldError(
            name, f"{name} may hold at most {MAX_LIST} values of {MAX_TEXT} characters each"
        )
    values = [part.strip() for v in raw for part in v.split(",") if part.strip()]
    return tuple(dict.fromkeys(values))


def host_field(form: Form) -> str:
    """An http(s) URL with a host name, or empty (keep the master's host)."""
    raw = _one(form, "host")
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise FieldError("host", "host must be a string")
    host = raw.strip()
    if host:
        if len(host) > 2000 or any(ord(c) < 33 for c in host):
            raise FieldError("host", "host must be a URL without spaces or control characters")
        try:
            parts = urlsplit(host)
            hostname, _port = parts.hostname, parts.port
        except ValueError:
            raise FieldError("host", f"host is not a valid URL: {host[:80]!r}") from None
        if parts.scheme not in ("http", "https") or not hostname:
            raise FieldError("host", f"host must be an http(s) URL, got {host[:80]!r}")
    return host


def _control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def _run_time(form: Form) -> float | None:
    raw = _one(form, "run_time")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise FieldError("run_time", "run_time must be a time span such as 90, 30s, 5m or 1h20m")
    try:
        value = parse_timespan(raw)
    except (TypeError, ValueError) as exc:
        raise FieldError("run_time", f"run_time: {exc}") from None
    if value <= 0:
        raise FieldError("run_time", "run_time must be positive")
    return value


def thresholds_field(form: Form) -> tuple[Threshold, ...] | None:
    """``thresholds``: repeated fields, a JSON list, or lines of one field (None: absent).

    Present but empty, the run has no thresholds (absent, it has the master's).
    """
    raw = form.get("thresholds")
    if raw is None:
        return None
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise FieldError("thresholds", "thresholds must be a list of strings")
    texts = [line.strip() for v in values for line in v.splitlines() if line.strip()]
    if len(texts) > MAX_LIST:
        raise FieldError("thresholds", f"thresholds may hold at most {MAX_LIST} values")
    try:
        return parse_thresholds(texts)
    except ThresholdSyntaxError as exc:
        raise FieldError("thresholds", f"thresholds: {exc}") from None


def _arrival(form: Form) -> Schedule | None:
    """``arrival_rate`` (iterations/s) or ``stages`` (``30s:100,2m:500``), not both."""
    rate, stages = _one(form, "arrival_rate"), text_field(form, "stages")
    rate = None if rate == "" else rate
    if rate is not None and stages:
        raise FieldError("stages", "give arrival_rate or stages, not both")
    name = "arrival_rate" if rate is not None else "stages"
    try:
        if rate is not None:
            return constant(rate)
        return parse_stages(stages) if stages else None
    except ValueError as exc:
        raise FieldError(name, f"{name}: {exc}") from None


def _stop_timeout(form: Form, name: str) -> float | None:
    return float_field(form, name, minimum=0.0, inclusive=True)


#: Run options ``/swarm`` may set, each with its parser. They reach every worker in the
#: ``spawn`` message's ``parsed_options``; nothing here names a file, a secret or an
#: environment variable.
RUN_OPTIONS: dict[str, Callable[[Form, str], object]] = {
    "tags": list_field,
    "exclude_tags": list_field,
    "stop_timeout": _stop_timeout,
    "profile": text_field,
}

#: Fields ``/swarm`` understands besides the run options.
SWARM_FIELDS = (
    "user_count",
    "spawn_rate",
    "host",
    "run_time",
    "user_classes",
    "shape_class",
    "thresholds",
    "arrival_rate",
    "stages",
)


def parse_swarm(
    form: Form,
    default_shape: str | None = None,
    script_options: Sequence[ScriptOption] = (),
) -> SwarmRequest:
    """Validate a ``/swarm`` form or JSON body; raise :class:`FieldError` naming the field.

    Without a ``shape_class`` field the run goes to ``default_shape`` when there is one
    (the script's only load shape, as Locust uses it). The script's own options
    (``script_options``) are run options too, converted to their type.
    """
    own = {o.name: o for o in script_options}
    unknown = sorted(
        k for k in form if k not in SWARM_FIELDS and k not in RUN_OPTIONS and k not in own
    )
    if unknown:
        allowed = ", ".join([*SWARM_FIELDS, *RUN_OPTIONS, *own])
        raise FieldError(unknown[0], f"{unknown[0][:40]!r} is not a /swarm field ({allowed})")
    arrival = _arrival(form)
    if arrival is not None and text_field(form, "shape_class"):
        raise FieldError("shape_class", "a load shape and an arrival rate cannot share a run")
    shape = text_field(form, "shape_class") or (default_shape if arrival is None else None)
    user_count = int_field(form, "user_count", required=shape is None and arrival is None)
    if user_count is not None and user_count < 0:
        raise FieldError("user_count", f"user_count must be 0 or more, got {user_count}")
    spawn_rate = float_field(form, "spawn_rate", minimum=0.0, inclusive=False)
    options = {}
    for name, parse in RUN_OPTIONS.items():
        value = parse(form, name)
        if value is not None:
            options[name] = list(value) if isinstance(value, tuple) else value
    for name, option in own.items():
        if name in form:
            raw = form[name]
            raw = raw[-1] if isinstance(raw, list) and raw else raw
            if raw is None or (option.is_secret and raw == ""):
                continue  # JSON's null is "not given"; a secret left empty keeps its value
            try:
                options[name] = option.convert(raw)
            except ConfigError as exc:
                raise FieldError(name, str(exc)) from None
    classes = list_field(form, "user_classes")
    return SwarmRequest(
        user_count=user_count or 0,
        spawn_rate=1.0 if spawn_rate is None else spawn_rate,
        host=host_field(form),
        run_time=_run_time(form),
        user_classes=classes or None,
        shape_class=shape,
        options=options,
        thresholds=thresholds_field(form),
        arrival=arrival,
    )


def form_from_pairs(pairs: Sequence[tuple[str, str]], lists: Sequence[str]) -> dict[str, Any]:
    """A form dict from (name, value) pairs: ``lists`` fields keep every value."""
    form: dict[str, Any] = {}
    for name, value in pairs:
        if name in lists:
            form.setdefault(name, []).append(value)
        else:
            form[name] = value
    return form
