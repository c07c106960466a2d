"""The HTTP shim: Locust's web routes on Flask, served by gevent's WSGI server.

Thin by design: each route parses and validates its input, calls the coordinator through
:meth:`MasterLoops.command`, and renders the answer from the coordinator's immutable
snapshot (:mod:`horde.master.snapshot`); it holds no test state, only a cache of the
rendered ``/stats/requests``. A bad field gets HTTP 400 with Locust's body
``{"success": false, "message": ..., "host": ...}`` naming the field (Locust answers 200;
a client that reads ``success`` sees the same); unknown routes 404; nothing a client
sends produces a 500. Every route lives under the
optional ``--web-base-path`` and, with ``--web-auth``/``--web-auth-token``, behind
:class:`~horde.master.auth.AuthMiddleware`. This module holds the control routes and
assembles the app; :mod:`horde.master.http_data` holds the read-only documents.

Imports: Flask, gevent, horde.master.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gevent.event
from flask import Blueprint, Flask, Response, current_app, jsonify, request
from gevent.pywsgi import WSGIServer
from werkzeug.exceptions import HTTPException

from horde.master.auth import AuthMiddleware
from horde.master.coordinator import CommandError
from horde.master.forms import FieldError, form_from_pairs, parse_swarm
from horde.master.loops import MasterLoops
from horde.master.snapshot import MasterSnapshot
from horde.master.view import requests_report, worker_rows_json
from horde.master.wsgi import start_server

LIST_FIELDS = ("user_classes", "tags", "exclude_tags", "thresholds")
"""Form fields that may repeat (each value kept)."""
RENDER_SLICE = 100
"""Workers encoded between two calls of the pause (a :class:`~horde.master.loops.Pacer`)."""


@dataclass(frozen=True)
class WebContext:
    """What the routes know beyond the coordinator: the script and the outputs."""

    locustfile: str = ""
    user_classes: Sequence[type] = ()
    shape_names: Sequence[str] = ()
    default_shape: str | None = None
    """The shape a swarm gets without ``shape_class``: the script's only one, or ``--shape``."""
    version: str = ""
    log_lines: Callable[[], list[str]] = field(default=list)
    history_csv_path: str | None = None


def _render_report(snapshot: MasterSnapshot, pause: Callable[[], None]) -> bytes:
    """``jsonify``'s bytes for the ``/stats/requests`` document, made a slice at a time.

    With thousands of workers and hundreds of busy entries the document takes tens of
    milliseconds to make; between slices (of entries, then of workers) the receive loop
    gets to run (``pause``, a :class:`~horde.master.loops.Pacer`, waits for it every few
    milliseconds of work), so heartbeats are not answered late meanwhile.
    """
    dumps = current_app.json.dumps
    report = requests_report(snapshot, workers=False, pause=pause)
    records, requests = snapshot.workers, snapshot.worker_requests
    parts = []
    for start in range(0, len(records), RENDER_SLICE):
        parts.append(worker_rows_json(records[start : start + RENDER_SLICE], requests))
        pause()
    head = dumps(report, separators=(",", ":"))[:-1]
    comma = "," if len(head) > 1 else ""
    return f'{head}{comma}"workers":[{",".join(parts)}]}}\n'.encode()


