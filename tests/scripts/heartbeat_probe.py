"""Listens to the heartbeat and usage events; its heartbeat_received listener blocks the
worker's event loop for 2.5 s once (a busy loop), which must not delay a heartbeat."""

import os
import time

from horde import HttpUser, constant, events, task

LOG = os.environ["EVENTS_LOG"]
blocked = []


def note(text):
    with open(LOG, "a") as out:
        out.write(f"{os.getpid()} {text}\n")


@events.heartbeat_sent.add_listener
def on_sent(client_id, timestamp, **_kwargs):
    note("heartbeat_sent")


@events.heartbeat_received.add_listener
def on_received(client_id, timestamp, **_kwargs):
    note("heartbeat_received")
    if not blocked:
        blocked.append(1)
        end = time.perf_counter() + 2.5
        while time.perf_counter() < end:  # holds the event loop, not just this greenlet
            pass


@events.usage_monitor.add_listener
def on_usage(environment, cpu_usage, memory_usage, **_kwargs):
    note(f"usage_monitor {memory_usage > 0}")


class Visitor(HttpUser):
    wait_time = constant(0.5)

    @task
    def home(self):
        self.client.get("/")
