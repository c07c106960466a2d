"""``horde.user``: users and tasks, as scripts import them from ``locust.user``.

``horde.user.wait_time`` mirrors ``locust.user.wait_time``.

Imports: the user API.
"""

from __future__ import annotations

from horde.user import wait_time
from horde.worker.api.markov import MarkovTaskSet
from horde.worker.api.tasks import SequentialTaskSet, TaskSet, tag, task
from horde.worker.api.users import HttpUser, User

__all__ = [
    "HttpUser",
    "MarkovTaskSet",
    "SequentialTaskSet",
    "TaskSet",
    "User",
    "tag",
    "task",
    "wait_time",
]
