"""The HTTP shim: Locust's control routes on Flask, served by gevent's WSGI server.

Thin by design: each route parses and validates its input, calls the coordinator through
:meth:`MasterLoops.command`, and renders the answer. It holds no test state. A bad field
gets HTTP 400 with Locust's body ``{"success": false, "message": ..., "host": ...}``
naming the field (Locust answers 200; a client that reads ``success`` sees the same).
``/stats/requests`` is rendered at most every ``report_cache`` seconds however many
clients poll it.

Imports: Flask, gevent, horde.master.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, jsonify, request
from gevent.pywsgi import WSGIServer

from horde.master.coordinator import CommandError, SwarmRequest
from horde.master.loops import MasterLoops
from horde.master.timespan import parse_timespan
from horde.master.view import requests_report
from horde.master.wsgi import start_server


class FieldError(ValueError):
    """A request field that cannot be used; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _form() -> dict[str, Any]:
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise FieldError("body", "the JSON body must be an object")
        return body
    return request.form.to_dict()


def _int_field(form: dict[str, Any], name: str) -> int:
    raw = form.get(name)
    if raw is None or raw == "":
        raise FieldError(name, f"{name} is required")
    try:
        value = float(raw) if not isinstance(raw, int) else raw
    except (TypeError, ValueError):
        raise FieldError(name, f"{name} must be an integer, got {str(raw)[:40]!r}") from None
    if isinstance(raw, bool) or not math.isfinite(value) or value != int(value):
        raise FieldError(name, f"{name} must be an integer, got {str(raw)[:40]!r}")
    return int(value)


def _float_field(form: dict[str, Any], name: str, default: float | None) -> float:
    raw = form.get(name)
    if raw is None or raw == "":
        if default is None:
            raise FieldError(name, f"{name} is required")
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise FieldError(name, f"{name} must be a number, got {str(raw)[:40]!r}") from None
    if isinstance(raw, bool) or not math.isfinite(value) or value <= 0:
        raise FieldError(name, f"{name} must be a positive number, got {str(raw)[:40]!r}")
    return value


def _host_field(form: dict[str, Any]) -> str:
    raw = form.get("host") or ""
    if not isinstance(raw, str):
        raise FieldError("host", "host must be a string")
    host = raw.strip()
    if host:
        parts = urlsplit(host)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FieldError("host", f"host must be an http(s) URL, got {host[:80]!r}")
    return host


def parse_swarm(form: dict[str, Any]) -> SwarmRequest:
    """Validate a ``/swarm`` form or JSON body."""
    run_time_raw = form.get("run_time")
    run_time: float | None = None
    if run_time_raw not in (None, ""):
        try:
            run_time = parse_timespan(run_time_raw)
        except (TypeError, ValueError) as exc:
            raise FieldError("run_time", f"run_time: {exc}") from None
    return SwarmRequest(
        user_count=_int_field(form, "user_count"),
        spawn_rate=_float_field(form, "spawn_rate", 1.0),
        host=_host_field(form),
        run_time=run_time,
    )


def create_app(loops: MasterLoops) -> Flask:
    """Build the Flask app for one master."""
    app = Flask("horde.master")
    cache: dict[str, Any] = {"at": -math.inf, "body": None}
    max_age = loops.coordinator.settings.report_cache

    def current_host() -> str:
        return loops.coordinator.host

    def fail(message: str, status: int = 400) -> tuple[Response, int]:
        body = {"success": False, "message": message, "host": current_host()}
        return jsonify(body), status

    @app.post("/swarm")
    def swarm() -> Any:
        try:
            swarm_request = parse_swarm(_form())
            loops.command(lambda c, now: c.start(swarm_request, now))
        except (FieldError, CommandError) as exc:
            return fail(str(exc))
        cache["at"] = -math.inf
        body: dict[str, Any] = {
            "success": True,
            "message": "Swarming started",
            "host": current_host(),
        }
        if swarm_request.run_time is not None:
            body["run_time"] = swarm_request.run_time
        return jsonify(body)

    @app.route("/stop", methods=["GET", "POST"])
    def stop() -> Any:
        loops.command(lambda c, now: c.stop(now))
        cache["at"] = -math.inf
        return jsonify({"success": True, "message": "Test stopped"})

    @app.route("/stats/reset", methods=["GET", "POST"])
    def reset() -> Any:
        loops.command(lambda c, now: c.reset_stats(now))
        cache["at"] = -math.inf
        return Response("ok", mimetype="text/plain")

    @app.get("/stats/requests")
    def stats_requests() -> Any:
        now = loops.clock()
        if cache["body"] is None or now - cache["at"] > max_age:
            cache["body"] = requests_report(loops.coordinator, now)
            cache["at"] = now
        return jsonify(cache["body"])

    @app.get("/worker-count")
    def worker_count() -> Any:
        return jsonify({"worker_count": len(loops.coordinator.registry.active())})

    @app.get("/exceptions")
    def exceptions() -> Any:
        groups = loops.coordinator.exceptions.groups()
        return jsonify({"exceptions": [g.to_json() for g in groups]})

    @app.errorhandler(404)
    def not_found(_: Exception) -> Any:
        return fail("not found", 404)

    @app.errorhandler(405)
    def not_allowed(_: Exception) -> Any:
        return fail("method not allowed", 405)

    @app.errorhandler(Exception)
    def internal(exc: Exception) -> Any:
        app.logger.exception("request failed")
        return fail(f"internal error: {type(exc).__name__}", 500)

    return app


def serve(app: Flask, host: str, port: int) -> WSGIServer:
    """Start serving ``app`` on gevent's WSGI server; returns the started server."""
    return start_server(host, port, app)
