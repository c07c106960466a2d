"""``environment.web_ui`` on the master: the Flask app scripts extend, as Locust's ``WebUI``.

Scripts add to the master's web server in an ``init`` listener, as they do on Locust:
``environment.web_ui.app.route(...)``, ``register_blueprint``, ``after_request``, and read
``template_args`` (after ``update_template_args()``). The app is the one horde serves,
so every route a script adds sits behind horde's own authentication (``--web-auth``,
``--web-auth-token``), which wraps the whole server. Locust's login hooks
(``login_manager.user_loader``, ``auth_args``) are accepted and recorded, so scripts that
set them run; they never decide who gets in: horde's authentication stays the only gate.
On a worker, on a master without a web server, and in a headless run (as in Locust, though
horde still serves its API there) ``environment.web_ui`` is None.

Imports: the standard library, Flask (the app's type) and horde.master.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask

from horde.master.http import WebContext
from horde.master.loops import MasterLoops

__all__ = ["LoginHooks", "WebUI"]

F = TypeVar("F", bound=Callable[..., Any])


class LoginHooks:
    """Locust's ``web_ui.login_manager`` as scripts use it: hooks recorded, never asked."""

    def __init__(self) -> None:
        self.hooks: dict[str, Callable[..., Any]] = {}
        self.login_view: str | None = None

    def user_loader(self, callback: F) -> F:
        """Record a user loader (horde's authentication does not use it)."""
        self.hooks["user_loader"] = callback
        return callback

    def request_loader(self, callback: F) -> F:
        """Record a request loader (horde's authentication does not use it)."""
        self.hooks["request_loader"] = callback
        return callback


class WebUI:
    """The master's web server as a script sees it."""

    def __init__(self, app: Flask, loops: MasterLoops, context: WebContext) -> None:
        self.app = app
        """The Flask app horde serves: add routes and blueprints here."""
        self.loops = loops
        self.context = context
        self.template_args: dict[str, Any] = {}
        """What the dashboard knows, after :meth:`update_template_args`."""
        self.auth_args: dict[str, Any] = {}
        """Locust's login-form settings; recorded (horde's login is Basic or a token)."""
        self.login_manager = LoginHooks()
        self.server: Any = None
        self.greenlet: Any = None

    def update_template_args(self) -> None:
        """Fill :attr:`template_args` with the run's state, Locust's keys where they exist."""
        snapshot = self.loops.snapshot()
        run = snapshot.run
        self.template_args = {
            "locustfile": self.context.locustfile,
            "state": run.state.value,
            "is_distributed": True,
            "user_count": run.user_count,
            "version": self.context.version,
            "host": run.host,
            "num_users": snapshot.settings.users,
            "spawn_rate": snapshot.settings.spawn_rate,
            "worker_count": run.worker_count,
            "available_user_classes": [spec.name for spec in snapshot.user_classes],
            "available_shape_classes": list(self.context.shape_names),
            "stats_history_enabled": self.context.history_csv_path is not None,
        }

    def auth_required_if_enabled(self, view: F) -> F:
        """Locust's decorator for a script's own route: horde's authentication already
        guards every route, so the view is returned as it is."""
        return view
