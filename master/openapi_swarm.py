"""The OpenAPI schema of ``POST /swarm``'s form and JSON body, as :mod:`horde.master.forms`
reads them.

Responsibility: each field with the constraints the server enforces (a pattern that is a
subset of what parses, where the language is richer than a regular expression), the
fields that may not come together, and when ``user_count`` may be left out. The script's
class names, shapes, options and ``--max-users`` tighten it. Pure data.

Imports: the standard library, horde.master.arrivalspec (the lowest rate) and horde.protocol.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from horde.master.arrivalspec import MIN_RATE
from horde.protocol.options import ScriptOption
from horde.protocol.rates import MAX_RATE

__all__ = ["swarm_body"]

Schema = dict[str, Any]

_INT: Schema = {"type": "integer", "minimum": 0}
_TEXT = r"^[^\x00-\x1f]*$"  # one line: forms.text_field refuses control characters

_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{0,4})"
_HOST = (  # an http(s) URL with a host name (IPv6 literals are accepted but not described)
    r"^\s*([hH][tT][tT][pP][sS]?://([A-Za-z0-9._~!$&'()*+,;=%-]+@)?"
    rf"[A-Za-z0-9._~!$&'()*+,;=%-]+(:{_PORT})?([/?#][!-~]*)?)?\s*$"
)
_SPAN = r"([1-9][0-9]{0,5}|([1-9][0-9]{0,3}[hmsHMS])+)"  # a time span: 90, 1h20m
_TIMESPAN = rf"^(\s*{_SPAN}\s*)?$"


def _list_field(names: Sequence[str] | None) -> Schema:
    """Repeated form fields or a JSON list (or one string), each value comma-separated.

    At most 100 values of at most 200 characters each; blank parts are dropped.
    """
    if names:
        one = "(" + "|".join(re.escape(n) for n in names) + ")"
        item: Schema = {
            "type": "string",
            "maxLength": 200,
            "pattern": rf"^[\s,]*({one}(\s*,[\s,]*{one})*)?[\s,]*$",
        }
    else:
        item = {"type": "string", "maxLength": 200}
    many = {"type": "array", "items": item, "maxItems": 100}
    return {"anyOf": [many, item]}


_THRESHOLD = (
    r"^\s*((p[1-9][0-9]?|avg|med|min|max) ?(<|<=|>|>=) ?[0-9]{1,6}(us|ms|s)"
    r"|(fail_ratio|rps|requests|failures) ?(<|<=|>|>=|==|!=) ?[0-9]{1,6}"
    r"|generator_ok)?\s*$"
)
"""A subset of the threshold language: every string it matches parses (blank: none)."""

_RATE = r"([1-9][0-9]{0,5}(\.[0-9]{1,3})?|0\.[0-9]{0,2}[1-9])"
_STAGES = rf"^( *({_SPAN}:0,)*{_SPAN}:{_RATE}(,{_SPAN}:(0|{_RATE}))* *)?$"
"""``stages``: ``SPAN:RATE`` ramps, at least one rate above 0 (blank: none); a subset."""

_ARRIVAL: dict[str, Schema] = {
    "arrival_rate": {
        "anyOf": [
            {"type": "number", "minimum": MIN_RATE, "maximum": MAX_RATE},
            {"type": "string", "pattern": rf"^({_RATE})?$"},
        ]
    },
    "stages": {"type": "string", "maxLength": 200, "pattern": _STAGES},
}
"""``arrival_rate`` (iterations/s) or ``stages``: the run's fleet-wide schedule."""

_GIVEN_RATE: Schema = {
    "required": ["arrival_rate"],
    "properties": {
        "arrival_rate": {"anyOf": [{"type": "number"}, {"type": "string", "minLength": 1}]}
    },
}
_GIVEN_STAGES: Schema = {
    "required": ["stages"],
    "properties": {"stages": {"type": "string", "pattern": r"\S"}},
}
_GIVEN_SHAPE: Schema = {
    "required": ["shape_class"],
    "properties": {"shape_class": {"type": "string", "pattern": r"\S"}},
}
_REFUSED_TOGETHER: list[Schema] = [
    {"allOf": [_GIVEN_RATE, _GIVEN_STAGES]},
    {"allOf": [_GIVEN_SHAPE, {"anyOf": [_GIVEN_RATE, _GIVEN_STAGES]}]},
]
"""Bodies refused whatever their values: ``arrival_rate`` with ``stages``, and either with a
``shape_class`` (a run follows one schedule)."""


def _thresholds_field() -> Schema:
    """``thresholds``: repeated form fields, a JSON list or one string (see threshold_syntax)."""
    item: Schema = {"type": "string", "maxLength": 200, "pattern": _THRESHOLD}
    return {"anyOf": [{"type": "array", "items": item, "maxItems": 100}, item]}


def _absent_if_null(schema: Schema) -> Schema:
    """A field JSON may also send as null, which means "not given"."""
    enum = schema.get("enum")
    return {**schema, "nullable": True, **({"enum": [*enum, None]} if enum else {})}


_OPTION_KINDS: dict[str, Schema] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
}


def _option_schema(option: ScriptOption, *, json: bool) -> Schema:
    """A script option's field: its type (any text in a form), its choices if it has some."""
    schema: Schema = dict(_OPTION_KINDS[option.kind]) if json else {"type": "string"}
    if option.choices is not None:
        schema["enum"] = [c if json else str(c) for c in option.choices]
    if option.help:
        schema["description"] = option.help
    return schema


def swarm_body(
    user_classes: Sequence[str] | None,
    shapes: Sequence[str] | None,
    max_users: int | None,
    *,
    json: bool,
    script_options: Sequence[ScriptOption] = (),
) -> Schema:
    """The ``/swarm`` fields (forms.parse_swarm) as one closed object.

    ``user_count`` is required unless a known shape or an arrival rate runs the test. In
    ``json``, null
    means "not given" (a form has no null: it would send the text ``null``).
    """
    nullable = _absent_if_null if json else dict
    text: Schema = {"type": "string", "maxLength": 200, "pattern": _TEXT}
    users: Schema = {**_INT, **({"maximum": max_users} if max_users is not None else {})}
    fields: dict[str, Schema] = {
        "spawn_rate": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
        "host": {"type": "string", "maxLength": 2000, "pattern": _HOST},
        "run_time": {
            "anyOf": [
                {"type": "string", "pattern": _TIMESPAN},
                {"type": "number", "minimum": 0, "exclusiveMinimum": True},
            ]
        },
        "user_classes": _list_field(user_classes),
        "tags": _list_field(None),
        "exclude_tags": _list_field(None),
        "stop_timeout": {"type": "number", "minimum": 0},
        "profile": text,
        "thresholds": _thresholds_field(),
        **_ARRIVAL,
    }
    for option in script_options:
        fields[option.name] = _option_schema(option, json=json)
    if shapes is None:
        fields["shape_class"] = text
    elif shapes:
        fields["shape_class"] = {"type": "string", "enum": list(shapes)}
    properties = {name: nullable(schema) for name, schema in fields.items()}
    body: Schema = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "not": {"anyOf": _REFUSED_TOGETHER},
    }
    properties["user_count"] = nullable(users)
    body["anyOf"] = [
        {"required": ["user_count"], "properties": {"user_count": {"type": "integer"}}},
        _GIVEN_RATE,
        _GIVEN_STAGES,
    ]
    if shapes:
        body["anyOf"].append(
            {"required": ["shape_class"], "properties": {"shape_class": {"type": "string"}}}
        )
    return body
