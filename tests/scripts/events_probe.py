"""Notes every script event this process fires as "PID EVENT" lines in $EVENTS_LOG.

report_to_master adds a marker; worker_report notes whether the marker arrived. Written
with horde's imports; the compatibility test runs it under Locust with `locust` ones.
"""

import os

from horde import HttpUser, constant, events, task

LOG = os.environ["EVENTS_LOG"]
NAMES = (
    "init",
    "test_start",
    "test_stopping",
    "test_stop",
    "spawning_complete",
    "worker_connect",
    "worker_report",
    "report_to_master",
    "reset_stats",
    "quitting",
    "quit",
)


def note(name):
    with open(LOG, "a") as out:
        out.write(f"{os.getpid()} {name}\n")


def listener(name):
    def on_event(**kwargs):
        if name == "report_to_master":
            kwargs["data"]["marker"] = 7
        if name == "worker_report" and kwargs["data"].get("marker") != 7:
            note("worker_report_without_marker")
            return
        note(name)

    return on_event


for _name in NAMES:
    getattr(events, _name).add_listener(listener(_name))


class Visitor(HttpUser):
    wait_time = constant(0.1)

    @task
    def home(self):
        self.client.get("/")
