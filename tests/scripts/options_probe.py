"""Adds its own options (Locust's init_command_line_parser) and notes, on each side, the
values it sees at test_start as "PID NAME=VALUE" lines in $EVENTS_LOG."""

import os

from horde import HttpUser, constant, events, task

LOG = os.environ["EVENTS_LOG"]


@events.init_command_line_parser.add_listener
def add_options(parser):
    parser.add_argument("--my-argument", type=str, default="unset", help="a word")
    parser.add_argument("--my-level", type=int, default=1, choices=[1, 2, 3], help="a level")
    parser.add_argument("--my-flag", action="store_true", default=False)
    parser.add_argument("--my-env", type=str, env_var="PROBE_MY_ENV", default="none")
    parser.add_argument("--my-secret", type=str, default="s3", is_secret=True)


@events.test_start.add_listener
def on_test_start(environment, **_kwargs):
    options = environment.parsed_options
    with open(LOG, "a") as out:
        for name in ("my_argument", "my_level", "my_flag", "my_env"):
            out.write(f"{os.getpid()} {name}={getattr(options, name)}\n")


class Visitor(HttpUser):
    wait_time = constant(0.5)

    @task
    def home(self):
        self.client.get("/")
