"""Task ratios for ``GET /tasks``: how often each class and task runs, as Locust shows it.

Responsibility: from the script's user classes (each ``tasks`` list holds one entry per
unit of weight) and the users each class has running, compute Locust's document:
``per_class`` (each class's share of users, and each task's share within its class) and
``total`` (each task's share of all task picks). Task sets nest under ``tasks``. Pure.

Imports: the standard library only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any


def _name(entry: Any) -> str:
    return str(getattr(entry, "__name__", entry))


def _is_task_set(entry: Any) -> bool:
    return isinstance(entry, type) and isinstance(getattr(entry, "tasks", None), list)


def _task_ratios(tasks: list[Any], parent: float, total: bool, depth: int = 0) -> dict[str, Any]:
    """Each task's weight over the list's total weight, times ``parent`` if ``total``."""
    parent = parent if total else 1.0
    if not tasks or depth > 20:  # a task set that (indirectly) contains itself
        return {}
    weights = Counter(tasks)
    result: dict[str, Any] = {}
    for entry, weight in weights.items():
        node: dict[str, Any] = {"ratio": parent * weight / len(tasks)}
        if _is_task_set(entry):
            node["tasks"] = _task_ratios(entry.tasks, node["ratio"], total, depth + 1)
        name = _name(entry)
        if name in result:  # two tasks with one name: add their shares
            result[name]["ratio"] += node["ratio"]
        else:
            result[name] = node
    return result


def class_ratios(
    user_classes: Iterable[type], running: Mapping[str, int], *, total: bool
) -> dict[str, Any]:
    """Locust's ``get_ratio``: class shares of running users, task shares below them.

    With ``total`` false, task shares are within their class (they add up to 1 per
    class); with ``total`` true they are shares of all users' task picks.
    """
    users = sum(running.values()) or 1
    result: dict[str, Any] = {}
    for cls in user_classes:
        share = running.get(cls.__name__, 0) / users
        tasks = list(getattr(cls, "tasks", []) or [])
        result[cls.__name__] = {
            "ratio": share,
            "tasks": _task_ratios(tasks, share, total),
        }
    return result


def tasks_document(user_classes: Iterable[type], running: Mapping[str, int]) -> dict[str, Any]:
    """The ``GET /tasks`` answer: ``{"per_class": ..., "total": ...}``."""
    classes = list(user_classes)
    return {
        "per_class": class_ratios(classes, running, total=False),
        "total": class_ratios(classes, running, total=True),
    }
