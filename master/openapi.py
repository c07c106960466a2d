"""The OpenAPI 3.0.3 description of the master's web API, served at ``GET /openapi.json``.

Responsibility: describe every route of :mod:`horde.master.http` and
:mod:`horde.master.http_data`: the ``/swarm`` form and JSON body (from
:mod:`horde.master.openapi_swarm`), and responses strict enough to catch a wrong key or
type (fixed key sets are ``additionalProperties: false``; integers are integers; what may
be null is ``nullable``). The script's class names, shapes and ``--max-users`` tighten the
document when the caller knows them. Basic and Bearer auth are declared globally; the
server enforces them only when ``--web-auth``/``--web-auth-token`` is set. Pure data.

Imports: the standard library, horde.master.openapi_swarm and horde.protocol.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from horde.master.openapi_swarm import swarm_body
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
        "SwarmForm": swarm_body(
            user_classes, shape_classes, max_users, json=False, script_options=script_options
        ),
        "SwarmRequest": swarm_body(
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
