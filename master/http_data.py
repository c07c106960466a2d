"""The master's read-only web documents: downloads, report, metrics, dashboard and helpers.

Responsibility: the routes that only read the run: the CSV downloads with Locust's
columns and attachment names, the HTML report, Prometheus ``/metrics``, ``/tasks``,
``/logs``, ``/stats/history``, the dashboard's page, static files and configuration, and
``/openapi.json``. Each renders a pure function of the coordinator's snapshot
(:class:`~horde.master.snapshot.MasterSnapshot`), never its live fields.

Imports: Flask, horde.master.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, jsonify, request, send_file, send_from_directory

from horde.master import csvout, htmlreport, metrics, openapi
from horde.master.snapshot import MasterSnapshot
from horde.master.tasks import tasks_document

if TYPE_CHECKING:
    from horde.master.http import WebContext
    from horde.master.loops import MasterLoops

STATIC_DIR = Path(__file__).parent / "static"


class DataRoutes:
    """Handlers of the read-only routes of one master."""

    def __init__(self, loops: MasterLoops, context: WebContext) -> None:
        self.loops = loops
        self.context = context

    def _filename(self, snapshot: MasterSnapshot, kind: str, ext: str = "csv") -> str:
        return csvout.attachment_filename(
            snapshot.stats.start_time, self.context.locustfile, snapshot.run.host, kind, ext
        )

    def _csv(self, snapshot: MasterSnapshot, text: str, kind: str) -> Response:
        response = Response(text, content_type="text/csv")
        name = self._filename(snapshot, kind)
        response.headers["Content-Disposition"] = f"attachment;filename={name}"
        return response

    def requests_csv(self) -> Response:
        """``GET /stats/requests/csv``."""
        snapshot = self.loops.snapshot()
        text = csvout.requests_csv(snapshot.stats, snapshot.run.now)
        return self._csv(snapshot, text, "requests")

    def failures_csv(self) -> Response:
        """``GET /stats/failures/csv``."""
        snapshot = self.loops.snapshot()
        return self._csv(snapshot, csvout.failures_csv(snapshot.stats), "failures")

    def exceptions_csv(self) -> Response:
        """``GET /exceptions/csv``."""
        snapshot = self.loops.snapshot()
        return self._csv(snapshot, csvout.exceptions_csv(snapshot.exceptions), "exceptions")

    def history_csv(self) -> Any:
        """``GET /stats/requests_full_history/csv``: the ``--csv-full-history`` file."""
        path = self.context.history_csv_path
        snapshot = self.loops.snapshot()
        if path is not None and not Path(path).is_file():  # on, but no run has written yet
            header = csvout.render_csv(csvout.history_header(), [])
            return self._csv(snapshot, header, "requests_full_history")
        if path is None:
            body = {
                "success": False,
                "message": "the master was not started with --csv and --csv-full-history",
                "host": snapshot.run.host,
            }
            return jsonify(body), 404
        return send_file(
            Path(path).resolve(),
            mimetype="text/csv",
            as_attachment=True,
            download_name=self._filename(snapshot, "requests_full_history"),
            max_age=0,
        )

    def report(self) -> Response:
        """``GET /stats/report``: the HTML report; ``?download=1`` as an attachment."""
        download = bool(request.args.get("download"))
        snapshot = self.loops.snapshot()
        data = htmlreport.report_data(
            snapshot, locustfile=self.context.locustfile, show_download_link=not download
        )
        response = Response(htmlreport.render_report(data), mimetype="text/html")
        if download:
            name = self._filename(snapshot, "", "html")
            response.headers["Content-Disposition"] = f"attachment;filename={name}"
        return response

    def metrics(self) -> Response:
        """``GET /metrics``: Prometheus text format."""
        body = metrics.render_metrics(self.loops.snapshot())
        return Response(body, content_type=metrics.CONTENT_TYPE)

    def thresholds(self) -> Any:
        """``GET /stats/thresholds``: each threshold's measured value and verdict."""
        return jsonify(self.loops.snapshot().verdict.to_json())

    def tasks(self) -> Any:
        """``GET /tasks``: per-class and total task ratios of the running users."""
        running = dict(self.loops.snapshot().running_classes)
        return jsonify(tasks_document(self.context.user_classes, running))

    def logs(self) -> Any:
        """``GET /logs``: the master's recent lines and each worker's."""
        workers = {w: list(lines) for w, lines in self.loops.coordinator.worker_logs().items()}
        return jsonify({"master": self.context.log_lines(), "workers": workers})

    def history(self) -> Any:
        """``GET /stats/history``: the run's sampled points (horde's, for charts)."""
        points = self.loops.snapshot().history
        return jsonify({"history": [p.to_json() for p in points]})

    def ui_config(self) -> Any:
        """``GET /ui-config``: what the dashboard's start form offers."""
        snapshot = self.loops.snapshot()
        s = snapshot.settings
        return jsonify(
            {
                "user_classes": [spec.name for spec in snapshot.user_classes],
                "shape_classes": list(self.context.shape_names),
                "host": snapshot.run.host,
                "users": s.users,
                "spawn_rate": s.spawn_rate,
                "run_time": s.run_time,
                "locustfile": self.context.locustfile,
                "version": self.context.version,
                "history_csv": self.context.history_csv_path is not None,
                "extra_options": {
                    o.name: {
                        "value": None if o.is_secret else o.value,
                        "help": o.help,
                        "choices": list(o.choices) if o.choices is not None else None,
                        "kind": o.kind,
                        "is_secret": o.is_secret,
                    }
                    for o in s.script_options
                    if o.include_in_web_ui
                },
            }
        )

    def openapi(self) -> Any:
        """``GET /openapi.json``: the OpenAPI 3 description of the JSON routes."""
        snapshot = self.loops.snapshot()
        document = openapi.document(
            snapshot.settings.web_base_path,
            user_classes=[spec.name for spec in snapshot.user_classes],
            shape_classes=list(snapshot.shape_names),
            max_users=snapshot.settings.max_users,
            script_options=snapshot.settings.script_options,
        )
        return jsonify(document)

    def index(self) -> Response:
        """``GET /``: the dashboard."""
        response = send_from_directory(STATIC_DIR, "index.html", max_age=0)
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'"
        )
        return response

    def asset(self, path: str) -> Response:
        """``GET /assets/<path>``: the dashboard's static files."""
        return send_from_directory(STATIC_DIR, path, max_age=60)


def register_data_routes(bp: Blueprint, routes: DataRoutes) -> None:
    """Add the read-only routes to ``bp``."""
    get = ["GET"]
    for rule, view in (
        ("/stats/requests/csv", routes.requests_csv),
        ("/stats/failures/csv", routes.failures_csv),
        ("/exceptions/csv", routes.exceptions_csv),
        ("/stats/requests_full_history/csv", routes.history_csv),
        ("/stats/report", routes.report),
        ("/stats/history", routes.history),
        ("/metrics", routes.metrics),
        ("/stats/thresholds", routes.thresholds),
        ("/tasks", routes.tasks),
        ("/logs", routes.logs),
        ("/ui-config", routes.ui_config),
        ("/openapi.json", routes.openapi),
        ("/", routes.index),
        ("/assets/<path:path>", routes.asset),
    ):
        bp.add_url_rule(rule, view_func=view, methods=get)
