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
from werkzeug.exceptions import HTTPException

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


class ControlRoutes:
    """The route handlers of one master; they hold no test state, only a report cache."""

    def __init__(self, loops: MasterLoops) -> None:
        self.loops = loops
        self.max_age = loops.coordinator.settings.report_cache
        self._report: dict[str, Any] | None = None
        self._report_at = -math.inf

    def fail(self, message: str, status: int = 400) -> tuple[Response, int]:
        """Locust's failure body, with an honest status code."""
        body = {"success": False, "message": message, "host": self.loops.coordinator.host}
        return jsonify(body), status

    def _changed(self) -> None:
        self._report = None

    def swarm(self) -> Any:
        """``POST /swarm``: start a test or change its user count."""
        try:
            swarm_request = parse_swarm(_form())
            self.loops.command(lambda c, now: c.start(swarm_request, now))
        except (FieldError, CommandError) as exc:
            return self.fail(str(exc))
        self._changed()
        body: dict[str, Any] = {
            "success": True,
            "message": "Swarming started",
            "host": self.loops.coordinator.host,
        }
        if swarm_request.run_time is not None:
            body["run_time"] = swarm_request.run_time
        return jsonify(body)

    def stop(self) -> Any:
        """``GET|POST /stop``."""
        self.loops.command(lambda c, now: c.stop(now))
        self._changed()
        return jsonify({"success": True, "message": "Test stopped"})

    def reset(self) -> Any:
        """``GET|POST /stats/reset``: a new stats epoch."""
        self.loops.command(lambda c, now: c.reset_stats(now))
        self._changed()
        return Response("ok", mimetype="text/plain")

    def stats_requests(self) -> Any:
        """``GET /stats/requests``, rendered at most every ``report_cache`` seconds."""
        now = self.loops.clock()
        if self._report is None or now - self._report_at > self.max_age:
            self._report = requests_report(self.loops.coordinator, now)
            self._report_at = now
        return jsonify(self._report)

    def worker_count(self) -> Any:
        """``GET /worker-count``."""
        return jsonify({"worker_count": len(self.loops.coordinator.registry.active())})

    def exceptions(self) -> Any:
        """``GET /exceptions``: task exceptions grouped, with tracebacks and workers."""
        groups = self.loops.coordinator.exceptions.groups()
        return jsonify({"exceptions": [g.to_json() for g in groups]})


def create_app(loops: MasterLoops) -> Flask:
    """Build the Flask app for one master."""
    app = Flask("horde.master")
    routes = ControlRoutes(loops)
    both = ["GET", "POST"]
    app.add_url_rule("/swarm", view_func=routes.swarm, methods=["POST"])
    app.add_url_rule("/stop", view_func=routes.stop, methods=both)
    app.add_url_rule("/stats/reset", view_func=routes.reset, methods=both)
    app.add_url_rule("/stats/requests", view_func=routes.stats_requests, methods=["GET"])
    app.add_url_rule("/worker-count", view_func=routes.worker_count, methods=["GET"])
    app.add_url_rule("/exceptions", view_func=routes.exceptions, methods=["GET"])
    app.register_error_handler(404, lambda _: routes.fail("not found", 404))
    app.register_error_handler(405, lambda _: routes.fail("method not allowed", 405))

    def internal(exc: Exception) -> Any:
        if isinstance(exc, HTTPException):  # a client error Werkzeug raised, e.g. a bad body
            return routes.fail(exc.description or exc.name, exc.code or 400)
        app.logger.exception("request failed")
        return routes.fail(f"internal error: {type(exc).__name__}", 500)

    app.register_error_handler(Exception, internal)
    return app


def serve(app: Flask, host: str, port: int) -> WSGIServer:
    """Start serving ``app`` on gevent's WSGI server; returns the started server."""
    return start_server(host, port, app)
