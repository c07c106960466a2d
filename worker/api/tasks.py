"""Task declaration and the task loop: ``@task``, ``@tag``, ``TaskSet`` and its variants.

A task holder (a User or TaskSet class) lists its tasks in ``tasks`` as Locust does: a list
with one entry per unit of weight, built at class creation from the ``tasks`` attribute
(a list, ``(task, weight)`` pairs or a ``{task: weight}`` dict), the ``@task`` methods and
the base classes' tasks. Picking uses a :class:`TaskTable` (distinct tasks and cumulative
weights) built once per class and tag filter, so a pick is one random number and a bisect.

The loop (:meth:`TaskSet.run`) picks a task, runs it and waits. Task exceptions other than
the user-flow ones are reported through the user (``events.user_error``) and the loop goes
on. ``InterruptTaskSet`` leaves a nested TaskSet; ``StopUser`` and ``GreenletExit`` end the
user after the TaskSet's ``on_stop``.

Imports: the standard library, gevent, structlog, ``horde.protocol.errors`` and
``horde.worker.api`` (iterations, pacing).
"""

from __future__ import annotations

import random
import time
import weakref
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from itertools import cycle
from typing import TYPE_CHECKING, Any, TypeVar, overload

import gevent
from gevent import GreenletExit

from horde.protocol.errors import ConfigError
from horde.worker.api.iterations import take_iteration
from horde.worker.api.pacing import GATE_ATTR, mark_iteration_start

if TYPE_CHECKING:
    from horde.worker.api.users import User

RUNNING, WAITING, STOPPING = "running", "waiting", "stopping"

WEIGHT_ATTR = "horde_task_weight"
TAGS_ATTR = "horde_tags"

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
TaskList = list[Any] | dict[Any, int]


class StopUser(Exception):
    """Raised in a task to stop this user (its ``on_stop`` methods still run)."""


class StopTest(StopUser):
    """Raised in a task when the whole test cannot go on (Locust's name); the user stops."""


class RescheduleTask(Exception):
    """Raised in a task to end it early, as a ``return`` would; the user then waits."""


class RescheduleTaskImmediately(Exception):
    """Raised in a task to end it early and pick the next task without waiting."""


class InterruptTaskSet(Exception):
    """Raised (by :meth:`TaskSet.interrupt`) to hand control back to the parent."""

    def __init__(self, reschedule: bool = True) -> None:
        super().__init__(reschedule)
        self.reschedule = reschedule


USER_FLOW_EXCEPTIONS: tuple[type[Exception], ...] = (
    StopUser,
    RescheduleTask,
    RescheduleTaskImmediately,
    InterruptTaskSet,
)


@overload
def task(weight: int = 1) -> Callable[[F], F]: ...


@overload
def task(weight: F) -> F: ...


def task(weight: Any = 1) -> Any:
    """Declare a method (or nested TaskSet class) as a task: ``@task`` or ``@task(3)``."""

    def decorate(func: T, weight: int) -> T:
        if getattr(func, "__name__", "") == "run":
            raise TypeError("run() drives the user and cannot be a task")
        setattr(func, WEIGHT_ATTR, _check_weight(weight, func))
        return func

    if callable(weight):
        return decorate(weight, 1)
    return lambda func: decorate(func, weight)


def tag(*tags: str) -> Callable[[T], T]:
    """Tag a task, or every task of a TaskSet, for filtering with ``tags``/``exclude_tags``."""
    if not tags or not all(isinstance(name, str) for name in tags):
        raise ValueError("@tag needs one or more tag names, as in @tag('checkout')")

    def decorate(obj: T) -> T:
        if isinstance(obj, type) and hasattr(obj, "tasks"):
            for entry in set(obj.tasks):
                decorate(entry)
        else:
            own = getattr(obj, "__dict__", {}).get(TAGS_ATTR, frozenset())
            setattr(obj, TAGS_ATTR, own | frozenset(tags))
        return obj

    return decorate


def _check_weight(weight: object, entry: object) -> int:
    if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
        raise TypeError(f"task weight must be a non-negative int, got {weight!r} for {entry!r}")
    return weight


def _is_task_set(entry: object) -> bool:
    return isinstance(entry, type) and issubclass(entry, TaskSet)


def _expand(declared: object, owner: type) -> list[Any]:
    """One list entry per unit of weight, from a ``tasks`` attribute."""
    if declared is None:
        return []
    if isinstance(declared, dict):
        pairs = list(declared.items())
    elif isinstance(declared, list | tuple):
        pairs = [entry if isinstance(entry, tuple) else (entry, 1) for entry in declared]
    else:
        raise TypeError(f"{owner.__name__}.tasks must be a list or a dict, not {declared!r}")
    expanded: list[Any] = []
    for entry, weight in pairs:
        if not callable(entry):
            raise TypeError(f"{owner.__name__}.tasks holds {entry!r}, which is not callable")
        expanded.extend([entry] * _check_weight(weight, entry))
    return expanded


