"""The master's read-only web documents: downloads, report, metrics, dashboard and helpers.

Responsibility: the routes that only read the run: the CSV downloads with Locust's
columns and attachment names, the HTML report, Prometheus ``/metrics``, ``/tasks``,
``/logs``, ``/stats/history``, the dashboard's page, static files and configuration, and
``/openapi.json``. Each renders a pure function of the coordinator's state.

Imports: Flask, horde.master.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, jsonify, request, send_file, send_from_directory

from horde.master import csvout, htmlreport, metrics, openapi
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

    @property
    def _coordinator(self) -> Any:
        return self.loops.coordinator

    def _filename(self, kind: str, ext: str = "csv") -> str:
        c = self._coordinator
        return csvout.attachment_filename(
            c.stats.start_time, self.context.locustfile, c.host, kind, ext
        )

    def _csv(self, text: str, kind: str) -> Response:
        response = Response(text, content_type="text/csv")
        response.headers["Content-Disposition"] = f"attachment;filename={self._filename(kind)}"
        return response

    def requests_csv(self) -> Response:
        """``GET /stats/requests/csv``."""
        text = csvout.requests_csv(self._coordinator.stats, self.loops.clock())
        return self._csv(text, "requests")

    def failures_csv(self) -> Response:
        """``GET /stats/failures/csv``."""
        return self._csv(csvout.failures_csv(self._coordinator.stats), "failures")

    def exceptions_csv(self) -> Response:
        """``GET /exceptions/csv``."""
        return self._csv(csvout.exceptions_csv(self._coordinator.exceptions), "exceptions")

    def history_csv(self) -> Any:
        """``GET /stats/requests_full_history/csv``: the ``--csv-full-history`` file."""
        path = self.context.history_csv_path
        if path is not None and not Path(path).is_file():  # on, but no run has written yet
            header = csvout.render_csv(csvout.history_header(), [])
            return self._csv(header, "requests_full_history")
        if path is None:
            body = {
                "success": False,
                "message": "the master was not started with --csv and --csv-full-history",
                "host": self._coordinator.host,
            }
            return jsonify(body), 404
        return send_file(
            Path(path).resolve(),
            mimetype="text/csv",
            as_attachment=True,
            download_name=self._filename("requests_full_history"),
            max_age=0,
        )

    def report(self) -> Response:
        """``GET /stats/report``: the HTML report; ``?download=1`` as an attachment."""
        download = bool(request.args.get("download"))
        c = self._coordinator
        now = self.loops.clock()
        data = htmlreport.report_data(
            c,
            c.history.points(),
            now,
            locustfile=self.context.locustfile,
            show_download_link=not download,
        )
        response = Response(htmlreport.render_report(data), mimetype="text/html")
        if download:
            name = self._filename("", "html")
            response.headers["Content-Disposition"] = f"attachment;filename={name}"
        return response

    def metrics(self) -> Response:
        """``GET /metrics``: Prometheus text format."""
        body = metrics.render_metrics(self._coordinator, self.loops.clock())
        return Response(body, content_type=metrics.CONTENT_TYPE)

    def tasks(self) -> Any:
        """``GET /tasks``: per-class and total task ratios of the running users."""
        running: dict[str, int] = {}
        for record in self._coordinator.registry.active():
            for name, count in record.user_classes_count.items():
                running[name] = running.get(name, 0) + count
        return jsonify(tasks_document(self.context.user_classes, running))

    def logs(self) -> Any:
        """``GET /logs``: the master's recent lines and each worker's."""
        workers = {w: list(lines) for w, lines in self._coordinator.worker_logs.items()}
        return jsonify({"master": self.context.log_lines(), "workers": workers})

    def history(self) -> Any:
        """``GET /stats/history``: the run's sampled points (horde's, for charts)."""
        points = self._coordinator.history.points()
        return jsonify({"history": [p.to_json() for p in points]})

    def ui_config(self) -> Any:
        """``GET /ui-config``: what the dashboard's start form offers."""
        s = self._coordinator.settings
        return jsonify(
            {
                "user_classes": [spec.name for spec in self._coordinator.user_classes],
                "shape_classes": list(self.context.shape_names),
                "host": self._coordinator.host,
                "users": s.users,
                "spawn_rate": s.spawn_rate,
                "run_time": s.run_time,
                "locustfile": self.context.locustfile,
                "version": self.context.version,
                "history_csv": self.context.history_csv_path is not None,
            }
        )

    def openapi(self) -> Any:
        """``GET /openapi.json``: the OpenAPI 3 description of the JSON routes."""
        c = self._coordinator
        document = openapi.document(
            c.settings.web_base_path,
            user_classes=[spec.name for spec in c.user_classes],
            shape_classes=sorted(c.shapes),
            max_users=c.settings.max_users,
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
        ("/tasks", routes.tasks),
        ("/logs", routes.logs),
        ("/ui-config", routes.ui_config),
        ("/openapi.json", routes.openapi),
        ("/", routes.index),
        ("/assets/<path:path>", routes.asset),
    ):
        bp.add_url_rule(rule, view_func=view, methods=get)
