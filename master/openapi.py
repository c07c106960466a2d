"""The OpenAPI 3.0.3 description of the master's web API, served at ``GET /openapi.json``.

Responsibility: describe every route of :mod:`horde.master.http` and
:mod:`horde.master.http_data`: the ``/swarm`` form and JSON body with the constraints
:mod:`horde.master.forms` enforces, and responses strict enough to catch a wrong key or
type (fixed key sets are ``additionalProperties: false``; integers are integers; what may
be null is ``nullable``). The script's class names, shapes and ``--max-users`` tighten the
document when the caller knows them. Basic and Bearer auth are declared globally; the
server enforces them only when ``--web-auth``/``--web-auth-token`` is set. Pure data.

Imports: the standard library and horde.protocol (the worker states).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

from horde.protocol.options import OPTION_TYPES, ScriptOption
from horde.protocol.states import WorkerState

__all__ = ["OPENAPI_VERSION", "document"]

OPENAPI_VERSION = "3.0.3"
"""The OpenAPI version the document follows."""

Schema = dict[str, Any]

_NUM: Schema = {"type": "number", "minimum": 0}
_INT: Schema = {"type": "integer", "minimum": 0}
_STR: Schema = {"type": "string"}
_STRINGS: Schema = {"type": "array", "items": _STR}
_TEXT = r"^[^\x00-\x1f]*$"  # one line: forms.text_field refuses control characters
_RUN_STATES = ["ready", "spawning", "running", "stopping", "stopped"]
_WORKER_STATES = [state.value for state in WorkerState]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Schema], optional: Sequence[str] = ()) -> Schema:
    """A closed object: every property required unless named in ``optional``."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


def _map(values: Schema) -> Schema:
    """An object with free keys (class, task or worker names) and ``values``."""
    return {"type": "object", "additionalProperties": values}


def _nullable(schema: Schema) -> Schema:
    return {**schema, "nullable": True}


_ENTRY = _object(
    {
        "method": _STR,
        "name": _STR,
        "num_requests": _INT,
        "num_failures": _INT,
        **dict.fromkeys(
            (
                "min_response_time",
                "max_response_time",
                "current_rps",
                "current_fail_per_sec",
                "avg_response_time",
                "median_response_time",
                "total_rps",
                "total_fail_per_sec",
                "response_time_percentile_0.95",
                "response_time_percentile_0.99",
                "avg_content_length",
            ),
            _NUM,
        ),
    }
)
_ERROR = _object(
    {
        "name": _STR,
        "method": _STR,
        "error": _STR,
        "occurrences": _INT,
        "first_seen": _nullable(_NUM),
        "last_seen": _nullable(_NUM),
    }
)
_WORKER = _object(
    {
        "id": _STR,
        "state": {"type": "string", "enum": _WORKER_STATES},
        "user_count": _INT,
        "cpu_usage": _NUM,
        "memory_usage": _INT,
        "index": _INT,
        "loop_lag": _nullable(_NUM),
        "horde": {"type": "boolean"},
        "requests": _INT,
        "key": _STR,  # CURVE masters only: the worker's key fingerprint
    },
    optional=("key",),
)
_REPORT = _object(
    {
        "stats": {"type": "array", "items": _ref("StatsEntry"), "minItems": 1},
        "errors": {"type": "array", "items": _ref("StatsError")},
        "total_rps": _NUM,
        "total_fail_per_sec": _NUM,
        "fail_ratio": _NUM,
        "current_rps": _NUM,
        "current_fail_per_sec": _NUM,
        "current_response_time_percentiles": _object(
            {"response_time_percentile_0.5": _NUM, "response_time_percentile_0.95": _NUM}
        ),
        "workers": {"type": "array", "items": _ref("Worker")},
        "worker_count": _INT,
        "state": {"type": "string", "enum": _RUN_STATES},
        "user_count": _INT,
    }
)
_TASK_NODE = _object({"ratio": _NUM, "tasks": _map(_ref("TaskNode"))}, optional=["tasks"])
_CLASS_RATIOS = _map(_object({"ratio": _NUM, "tasks": _map(_ref("TaskNode"))}))
_HISTORY_POINT = _object(
    {
        "time": _NUM,
        "user_count": _INT,
        "current_rps": _NUM,
        "current_fail_per_sec": _NUM,
        "response_time_percentile_50": _NUM,
        "response_time_percentile_95": _NUM,
        "total_requests": _INT,
        "total_failures": _INT,
    }
)
_UI_CONFIG = _object(
    {
        "user_classes": _STRINGS,
        "shape_classes": _STRINGS,
        "host": _STR,
        "users": _nullable(_INT),
        "spawn_rate": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
        "run_time": _nullable({"type": "number", "minimum": 0, "exclusiveMinimum": True}),
        "locustfile": _STR,
        "version": _STR,
        "history_csv": {"type": "boolean"},
        "extra_options": _map(
            _object(
                {
                    "value": {},
                    "help": _STR,
                    "choices": _nullable({"type": "array"}),
                    "kind": {"type": "string", "enum": list(OPTION_TYPES)},
                    "is_secret": {"type": "boolean"},
                }
            )
        ),
    }
)
_FAILURE = _object({"success": {"type": "boolean", "enum": [False]}, "message": _STR, "host": _STR})
_DENIED = _object({"success": {"type": "boolean", "enum": [False]}, "message": _STR})
_DONE = _object({"success": {"type": "boolean", "enum": [True]}, "message": _STR})