def collect_tasks(cls: type) -> list[Any]:
    """The ``tasks`` list of a new holder class: its bases' tasks, then its own in order."""
    collected: list[Any] = []
    for base in cls.__bases__:
        collected.extend(getattr(base, "tasks", None) or [])
    for key, value in cls.__dict__.items():
        if key == "tasks":
            collected.extend(_expand(value, cls))
            continue
        weight = getattr(value, WEIGHT_ATTR, None) if callable(value) else None
        if isinstance(weight, int):
            collected.extend([value] * weight)
    return collected


def filter_tasks(
    holder: type,
    tags: frozenset[str] | None,
    exclude_tags: frozenset[str] | None,
    _seen: dict[Any, bool] | None = None,
) -> list[Any]:
    """``holder.tasks`` without the tasks the tag filters rule out, as Locust filters.

    A task passes if it carries one of ``tags`` (when given) and none of ``exclude_tags``;
    a nested TaskSet passes if any of its own tasks pass.
    """
    tasks: list[Any] = list(getattr(holder, "tasks", None) or [])
    if tags is None and exclude_tags is None:
        return tasks
    seen = {} if _seen is None else _seen
    kept = []
    for entry in tasks:
        passing = seen.get(entry)
        if passing is None:
            seen[entry] = False  # guards against a TaskSet that lists itself
            if _is_task_set(entry):
                passing = bool(filter_tasks(entry, tags, exclude_tags, seen))
            else:
                own: frozenset[str] = getattr(entry, TAGS_ATTR, frozenset())
                passing = (tags is None or bool(own & tags)) and not (
                    exclude_tags is not None and own & exclude_tags
                )
            seen[entry] = passing
        if passing:
            kept.append(entry)
    return kept


class TaskTable:
    """The tasks of one holder under one tag filter, ready for weighted picking."""

    __slots__ = ("cumulative", "sequence", "source", "tasks", "total")

    def __init__(self, source: list[Any], entries: Sequence[Any]) -> None:
        weights: dict[Any, int] = {}
        for entry in entries:
            weights[entry] = weights.get(entry, 0) + 1
        self.source = source
        self.sequence: tuple[Any, ...] = tuple(entries)
        self.tasks: tuple[Any, ...] = tuple(weights)
        self.cumulative: list[int] = []
        running = 0
        for weight in weights.values():
            running += weight
            self.cumulative.append(running)
        self.total = running

    def pick(self, rand: Callable[[], float] = random.random) -> Any:
        """A task chosen with probability proportional to its weight."""
        if len(self.tasks) == 1:
            return self.tasks[0]
        index = bisect_right(self.cumulative, rand() * self.total)
        return self.tasks[min(index, len(self.tasks) - 1)]


_tables: weakref.WeakKeyDictionary[type, dict[tuple[Any, Any], TaskTable]] = (
    weakref.WeakKeyDictionary()
)


def task_table(
    holder: type, tags: frozenset[str] | None, exclude_tags: frozenset[str] | None
) -> TaskTable:
    """The cached :class:`TaskTable` of ``holder``, rebuilt if its ``tasks`` was replaced."""
    per_filter = _tables.setdefault(holder, {})
    table = per_filter.get((tags, exclude_tags))
    if table is None or table.source is not getattr(holder, "tasks", None):
        table = TaskTable(getattr(holder, "tasks", []), filter_tasks(holder, tags, exclude_tags))
        per_filter[(tags, exclude_tags)] = table
    return table


def _leave(exc: InterruptTaskSet) -> Exception:
    return RescheduleTaskImmediately() if exc.reschedule else RescheduleTask()


