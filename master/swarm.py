"""Starting a run (a *swarm*, in Locust's word): the request, its check, states and hooks.

The vocabulary the coordinator, the HTTP shim and the runtime share about a run: its
states, a :class:`SwarmRequest` and the pure check of one against the master's limits and
the script's classes and shapes (:func:`validate_request`), the :class:`RunHooks` a run
fires, and the :class:`CommandError` a refused command raises. Pure data and checks.

Imports: the standard library, horde.protocol.errors and horde.master.threshold_syntax.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from horde.master.threshold_syntax import Threshold
from horde.protocol.errors import RequestError
from horde.protocol.rates import Schedule


class RunState(StrEnum):
    """The state of the test, as Locust names it."""

    READY = "ready"
    SPAWNING = "spawning"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


ACTIVE_RUN = (RunState.SPAWNING, RunState.RUNNING)


class StopReason(StrEnum):
    """Why a run stopped; its value is the sentence the logs and the summary show."""

    REQUESTED = "a stop was requested"
    THRESHOLD_FAILED = "a threshold failed (--abort-on-fail)"
    RUN_TIME = "the run time was reached"
    SHAPE_FINISHED = "the load shape finished"
    SHAPE_FAILED = "the load shape failed"
    NO_WORKERS = "every worker was lost (no workers left)"
    STAGES_FINISHED = "the arrival-rate stages finished"

    @property
    def cut_short(self) -> bool:
        """True when the run ended before its plan: not by its run time, its shape's end
        or a stop someone asked for."""
        return self not in _PLANNED_ENDS


_PLANNED_ENDS = frozenset(
    {
        StopReason.REQUESTED,
        StopReason.RUN_TIME,
        StopReason.SHAPE_FINISHED,
        StopReason.THRESHOLD_FAILED,  # the thresholds say so: exit code 99, not "cut short"
        StopReason.STAGES_FINISHED,
    }
)


@dataclass(frozen=True, slots=True)
class RunEnd:
    """How a run ended: why, and how long after its start (master clock seconds)."""

    reason: StopReason
    after: float
    run_time: float | None
    """The run time the run was started with (None: none)."""

    def describe(self) -> str:
        """One sentence for the logs and the summary."""
        planned = f" of its {self.run_time:g} s run time" if self.run_time else ""
        return f"{self.reason.value} after {self.after:.1f} s{planned}"


@dataclass(frozen=True, slots=True)
class SwarmRequest:
    """A validated request to start or change a test.

    ``user_classes`` picks among the script's classes (None: all of them);
    ``shape_class`` hands the run to a load shape, which then sets users and rate;
    ``options`` are run options for the workers (the ``/swarm`` allow-list);
    ``arrival`` drives the chosen classes by a fleet-wide schedule of iterations per
    second, split by weight (``user_count`` is then not used).
    """

    user_count: int = 0
    spawn_rate: float = 1.0
    host: str = ""
    run_time: float | None = None
    user_classes: tuple[str, ...] | None = None
    shape_class: str | None = None
    options: Mapping[str, object] = field(default_factory=dict)
    thresholds: tuple[Threshold, ...] | None = None
    """The run's thresholds (None: the master's own, ``--threshold`` and the script's)."""
    arrival: Schedule | None = None


class RunHooks:
    """What the coordinator tells the outside world about runs; the default does nothing.

    The runtime passes one that fires the user script's events on the master, as Locust's
    master does.
    """

    def test_start(self) -> None:
        """A new run has begun."""

    def test_stopping(self) -> None:
        """The run is about to stop its users."""

    def test_stop(self) -> None:
        """The run has stopped (every worker answered, or the stop wait ran out)."""

    def spawning_complete(self, user_count: int) -> None:
        """A ramp is done: ``user_count`` users run in all."""

    def reset_stats(self) -> None:
        """The figures were reset."""

    def worker_connect(self, worker_id: str) -> None:
        """A worker registered."""

    def worker_report(self, worker_id: str, user_count: int, extra: Mapping[str, Any]) -> None:
        """A worker's stats report arrived, with the keys its script added (``extra``)."""

    def heartbeat_sent(self, worker_id: str, now: float) -> None:
        """The master answered a worker's heartbeat."""

    def custom_message(self, worker_id: str, message: Any) -> bool:
        """A message of a type the protocol does not use: True if a script's handler took it."""
        return False


class CommandError(RequestError):
    """A command the master's limits or the run's state refuse; ``field`` names the culprit."""


def validate_request(
    request: SwarmRequest,
    *,
    max_users: int,
    class_names: Collection[str],
    shape_names: Collection[str],
) -> None:
    """Raise :class:`CommandError` naming the field if ``request`` cannot be run."""
    if not 0 <= request.user_count <= max_users:
        raise CommandError(
            f"user_count must be between 0 and {max_users}, got {request.user_count}",
            "user_count",
        )
    if not (math.isfinite(request.spawn_rate) and request.spawn_rate > 0):
        raise CommandError(
            f"spawn_rate must be a positive number, got {request.spawn_rate}", "spawn_rate"
        )
    if request.run_time is not None and not (
        math.isfinite(request.run_time) and request.run_time > 0
    ):
        raise CommandError(f"run_time must be positive, got {request.run_time}", "run_time")
    if request.user_classes is not None:
        unknown = [c for c in request.user_classes if c not in class_names]
        if unknown or not request.user_classes:
            raise CommandError(
                f"user_classes must name some of {sorted(class_names)}, "
                f"got {list(request.user_classes)}",
                "user_classes",
            )
    if request.shape_class is not None and request.shape_class not in shape_names:
        raise CommandError(
            f"shape_class must be one of {sorted(shape_names)}, got {request.shape_class!r}",
            "shape_class",
        )