_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{0,4})"
_HOST = (  # an http(s) URL with a host name (IPv6 literals are accepted but not described)
    r"^\s*([hH][tT][tT][pP][sS]?://([A-Za-z0-9._~!$&'()*+,;=%-]+@)?"
    rf"[A-Za-z0-9._~!$&'()*+,;=%-]+(:{_PORT})?([/?#][!-~]*)?)?\s*$"
)
_TIMESPAN = r"^(\s*([1-9][0-9]{0,5}|([1-9][0-9]{0,3}[hmsHMS])+)\s*)?$"


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
_SPAN = r"([1-9][0-9]{0,5}|([1-9][0-9]{0,3}[hmsHMS])+)"
_STAGES = rf"^( *({_SPAN}:0,)*{_SPAN}:{_RATE}(,{_SPAN}:(0|{_RATE}))* *)?$"
"""``stages``: ``SPAN:RATE`` ramps, at least one rate above 0 (blank: none); a subset."""

_ARRIVAL: dict[str, Schema] = {
    "arrival_rate": {
        "anyOf": [
            {"type": "number", "minimum": 0.001, "maximum": 1_000_000},
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


_THRESHOLD_RESULT = _object(
    {
        "threshold": _STR,
        "scope": _nullable(_STR),
        "metric": _STR,
        "op": {"type": "string", "enum": ["<", "<=", ">", ">=", "==", "!="]},
        "bound": {"type": "number"},
        "window": _nullable(_NUM),
        "value": _nullable({"type": "number"}),
        "unit": {"type": "string", "enum": ["ms", ""]},
        "ok": {"type": "boolean"},
        "first_failed_after": _nullable({"type": "number"}),
    }
)
_THRESHOLDS = _object(
    {
        "run_id": _STR,
        "final": {"type": "boolean"},
        "passed": {"type": "boolean"},
        "aborted": {"type": "boolean"},
        "generator_ok": {"type": "boolean"},
        "generator_note": _nullable(_STR),
        "thresholds": {"type": "array", "items": _THRESHOLD_RESULT},
    }
)


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


def _swarm_body(
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


def _json(schema: Schema, description: str = "OK") -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _text(media_type: str, description: str, schema: Schema | None = None) -> Schema:
    return {"description": description, "content": {media_type: {"schema": schema or _STR}}}


_ERRORS = {"401": {"$ref": "#/components/responses/Unauthorized"}}
_ATTACHMENT = {
    "Content-Disposition": {
        "description": "``attachment;filename=Locust_<start>_<locustfile>_<host>_<kind>.csv``",
        "schema": {"type": "string", "pattern": r"^attachment;\s*filename=Locust_\S+\.csv$"},
    }
}


def _op(summary: str, responses: dict[str, Schema], **extra: Any) -> Schema:
    return {"summary": summary, "responses": {**responses, **_ERRORS}, **extra}


def _get(summary: str, schema_name: str) -> Schema:
    return {"get": _op(summary, {"200": _json(_ref(schema_name))})}


def _csv(kind: str) -> Schema:
    ok = {**_text("text/csv", f"Locust's {kind} CSV"), "headers": _ATTACHMENT}
    return {"get": _op(f"The {kind} CSV as a download", {"200": ok})}


def _paths() -> dict[str, Schema]:
    failure = _json(_ref("Failure"), "Locust's failure body naming the culprit")
    stop = _op("Stop the test", {"200": _json(_ref("Done"))})
    reset = _op("Start a new stats epoch", {"200": _text("text/html", "ok", {"enum": ["ok"]})})
    history_csv = _csv("requests_full_history")["get"]
    history_csv["responses"]["404"] = _json(_ref("Failure"), "Not started with --csv-full-history")
    download = {"name": "download", "in": "query", "required": False, "schema": _STR}
    asset = {"name": "path", "in": "path", "required": True, "schema": _STR}
    any_file = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
    return {
        "/swarm": {
            "post": _op(
                "Start a test, change its users, or hand it to a load shape",
                {"200": _json(_ref("SwarmStarted")), "400": failure},
                requestBody={
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {"schema": _ref("SwarmForm")},
                        "application/json": {"schema": _ref("SwarmRequest")},
                    },
                },
            )
        },
        "/stop": {"get": stop, "post": stop},
        "/stats/reset": {"get": reset, "post": reset},
        "/stats/requests": _get("Locust's stats document plus horde's worker keys", "Report"),
        "/worker-count": _get("Workers ready, spawning or running", "WorkerCount"),
        "/exceptions": _get("Task exceptions, grouped", "Exceptions"),
        "/tasks": _get("Class and task ratios", "Tasks"),
        "/logs": _get("Recent log lines of the master and workers", "Logs"),
        "/stats/history": _get("The run's sampled points", "History"),
        "/stats/thresholds": _get("Each threshold's measured value and verdict", "Thresholds"),
        "/ui-config": _get("What the dashboard's start form offers", "UiConfig"),
        "/openapi.json": _get("This document", "OpenApi"),
        "/stats/requests/csv": _csv("requests"),
        "/stats/failures/csv": _csv("failures"),
        "/exceptions/csv": _csv("exceptions"),
        "/stats/requests_full_history/csv": {"get": history_csv},
        "/stats/report": {
            "get": _op(
                "The HTML report; ?download=1 as an attachment",
                {"200": _text("text/html", "The report")},
                parameters=[download],
            )
        },
        "/metrics": {"get": _op("Prometheus metrics", {"200": _text("text/plain", "Metrics")})},
        "/": {"get": _op("The dashboard", {"200": _text("text/html", "The dashboard page")})},
        "/assets/{path}": {
            "get": _op(
                "The dashboard's static files",
                {"200": {"description": "The file", "content": any_file}, "404": failure},
                parameters=[asset],
            )
        },
    }


def document(
    base_path: str = "",
    *,
    user_classes: Sequence[str] | None = None,
    shape_classes: Sequence[str] | None = None,
    max_users: int | None = None,
    script_options: Sequence[ScriptOption] = (),
) -> dict[str, Any]:
    """The OpenAPI document of a master serving under ``base_path``.

    ``user_classes``, ``shape_classes`` and ``max_users``, when given, narrow the
    ``/swarm`` fields to the names and bound this master accepts; ``script_options`` (the
    script's own, Locust's ``init_command_line_parser``) are fields too.
    """
    schemas: dict[str, Schema] = {
        "SwarmForm": _swarm_body(
            user_classes, shape_classes, max_users, json=False, script_options=script_options
        ),
        "SwarmRequest": _swarm_body(
            user_classes, shape_classes, max_users, json=True, script_options=script_options
        ),
        "SwarmStarted": _object(
            {
                "success": {"type": "boolean", "enum": [True]},
                "message": _STR,
                "host": _STR,
                "run_time": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
                "user_classes": _STRINGS,
                "shape_class": _STR,
            },
            optional=["run_time", "user_classes", "shape_class"],
        ),
        "Done": _DONE,
        "Failure": _FAILURE,
        "Denied": _DENIED,
        "StatsEntry": _ENTRY,
        "StatsError": _ERROR,
        "Worker": _WORKER,
        "Report": _REPORT,
        "WorkerCount": _object({"worker_count": _INT}),
        "Exceptions": _object(
            {
                "exceptions": {
                    "type": "array",
                    "items": _object(
                        {"count": _INT, "msg": _STR, "traceback": _STR, "nodes": _STR}
                    ),
                }
            }
        ),
        "TaskNode": _TASK_NODE,
        "Tasks": _object({"per_class": _CLASS_RATIOS, "total": _CLASS_RATIOS}),
        "Logs": _object({"master": _STRINGS, "workers": _map(_STRINGS)}),
        "History": _object({"history": {"type": "array", "items": _HISTORY_POINT}}),
        "Thresholds": _THRESHOLDS,
        "UiConfig": _UI_CONFIG,
        "OpenApi": {"type": "object", "required": ["openapi", "info", "paths"]},
    }
    doc = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "horde master",
            "version": "1",
            "description": "Locust's web API, as a horde master serves it.",
        },
        "servers": [{"url": base_path or "/"}],
        "security": [{"basicAuth": []}, {"bearerAuth": []}],
        "paths": _paths(),
        "components": {
            "schemas": schemas,
            "responses": {
                "Unauthorized": {
                    "description": "Missing or wrong credentials",
                    "headers": {"WWW-Authenticate": {"schema": _STR}},
                    "content": {"application/json": {"schema": _ref("Denied")}},
                }
            },
            "securitySchemes": {
                "basicAuth": {"type": "http", "scheme": "basic"},
                "bearerAuth": {"type": "http", "scheme": "bearer"},
            },
        },
    }
    return copy.deepcopy(doc)  # the parts are shared module constants; callers may mutate