class TaskSet:
    """A group of tasks a user runs until one of them calls :meth:`interrupt`.

    Tasks are picked at random by weight, with a wait between them (the TaskSet's
    ``wait_time`` if it declares one, else the user's).
    """

    tasks: TaskList = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.tasks = collect_tasks(cls)

    def __init__(self, parent: User | TaskSet) -> None:
        self._parent = parent
        self._user: User = parent.user if isinstance(parent, TaskSet) else parent
        self._cp_last_run = time.perf_counter()
        self._cp_last_wait_time = 0.0
        self._queue: deque[Any] | None = None  # created by the first schedule_task()
        environment = self._user.environment
        self._table = task_table(self._holder(), environment.tags, environment.exclude_tags)

    def _holder(self) -> type:
        """The class whose ``tasks`` this TaskSet picks from."""
        return type(self)

    @property
    def user(self) -> User:
        """The user running this TaskSet."""
        return self._user

    @property
    def parent(self) -> User | TaskSet:
        """The TaskSet (or user) that started this one."""
        return self._parent

    @property
    def client(self) -> Any:
        """The user's client (``self.user.client``)."""
        return self._user.client

    def on_start(self) -> None:
        """Called when the user enters this TaskSet."""

    def on_stop(self) -> None:
        """Called when the user leaves this TaskSet (interrupt, or the user stops)."""

    def wait_time(self) -> float:
        """Seconds to wait between tasks; the user's ``wait_time`` unless overridden."""
        return float(self._user.wait_time())

    def interrupt(self, reschedule: bool = True) -> None:
        """Leave this TaskSet for the parent, which picks its next task at once if
        ``reschedule`` is true, else after a wait."""
        raise InterruptTaskSet(reschedule)

    def schedule_task(self, task_callable: Any, first: bool = False) -> None:
        """Queue a task to run before the next random pick (first in line if ``first``)."""
        if self._queue is None:
            self._queue = deque()
        if first:
            self._queue.appendleft(task_callable)
        else:
            self._queue.append(task_callable)

    def get_next_task(self) -> Any:
        """The next task to run; weighted random unless overridden."""
        if not self._table.tasks:
            raise ConfigError(
                f"{type(self).__name__} has no tasks: use @task or set the 'tasks' attribute"
                " (or all of them were filtered out by tags)"
            )
        return self._table.pick()

    def execute_task(self, entry: Any) -> None:
        """Run one task: a nested TaskSet class, a method of ours, or a function of us."""
        if _is_task_set(entry):
            entry(self).run()
        elif getattr(entry, "__self__", None) is self:
            entry()
        else:
            entry(self)

    def run(self) -> None:
        """Run tasks until interrupted or the user stops; not to be overridden."""
        try:
            self.on_start()
        except InterruptTaskSet as exc:
            raise _leave(exc) from exc
        while True:
            try:
                if self._run_one():
                    self.wait()
            except InterruptTaskSet as exc:
                self._call_on_stop()
                raise _leave(exc) from exc
            except (StopUser, GreenletExit):
                self._call_on_stop()
                raise

    def _run_one(self) -> bool:
        """Run the next task; returns whether to wait before the one after."""
        if self._user._state == STOPPING or not take_iteration(self._user.environment):
            raise StopUser()
        try:
            self.execute_task(self._queue.popleft() if self._queue else self.get_next_task())
        except RescheduleTaskImmediately:
            return False
        except RescheduleTask:
            return True
        except (InterruptTaskSet, StopUser):
            raise
        except Exception as exc:
            self._user._report_error(exc)
        return True

    def _call_on_stop(self) -> None:
        try:
            self.on_stop()
        except Exception as exc:
            self._user._report_error(exc)

    def wait(self) -> None:
        """Sleep for ``wait_time()``; a user asked to stop gracefully stops here."""
        user = self._user
        if user._state == STOPPING:
            raise StopUser()
        user._state = WAITING
        self._sleep(self.wait_time())
        if user._state == STOPPING:
            raise StopUser()
        user._state = RUNNING
        mark_iteration_start(self, user)  # a pacing user's lateness, for the corrected series

    def _sleep(self, seconds: float) -> None:
        gevent.sleep(seconds)


class SequentialTaskSet(TaskSet):
    """A TaskSet that runs its tasks in declaration order, round and round."""

    def __init__(self, parent: User | TaskSet) -> None:
        super().__init__(parent)
        self._cycle: Iterator[Any] = cycle(self._table.sequence)

    def get_next_task(self) -> Any:
        """The next task in declaration order."""
        if not self._table.sequence:
            raise ConfigError(f"{type(self).__name__} has no tasks to run in sequence")
        return next(self._cycle)


class DefaultTaskSet(TaskSet):
    """The root of a user's loop: runs the tasks declared on the user class itself."""

    def _holder(self) -> type:
        return type(self._user)

    def run(self) -> None:
        """Run the user's tasks until it stops; a user without tasks fails at once."""
        if not self._table.tasks:
            raise ConfigError(
                f"{type(self._user).__name__} has no tasks to run: declare some with @task"
                " or 'tasks', mark the class abstract, or check the tag filters"
            )
        if getattr(self._user, GATE_ATTR, False):
            self.wait()  # an arrival-rate user's first task waits for its iteration too
        super().run()

    def execute_task(self, entry: Any) -> None:
        """Run one user task: a TaskSet class, or a function of the user."""
        if _is_task_set(entry):
            entry(self._user).run()
        elif getattr(entry, "__self__", None) is self._user:
            entry()
        else:
            entry(self._user)

    def _run_one(self) -> bool:
        # an interrupt at the root has no parent to return to: treat it as a reschedule
        try:
            return super()._run_one()
        except InterruptTaskSet as exc:
            return not exc.reschedule
