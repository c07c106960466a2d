"""Custom messages both ways, noted as "SIDE what" lines in $EVENTS_LOG.

The master greets every worker at test_start; each worker answers with an ack that the
master notes. A worker also notes, once, what its ``environment.runner.stats`` says of its
first request. Written with horde's imports; tests run it with `locust` ones for Locust
workers.
"""

import os

from horde import HttpUser, constant, events, task
from horde.runners import MasterRunner, WorkerRunner

LOG = os.environ["EVENTS_LOG"]


def note(text):
    with open(LOG, "a") as out:
        out.write(text + "\n")


def on_greet(environment, msg, **_kwargs):
    note(f"worker greet {msg.data['hello']}")
    environment.runner.send_message("ack", {"from": environment.runner.client_id})


def on_ack(environment, msg, **_kwargs):
    note(f"master ack {msg.node_id == msg.data['from']}")


@events.init.add_listener
def on_init(environment, **_kwargs):
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.register_message("greet", on_greet)
    if isinstance(environment.runner, MasterRunner):
        environment.runner.register_message("ack", on_ack)
        note("master runner")


@events.test_start.add_listener
def on_test_start(environment, **_kwargs):
    if isinstance(environment.runner, MasterRunner):
        for client_id in environment.runner.clients:
            environment.runner.send_message("greet", {"hello": "there"}, client_id)


class Visitor(HttpUser):
    wait_time = constant(0.2)
    noted_stats = False

    @task
    def home(self):
        self.client.get("/")
        if not Visitor.noted_stats:  # the worker's own requests since its last report
            Visitor.noted_stats = True
            stats = self.environment.runner.stats
            home = stats.get("/", "GET")
            note(
                f"worker stats {home.num_requests >= 1} {stats.total.num_requests >= 1}"
                f" {home.fail_ratio == 0} {home.avg_response_time > 0}"
                f" {home.get_response_time_percentile(0.5) > 0}"
            )