class ControlRoutes:
    """The routes that change or report the run; they hold only a report cache."""

    def __init__(self, loops: MasterLoops, default_shape: str | None = None) -> None:
        self.loops = loops
        self.default_shape = default_shape
        """The shape a swarm without ``shape_class`` runs (see :class:`WebContext`)."""
        self.max_age = loops.settings.report_cache
        self._report: bytes | None = None
        self._report_at = -math.inf
        self._rendering: gevent.event.Event | None = None
        self._generation = 0

    def fail(self, message: str, status: int = 400) -> tuple[Response, int]:
        """Locust's failure body, with an honest status code."""
        body = {"success": False, "message": message, "host": self.loops.run_snapshot().host}
        return jsonify(body), status

    def _changed(self) -> None:
        self._report = None
        self._generation += 1  # a render under way when the test changed is not kept

    def swarm(self) -> Any:
        """``POST /swarm``: start a test, change its user count, or hand it to a shape."""
        try:
            options = self.loops.settings.script_options
            swarm_request = parse_swarm(_form(), self.default_shape, options)
            self.loops.command(lambda c, now: c.start(swarm_request, now))
        except (FieldError, CommandError) as exc:
            return self.fail(str(exc))
        self._changed()
        message = "Swarming started"
        if swarm_request.shape_class is not None:
            message = f"Swarming started using shape class '{swarm_request.shape_class}'"
        body: dict[str, Any] = {
            "success": True,
            "message": message,
            "host": self.loops.run_snapshot().host,
        }
        run_time = swarm_request.run_time
        if run_time is not None:
            body["run_time"] = int(run_time) if run_time == int(run_time) else run_time
        if swarm_request.user_classes is not None:
            body["user_classes"] = sorted(swarm_request.user_classes)
        return jsonify(body)

    def stop(self) -> Any:
        """``GET|POST /stop``."""
        self.loops.command(lambda c, now: c.stop(now))
        self._changed()
        return jsonify({"success": True, "message": "Test stopped"})

    def reset(self) -> Any:
        """``GET|POST /stats/reset``: a new stats epoch; a running test goes on."""
        self.loops.command(lambda c, now: c.reset_stats(now))
        self._changed()
        return Response("ok", mimetype="text/html")  # Locust's content type for "ok"

    def stats_requests(self) -> Any:
        """``GET /stats/requests``, rendered at most every ``report_cache`` seconds."""
        now = self.loops.clock()
        if self._report is None or now - self._report_at > self.max_age:
            pending = self._rendering
            if pending is None:
                return Response(self._render(now), mimetype="application/json")
            if self._report is None:  # another request renders and nothing older is kept
                pending.wait()
            if self._report is None:  # that render was not kept (the test changed)
                return Response(self._render(now), mimetype="application/json")
        return Response(self._report, mimetype="application/json")

    def _render(self, now: float) -> bytes:
        """Render the report (yielding between slices), cache it unless the test changed."""
        done = self._rendering = gevent.event.Event()
        generation = self._generation
        try:
            body = _render_report(self.loops.snapshot(now), self.loops.pacer())
        finally:
            if self._rendering is done:
                self._rendering = None
            done.set()
        if generation == self._generation:
            self._report, self._report_at = body, now
        return body

    def worker_count(self) -> Any:
        """``GET /worker-count``."""
        return jsonify({"worker_count": self.loops.run_snapshot().worker_count})

    def exceptions(self) -> Any:
        """``GET /exceptions``: task exceptions grouped, with tracebacks and workers."""
        groups = self.loops.snapshot().exceptions
        return jsonify({"exceptions": [g.to_json() for g in groups]})


def _form() -> dict[str, Any]:
    """The request's form, or its JSON object body."""
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise FieldError("body", "the JSON body must be an object")
        return body
    return form_from_pairs(list(request.form.items(multi=True)), LIST_FIELDS)


def _control_routes(bp: Blueprint, routes: ControlRoutes) -> None:
    both = ["GET", "POST"]
    bp.add_url_rule("/swarm", view_func=routes.swarm, methods=["POST"])
    bp.add_url_rule("/stop", view_func=routes.stop, methods=both)
    bp.add_url_rule("/stats/reset", view_func=routes.reset, methods=both)
    bp.add_url_rule("/stats/requests", view_func=routes.stats_requests, methods=["GET"])
    bp.add_url_rule("/worker-count", view_func=routes.worker_count, methods=["GET"])
    bp.add_url_rule("/exceptions", view_func=routes.exceptions, methods=["GET"])


def create_app(loops: MasterLoops, context: WebContext | None = None) -> Flask:
    """Build the Flask app for one master (routes under the settings' base path)."""
    from horde.master.http_data import DataRoutes, register_data_routes

    settings = loops.settings
    app = Flask("horde.master", static_folder=None)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep Locust's key order
    bp = Blueprint("horde", "horde.master", url_prefix=settings.web_base_path or None)
    context = context or WebContext()
    routes = ControlRoutes(loops, context.default_shape)
    _control_routes(bp, routes)
    register_data_routes(bp, DataRoutes(loops, context))
    app.register_blueprint(bp)
    app.register_error_handler(404, lambda _: routes.fail("not found", 404))
    app.register_error_handler(405, lambda exc: _not_allowed(routes, exc))

    def internal(exc: Exception) -> Any:
        if isinstance(exc, HTTPException):  # a client error Werkzeug raised, e.g. a bad body
            if exc.code is not None and 300 <= exc.code < 400:
                return exc  # a redirect (the base path without its slash)
            return routes.fail(exc.description or exc.name, exc.code or 400)
        app.logger.exception("request failed")
        return routes.fail(f"internal error: {type(exc).__name__}", 500)

    app.register_error_handler(Exception, internal)
    return app


def _not_allowed(routes: ControlRoutes, exc: Exception) -> Any:
    """405 with the ``Allow`` header HTTP requires."""
    response, status = routes.fail("method not allowed", 405)
    methods = getattr(exc, "valid_methods", None) or []
    response.headers["Allow"] = ", ".join(sorted(methods))
    return response, status


def wrap_auth(app: Any, basic: tuple[str, str] | None, token: str | None) -> Any:
    """The WSGI app behind authentication when any credential is configured."""
    if basic is None and token is None:
        return app
    return AuthMiddleware(app, basic=basic, token=token)


def serve(
    app: Any,
    host: str,
    port: int,
    *,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> WSGIServer:
    """Start serving ``app`` (HTTPS with a certificate); returns the started server."""
    return start_server(host, port, app, certfile=certfile, keyfile=keyfile)
