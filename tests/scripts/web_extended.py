"""Extends the master's web UI as Locust scripts do: a route, a blueprint, login hooks."""

from flask import Blueprint, jsonify

from horde import HttpUser, constant, events, task


@events.init.add_listener
def on_init(environment, **_kwargs):
    if not environment.web_ui:  # a worker (or a master without a web server)
        return

    @environment.web_ui.app.route("/added")
    def added():
        environment.web_ui.update_template_args()
        return jsonify({"added": True, "state": environment.web_ui.template_args["state"]})

    extra = Blueprint("extra", __name__)

    @extra.route("/extra/ping")
    def ping():
        return "pong"

    environment.web_ui.app.register_blueprint(extra)
    environment.web_ui.login_manager.user_loader(lambda user_id: None)
    environment.web_ui.auth_args = {"username_password_callback": "/login_submit"}


class Visitor(HttpUser):
    wait_time = constant(1)

    @task
    def home(self):
        self.client.get("/")
