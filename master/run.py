"""The vocabulary of a run: its states, a validated swarm request, hooks and errors.

Shared by the coordinator, the HTTP shim and the runtime; pure data and no behaviour.

Imports: the standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class RunState(StrEnum):
    """The state of the test, as Locust names it."""

    READY = "ready"
    SPAWNING = "spawning"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


ACTIVE_RUN = (RunState.SPAWNING, RunState.RUNNING)


@dataclass(frozen=True, slots=True)
class SwarmRequest:
    """A validated request to start or change a test.

    ``user_classes`` picks among the script's classes (None: all of them);
    ``shape_class`` hands the run to a load shape, which then sets users and rate;
    ``options`` are run options for the workers (the ``/swarm`` allow-list).
    """

    user_count: int = 0
    spawn_rate: float = 1.0
    host: str = ""
    run_time: float | None = None
    user_classes: tuple[str, ...] | None = None
    shape_class: str | None = None
    options: Mapping[str, object] = field(default_factory=dict)


class RunHooks:
    """What the coordinator tells the outside world about runs; the default does nothing.

    The runtime passes one that fires the user script's ``test_start``/``test_stop``
    events on the master, as Locust's master does.
    """

    def test_start(self) -> None:
        """A new run has begun."""

    def test_stop(self) -> None:
        """The run has stopped (every worker answered, or the stop wait ran out)."""


class CommandError(ValueError):
    """A control command that cannot be carried out; ``field`` names the culprit."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
