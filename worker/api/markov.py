"""``MarkovTaskSet``: a TaskSet whose next task follows weighted transitions from the last.

As Locust 2.47's: methods decorated with ``@transition(name, weight)`` (or
``@transitions({...})`` / ``@transitions([...])``) are the chain's states, the first one
declared is where every user starts, and each run of a state moves to one of its
transitions, picked at random by weight. The chain is checked when the class is made: it
must have states, every transition must name a state of the class, a state may not carry
``@tag`` (tags would cut the chain) nor be called ``run``; states no path reaches are
logged. ``abstract = True`` skips the checks, for a base class.

Imports: the standard library, structlog, horde.protocol.errors and the user API's tasks.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from itertools import accumulate
from typing import Any, TypeVar

import structlog

from horde.protocol.errors import ScriptError
from horde.worker.api.tasks import TAGS_ATTR, TaskSet

__all__ = [
    "InvalidTransitionError",
    "MarkovTaskSet",
    "MarkovTaskTagError",
    "NoMarkovTasksError",
    "NonMarkovTaskTransitionError",
    "transition",
    "transitions",
]

log = structlog.get_logger("horde.worker")
F = TypeVar("F", bound=Callable[..., Any])
TRANSITIONS_ATTR = "transitions"
"""Where a state keeps its transitions (Locust's name: ``{target name: weight}``)."""


class NoMarkovTasksError(ScriptError):
    """A MarkovTaskSet with no ``@transition`` / ``@transitions`` method."""


class InvalidTransitionError(ScriptError):
    """A transition to a name the class does not have."""


class NonMarkovTaskTransitionError(ScriptError):
    """A transition to a method that is not a state of the chain."""


class MarkovTaskTagError(ScriptError):
    """A state of the chain carries ``@tag``."""


def transition(func_name: str, weight: int = 1) -> Callable[[F], F]:
    """Make the method a state of the chain with a transition to ``func_name``."""

    def decorate(func: F) -> F:
        _transitions_of(func)[func_name] = weight
        return func

    return decorate


def transitions(weights: Mapping[str, int] | Sequence[tuple[str, int] | str]) -> Callable[[F], F]:
    """Several transitions at once: ``{name: weight}``, or a list of names and
    ``(name, weight)`` pairs (a bare name weighs 1)."""
    items = list(weights.items()) if isinstance(weights, Mapping) else weights

    def decorate(func: F) -> F:
        table = _transitions_of(func)
        for item in items:
            name, weight = (item, 1) if isinstance(item, str) else item
            table[name] = weight
        return func

    return decorate


def _transitions_of(func: Any) -> dict[str, int]:
    table: dict[str, int] | None = getattr(func, TRANSITIONS_ATTR, None)
    if table is None:
        table = {}
        setattr(func, TRANSITIONS_ATTR, table)
    return table


class _Moves:
    """A state's transitions: target names and cumulative weights, for one-draw picks."""

    def __init__(self, weights: Mapping[str, int]) -> None:
        self.names = list(weights)
        self.cumulative = list(accumulate(weights.values()))

    def pick(self) -> str:
        return self.names[bisect_right(self.cumulative, random.random() * self.cumulative[-1])]


def _check_chain(cls: type, states: dict[str, Any]) -> None:
    """Raise for a chain that cannot run; log states no path reaches."""
    name = cls.__name__
    if not states:
        raise NoMarkovTasksError(
            f"No Markov tasks defined in class {name}. Use the @transition(s) decorators"
            " to define some."
        )
    for state_name, state in states.items():
        if state_name == "run":
            raise ScriptError(f"{name}: a Markov task may not be called 'run'")
        if getattr(state, TAGS_ATTR, None):
            raise MarkovTaskTagError(f"{name}.{state_name}: Markov tasks may not be tagged")
        for target, weight in getattr(state, TRANSITIONS_ATTR).items():
            if not hasattr(cls, target):
                raise InvalidTransitionError(
                    f"Transition to {target} from {state_name} is invalid since no such"
                    f" element exists on class {name}"
                )
            if target not in states:
                raise NonMarkovTaskTransitionError(
                    f"{name}.{state_name}: cannot transition to {target}, which is not a"
                    " Markov task (decorate it with @transition or @transitions)"
                )
            if not isinstance(weight, int) or weight < 1:
                raise ScriptError(f"{name}.{state_name}: weight of {target} must be >= 1")
    reached, todo = set(), [next(iter(states))]
    while todo:
        here = todo.pop()
        if here not in reached:
            reached.add(here)
            todo.extend(getattr(states[here], TRANSITIONS_ATTR))
    unreachable = [s for s in states if s not in reached]
    if unreachable:
        log.warning("unreachable Markov tasks", cls=name, tasks=unreachable)


class MarkovTaskSet(TaskSet):
    """A TaskSet that walks a Markov chain of its ``@transition`` methods."""

    abstract = True
    """A base class, never checked; a subclass is checked unless it sets this again."""
    _start: str = ""
    _moves: dict[str, _Moves] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("abstract"):
            return
        cls.abstract = False
        states = {
            name: value
            for name, value in cls.__dict__.items()
            if callable(value) and hasattr(value, TRANSITIONS_ATTR)
        }
        _check_chain(cls, states)
        cls._start = next(iter(states))
        cls._moves = {
            name: _Moves(getattr(state, TRANSITIONS_ATTR)) for name, state in states.items()
        }

    def __init__(self, parent: Any) -> None:
        super().__init__(parent)
        self.current: str = self._start
        """The state the next task runs (its method's name)."""

    def get_next_task(self) -> Any:
        """The current state's method; the chain then moves on by weight."""
        name = self.current
        self.current = self._moves[name].pick()
        return getattr(self, name)
