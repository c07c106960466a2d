"""Driving a script's load shape: when to call ``tick()`` and what its answer means.

A :class:`ShapeRunner` wraps one ``LoadTestShape`` instance for one run. The
coordinator asks :meth:`ShapeRunner.due` with its ``now``; when a tick is due it calls
:meth:`ShapeRunner.step`, which calls the user's ``tick()`` and turns the answer into a
validated :class:`ShapeStep` (or ``None``: the shape ends the test). The shape's own run
clock reads the coordinator's ``now``, so a shape is as deterministic as its tests.

Imports: the standard library and horde.protocol.errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from horde.protocol.errors import ScriptError

DEFAULT_TICK_INTERVAL = 1.0
"""Seconds between calls of ``tick()`` (Locust's shape greenlet also ticks every second)."""


class ShapeError(ScriptError, ValueError):
    """A shape's ``tick()`` answered something that is not a load step."""


@dataclass(frozen=True, slots=True)
class ShapeStep:
    """One answer of ``tick()``: the wanted users, the rate to reach them, the classes."""

    user_count: int
    spawn_rate: float
    user_classes: tuple[str, ...] | None = None


def read_tick(answer: Any, known_classes: Collection[str], max_users: int) -> ShapeStep | None:
    """Validate what ``tick()`` returned; ``None`` means stop. Raises :class:`ShapeError`."""
    if answer is None:
        return None
    if not isinstance(answer, tuple | list) or len(answer) not in (2, 3):
        raise ShapeError(
            f"tick() must return (users, spawn_rate[, user_classes]) or None, got {answer!r:.80}"
        )
    users, rate = answer[0], answer[1]
    if isinstance(users, bool) or not isinstance(users, int) or not 0 <= users <= max_users:
        raise ShapeError(f"tick() user count must be an integer in 0..{max_users}, got {users!r}")
    if (
        isinstance(rate, bool)
        or not isinstance(rate, int | float)
        or not math.isfinite(rate)
        or rate <= 0
    ):
        raise ShapeError(f"tick() spawn rate must be a positive number, got {rate!r}")
    classes: tuple[str, ...] | None = None
    if len(answer) == 3 and answer[2] is not None:
        classes = tuple(_class_name(c) for c in answer[2])
        unknown = [name for name in classes if name not in known_classes]
        if unknown or not classes:
            raise ShapeError(f"tick() user classes must name the script's classes, got {unknown}")
    return ShapeStep(users, float(rate), classes)


def _class_name(value: Any) -> str:
    """A user class given as the class itself (as in Locust) or by name."""
    return value if isinstance(value, str) else str(getattr(value, "__name__", value))


class ShapeRunner:
    """One shape instance driven for one run; the user's ``tick()`` is called when due."""

    def __init__(
        self,
        name: str,
        shape: Any,
        now: float,
        *,
        known_classes: Collection[str],
        max_users: int,
        interval: float = DEFAULT_TICK_INTERVAL,
    ) -> None:
        self.name = name
        self.shape = shape
        self.interval = interval
        self.known_classes = known_classes
        self.max_users = max_users
        self.current: ShapeStep | None = None
        self._now = now
        self._next_at = now
        clock: Callable[[], float] = lambda: self._now  # noqa: E731 - the shape's run clock
        attach = getattr(shape, "attach_clock", None)
        if callable(attach):
            attach(clock)
        reset = getattr(shape, "reset_time", None)
        if callable(reset):
            reset()

    def due(self, now: float) -> bool:
        """Whether ``tick()`` should be called at ``now``."""
        return now >= self._next_at

    @property
    def next_at(self) -> float:
        """When the next tick is due."""
        return self._next_at

    def step(self, now: float) -> ShapeStep | None:
        """Call ``tick()`` at ``now``; return the step, or None when the shape is done.

        Exceptions from user code propagate (the coordinator records them and stops).
        """
        self._now = now
        self._next_at = now + self.interval
        self.current = read_tick(self.shape.tick(), self.known_classes, self.max_users)
        return self.current
