"""The master's ``environment.runner``: Locust's ``MasterRunner`` over horde's master.

Scripts on the master read the run (``state``, ``user_count``, ``target_user_count``,
``spawn_rate``, ``worker_count``, ``clients``, ``stats``), stop it or quit, and exchange
custom messages with workers (horde's and Locust's: Locust's envelope, any type the
protocol does not use). Every read takes a fresh snapshot of the master, so a script
polling in a greenlet sees the run as it is; ``stats`` is folded when read, and shaped as
Locust's ``RequestStats`` where scripts look (``total.fail_ratio``,
``total.avg_response_time``, ``get_response_time_percentile`` ...).

Imports: the standard library, horde.master and the user API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from horde.master.entry import MergedEntry
from horde.master.loops import MasterLoops
from horde.master.stats import MergedStats
from horde.protocol.base import UnknownMessage
from horde.worker.api.runners import MasterRunner, WorkerNode

__all__ = ["HordeMasterRunner", "StatsView"]


class EntryView:
    """One merged entry under Locust's ``StatsEntry`` names (milliseconds)."""

    def __init__(self, entry: MergedEntry, now: float) -> None:
        self._entry = entry
        self._now = now
        self.name = entry.name
        self.method = entry.method
        self.num_requests = entry.num_requests
        self.num_failures = entry.num_failures
        self.fail_ratio = entry.fail_ratio
        self.avg_response_time = entry.avg_response_time_ms
        self.min_response_time = entry.min_response_time_ms
        self.max_response_time = entry.max_response_time_ms
        self.median_response_time = entry.median_ms
        self.avg_content_length = entry.avg_content_length
        self.current_rps = entry.current_rps(now)
        self.current_fail_per_sec = entry.current_fail_per_sec(now)
        self.total_rps = entry.total_rps(now)
        self.total_fail_per_sec = entry.total_fail_per_sec(now)

    def get_response_time_percentile(self, percent: float) -> float:
        """The response time (ms) below which ``percent`` (0..1) of requests fell."""
        return self._entry.percentile_ms(percent)


class StatsView:
    """The master's merged figures under Locust's ``RequestStats`` names."""

    def __init__(self, stats: MergedStats, now: float) -> None:
        stats.fold()
        self.total = EntryView(stats.total, now)
        self.entries = {(e.name, e.method): EntryView(e, now) for e in stats.entries()}
        self.errors = {(e.method, e.name, e.error): e for e in stats.errors()}
        self.num_requests = self.total.num_requests
        self.num_failures = self.total.num_failures

    def get(self, name: str, method: str) -> EntryView | None:
        """The entry of ``method name``, or None (Locust creates it; horde only reads)."""
        return self.entries.get((name, method))


class HordeMasterRunner(MasterRunner):
    """``environment.runner`` on a horde master."""

    def __init__(
        self, environment: Any, loops: MasterLoops, quit_master: Callable[[], None]
    ) -> None:
        super().__init__(environment)
        self.loops = loops
        self._quit_master = quit_master

    @property
    def state(self) -> str:
        """The run's state: ``ready``, ``spawning``, ``running``, ``stopping``, ``stopped``."""
        return self.loops.run_snapshot().state.value

    @property
    def user_count(self) -> int:
        """Users running on every worker."""
        return self.loops.run_snapshot().user_count

    @property
    def target_user_count(self) -> int:
        """Users the run aims for."""
        return self.loops.run_snapshot().target_total

    @property
    def spawn_rate(self) -> float:
        """The spawn rate of the master's settings (a swarm's own rate applies to its ramp)."""
        return self.loops.settings.spawn_rate

    @property
    def worker_count(self) -> int:
        """Workers ready or running."""
        return self.loops.run_snapshot().worker_count

    @property
    def clients(self) -> dict[str, WorkerNode]:
        """Every known worker by id (Locust's ``runner.clients``)."""
        return {
            r.worker_id: WorkerNode(
                r.worker_id, r.state.value, r.user_count, r.cpu_usage, r.memory_usage, 0
            )
            for r in self.loops.snapshot().workers
        }

    @property
    def stats(self) -> StatsView:
        """The merged figures now (folded when read)."""
        snapshot = self.loops.snapshot()
        return StatsView(snapshot.stats, snapshot.run.now)

    def send_message(self, msg_type: str, data: Any = None, client_id: str | None = None) -> None:
        """Send a custom message to one worker, or to every present worker."""
        if client_id is not None:
            self.loops.send(client_id, UnknownMessage(msg_type, data, client_id))
            return
        for record in self.loops.snapshot().workers:
            if record.state.value != "missing":
                worker = record.worker_id
                self.loops.send(worker, UnknownMessage(msg_type, data, worker))

    def stop(self) -> None:
        """Stop the test; workers stay."""
        self.loops.command(lambda c, now: c.stop(now))

    def quit(self) -> None:
        """Stop the test, tell every worker to exit, and end the master."""
        self.loops.command(lambda c, now: c.stop(now))
        self.loops.command(lambda c, now: c.quit())
        self._quit_master()
