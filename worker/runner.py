"""A worker's ``environment.runner``: Locust's ``WorkerRunner`` over horde's worker.

Scripts on a worker read its state, users, index and recent requests (``stats``: see
:mod:`horde.worker.statsview`), send custom messages to the master
(Locust's envelope: ``[type, data, node_id]``), register handlers for the master's, stop
its users or make it leave. Every read looks at the worker as it is now.

Imports: the standard library, the worker runtime's loops and the user API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from horde.protocol.base import UnknownMessage
from horde.worker.api.runners import WorkerRunner
from horde.worker.statsview import WorkerStatsView

if TYPE_CHECKING:
    from horde.worker.loops import WorkerRuntime

__all__ = ["HordeWorkerRunner"]


class HordeWorkerRunner(WorkerRunner):
    """``environment.runner`` on a horde worker; :meth:`attach` gives it its runtime."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self._runtime: WorkerRuntime | None = None

    def attach(self, runtime: WorkerRuntime) -> None:
        """Bind to the worker's runtime (made after the environment)."""
        self._runtime = runtime

    @property
    def runtime(self) -> WorkerRuntime:
        """The worker's runtime."""
        if self._runtime is None:
            raise RuntimeError("the worker's runner is not attached yet")
        return self._runtime

    @property
    def client_id(self) -> str:
        """This worker's node id."""
        return self.runtime.agent.node_id

    @property
    def state(self) -> str:
        """This worker's state: ``ready``, ``spawning``, ``running``, ``stopping`` ..."""
        return self.runtime.status.state.value

    @property
    def user_count(self) -> int:
        """Users running here now."""
        return self.runtime.pool.greenlet_count

    @property
    def target_user_count(self) -> int:
        """Users the master's last spawn asked of this worker."""
        return self.runtime.agent.target_user_count

    @property
    def stats(self) -> WorkerStatsView:
        """This worker's requests since its last stats report, under Locust's names (a
        Locust worker's ``environment.stats`` is reset at each report too)."""
        return WorkerStatsView(self.runtime.recorder)

    @property
    def worker_index(self) -> int:
        """This worker's index from the master's ``ack`` (-1 before one)."""
        return self.runtime.agent.worker_index

    def send_message(self, msg_type: str, data: Any = None, client_id: str | None = None) -> None:
        """Send a custom message to the master (``client_id`` is for the master's side)."""
        self.runtime.link.send(UnknownMessage(msg_type, data, self.client_id))

    def stop(self) -> None:
        """Stop this worker's users, as a ``stop`` from the master would."""
        from horde.protocol import messages as m

        self.runtime.handle(m.Stop(self.client_id))

    def quit(self) -> None:
        """Leave: stop the users, send the final stats, tell the master, exit."""
        self.runtime.shutdown()
