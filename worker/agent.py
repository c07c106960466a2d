"""The worker's decisions: what to do for each master message, lease check and report.

Responsibility: :class:`WorkerAgent` is the worker's state machine, with no I/O, no clock and
no greenlets. Its entry points take ``now`` (monotonic seconds) and the :class:`Facts` the
runtime observes at that moment, and return what to do as data, a list of actions
(:class:`Send`, :class:`StartUsers`, :class:`StopUsers`, :class:`Report` ...), which
:mod:`horde.worker.loops` carries out in order. Outcomes the agent needs come back through
another entry point (:meth:`WorkerAgent.users_started` after :class:`StartUsers`), and a
step that must wait for earlier actions is an action too (:class:`Report`,
:class:`ApplySpawn`: the runtime asks the agent again when it gets there).

- :meth:`~WorkerAgent.handle`: one short handler per master message (``ack``, ``spawn``,
  ``stop``, ``quit``, ``horde.epoch``, ``horde.stats_ack`` ...). A ``spawn`` carries absolute
  counts; an older one is dropped; a new run id starts a new run (figures reset, numbering
  from 1, ``test_start``).
- :meth:`~WorkerAgent.check_lease` (horde masters): users run only under a lease
  (:mod:`horde.worker.lease`). When it runs out every user stops at once (the master gives
  them to other workers), the final delta goes and the link registers again; a spawn that
  arrived while no lease held waits for the next renewal.
- :meth:`~WorkerAgent.report` and :meth:`~WorkerAgent.resend`: stats deltas go through an
  :class:`~horde.worker.outbox.Outbox` (a window of unacknowledged deltas, resent after a
  re-registration or when acks stall), in horde's compact format to a horde master and in
  Locust's to a Locust master. ``stop``, ``quit``, SIGTERM and lease expiry send a final
  delta even with a full window.

An ``ack`` while users run means the master counts this worker as idle again (it registered
anew, e.g. with a restarted master): the users are stopped at once.

Imports: the standard library, structlog, horde.protocol and the worker's pure parts
(config, lease, outbox, stats).
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import structlog

from horde.protocol import messages as m
from horde.protocol.base import UnknownMessage
from horde.protocol.codec import AnyMessage, encode
from horde.protocol.locust_stats import LocustStatsReport
from horde.protocol.states import WorkerState
from horde.protocol.stats import HordeStatsDelta
from horde.protocol.upstream import UNHANDLED
from horde.worker.config import STATS_WINDOW, WorkerSettings
from horde.worker.lease import Lease
from horde.worker.outbox import Outbox
from horde.worker.stats import RequestRecorder

log = structlog.get_logger("horde.worker")


# --- what the runtime observes -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Facts:
    """What the runtime sees at one moment: the link's status, the users, the wall clock."""

    state: WorkerState
    """The state the worker reports now (the last :class:`SetState` carried out)."""
    users: int
    """User greenlets alive, counting those still finishing a task after a stop."""
    counts: Mapping[str, int]
    """Running users per class."""
    registered: bool
    """True while the link is registered with the master."""
    horde: bool
    """True when the master is a horde master (it speaks horde's extensions)."""
    lease: Lease
    """The lease the link thread renews (read only here)."""
    wall: float
    """Wall-clock seconds, the time stamped on stats reports."""


# --- what the agent asks for -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Send this message to the master."""

    message: AnyMessage


@dataclass(frozen=True, slots=True)
class Deliver:
    """Hand this custom message (a type the protocol does not use) to the script's handler."""

    message: UnknownMessage


@dataclass(frozen=True, slots=True)
class SendLocustStats:
    """Send this Locust stats report, with what the script's ``report_to_master`` adds."""

    report: LocustStatsReport


@dataclass(frozen=True, slots=True)
class Configure:
    """Set the environment from a spawn: stop timeout, host (None: keep), tags (None: keep),
    and the master's options (Locust's ``parsed_options``: the script's own among them)."""

    stop_timeout: float | None
    host: str | None
    tags: tuple[Any, Any] | None
    options: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class ApplySpawn:
    """Go on with this spawn now (ask :meth:`WorkerAgent.apply_spawn` at this point)."""

    spawn: m.Spawn


@dataclass(frozen=True, slots=True)
class StartUsers:
    """Apply these absolute counts to the user pool, then call ``users_started``."""

    counts: Mapping[str, int]
    host: str | None


@dataclass(frozen=True, slots=True)
class StopUsers:
    """Stop every user: within the environment's stop_timeout if graceful, else at once."""

    graceful: bool


@dataclass(frozen=True, slots=True)
class SetState:
    """Report this state in the heartbeat from now on."""

    state: WorkerState


@dataclass(frozen=True, slots=True)
class SetUserCount:
    """Report this many users in the heartbeat from now on."""

    count: int


@dataclass(frozen=True, slots=True)
class Report:
    """Send the stats gathered so far now (ask :meth:`WorkerAgent.report` at this point)."""

    final: bool


@dataclass(frozen=True, slots=True)
class Fire:
    """Fire this script event with ``arguments`` (None: ``environment=`` the worker's)."""

    event: str
    arguments: tuple[tuple[str, Any], ...] | None = None


@dataclass(frozen=True, slots=True)
class Reregister:
    """Have the link register with the master again."""


@dataclass(frozen=True, slots=True)
class Finish:
    """The worker is done: stop the loops and close the link."""


Action = (
    Send
    | SendLocustStats
    | Configure
    | ApplySpawn
    | StartUsers
    | StopUsers
    | SetState
    | SetUserCount
    | Report
    | Fire
    | Reregister
    | Finish
    | Deliver
)
"""One thing the runtime does for the agent."""

_GRACEFUL_STOP: tuple[Action, ...] = (
    SetState(WorkerState.STOPPING),
    StopUsers(graceful=True),
    SetUserCount(0),
    Report(final=True),
)
"""Stop users within ``stop_timeout`` and send the final delta."""

_HALT: tuple[Action, ...] = (StopUsers(graceful=False), SetUserCount(0))
"""Stop every user at once (no stop_timeout: the master gives them to others)."""


class WorkerAgent:
    """One worker's state machine: follows its master's commands, decides what to send."""

    def __init__(self, settings: WorkerSettings, recorder: RequestRecorder) -> None:
        """Start idle, with no run; no I/O."""
        self.settings = settings
        self.node_id = settings.node_id
        self.recorder = recorder
        self.run_id = ""
        self.epoch = 0
        self.last_spawn_ts = 0.0
        self.worker_index = -1
        """This worker's index, as the master's last ``ack`` gave it (-1 before one)."""
        self.target_user_count = 0
        """Users the master's last accepted spawn asks of this worker."""
        self.quitting = False
        self.waiting_spawn: m.Spawn | None = None
        self.outbox = Outbox(
            resend_after=settings.stats_resend_after,
            max_frame=settings.max_frame,
            size=self._frame_size,
            window=STATS_WINDOW,
        )
        self._dropped_reported = 0
        self._handlers: dict[type, Callable[[Any, float, Facts], list[Action]]] = {
            m.Ack: self._on_ack,
            m.Spawn: self._on_spawn,
            m.Stop: self._on_stop,
            m.Quit: self._on_quit,
            m.Reconnect: self._on_reconnect,
            m.HordeEpoch: self._on_epoch,
            m.HordeStatsAck: self._on_stats_ack,
            m.MasterSpawningComplete: self._on_spawning_complete,
            m.LocustfileReply: self._ignore,
        }

    # --- entry points --------------------------------------------------------------------

    def handle(self, message: AnyMessage, now: float, facts: Facts) -> list[Action]:
        """What to do for one message from the master."""
        handler = self._handlers.get(type(message))
        if handler is None:
            if isinstance(message, UnknownMessage):
                return [Deliver(message)]  # a script's custom message, if it registered one
            log.warning("unexpected message from master", type=message.type)
            return []
        return handler(message, now, facts)

    def shutdown(self, now: float, facts: Facts) -> list[Action]:
        """Leave as for a ``quit`` (SIGTERM, Ctrl-C); nothing if already quitting."""
        if self.quitting:
            return []
        return self._on_quit(m.Quit(self.node_id), now, facts)

    def users_started(self, counts: Mapping[str, int], error: str | None) -> list[Action]:
        """After :class:`StartUsers`: report the counts now running (and a failure, if any)."""
        actions: list[Action] = []
        if error is not None:  # e.g. a class this worker's script does not define
            log.error("cannot apply spawn", error=error)
            report = m.ExceptionReport(self.node_id, msg=error, extra={UNHANDLED: True})
            actions.append(Send(report))
        total = sum(counts.values())
        actions += [
            SetState(WorkerState.RUNNING),
            SetUserCount(total),
            Send(m.WorkerSpawningComplete(self.node_id, dict(counts), total)),
        ]
        return actions

    def apply_spawn(self, message: m.Spawn, now: float, facts: Facts) -> list[Action]:
        """After :class:`ApplySpawn`: start the spawn's users, or keep it until a lease holds.

        Decided only once the spawn's ``test_start`` listeners have run (they may take a
        while), so the lease is judged when the users would start.
        """
        if any(message.user_classes_count.values()) and facts.lease.expired(now):
            log.info("waiting for the master to renew the lease before starting users")
            self.waiting_spawn = message
            return []
        self.waiting_spawn = None
        return [StartUsers(dict(message.user_classes_count), message.host or None)]

    def check_lease(self, now: float, facts: Facts) -> list[Action]:
        """Stop the users when the lease ran out; start a waiting spawn once one holds."""
        if facts.lease.expired(now):
            return self._lease_expired(now, facts) if facts.users else []
        if self.waiting_spawn is not None:
            spawn, self.waiting_spawn = self.waiting_spawn, None
            return [StartUsers(dict(spawn.user_classes_count), spawn.host or None)]
        return []

    def report(
        self,
        now: float,
        facts: Facts,
        *,
        final: bool = False,
        extra: Mapping[str, Any] | None = None,
    ) -> list[Action]:
        """Send the stats gathered since the last report, with ``extra``: the keys the
        script's ``report_to_master`` listeners added (they travel with it to the master).

        To a horde master only while the outbox has room (else the recorder keeps
        accumulating, and the next delta covers it all); a ``final`` delta goes even with a
        full window.
        """
        counts = dict(facts.counts)
        total = sum(counts.values())
        if not facts.horde:
            report = self.recorder.take_locust_report(
                now=facts.wall, user_classes_count=counts, user_count=total
            )
            if extra:
                report = dataclasses.replace(report, extra={**report.extra, **extra})
            return [SendLocustStats(report)]
        if not self.run_id:
            return []
        if not self.outbox.may_take(registered=facts.registered, final=final):
            return []
        delta = self.recorder.take_horde_delta(
            run_id=self.run_id,
            epoch=self.epoch,
            seq=self.outbox.next_seq,
            now=facts.wall,
            user_classes_count=counts,
            user_count=total,
        )
        if extra:
            delta = dataclasses.replace(delta, extra={**delta.extra, **extra})
        actions: list[Action] = [
            Send(m.HordeStats(self.node_id, part)) for part in self.outbox.add(delta, now)
        ]
        if self.outbox.dropped_items > self._dropped_reported:
            log.error(
                "stats entries too large for any frame were dropped",
                dropped=self.outbox.dropped_items - self._dropped_reported,
                max_frame=self.settings.max_frame,
            )
            self._dropped_reported = self.outbox.dropped_items
        return actions

    def resend(self, now: float, facts: Facts) -> list[Action]:
        """Send the unacknowledged deltas again if no ack progressed for a while."""
        due = self.outbox.resend_due(now, registered=facts.registered)
        return [Send(m.HordeStats(self.node_id, delta)) for delta in due]

    def user_error(self, exception: BaseException, tb: Any) -> list[Action]:
        """Report an exception a task raised; as Locust's worker: str(exception), the frames."""
        frames = "".join(traceback.format_tb(tb)) if isinstance(tb, TracebackType) else str(tb)
        return [Send(m.ExceptionReport(self.node_id, msg=str(exception), traceback=frames))]

    def log_lines(self, lines: list[str]) -> list[Action]:
        """Ship new log lines to the master (its ``GET /logs`` shows them); none: nothing."""
        return [Send(m.Logs(self.node_id, tuple(lines)))] if lines else []

    # --- handlers ------------------------------------------------------------------------

    def _on_ack(self, message: m.Ack, now: float, facts: Facts) -> list[Action]:
        self.worker_index = message.index
        # A restarted master knows none of this worker's names: define them again, in the
        # resent deltas first (a master that kept them just reads them twice).
        self.recorder.forget_announcements()
        self.waiting_spawn = None
        actions: list[Action] = [
            Send(m.HordeStats(self.node_id, delta)) for delta in self.outbox.resend_all(now)
        ]
        if facts.users:
            log.warning(
                "registered again while running users: stopping them at once"
                " (the master counts this worker as idle now)",
                users=facts.users,
            )
            actions += [*_HALT, SetState(WorkerState.READY), Report(final=True)]
        log.info(
            "registered with master", index=message.index, horde=message.horde, lease=message.lease
        )
        return actions

    def _on_reconnect(self, message: m.Reconnect, now: float, facts: Facts) -> list[Action]:
        log.info("master asked for a reconnect")
        return []

    def _on_spawn(self, message: m.Spawn, now: float, facts: Facts) -> list[Action]:
        actions: list[Action] = [Send(m.Spawning(self.node_id))]
        if message.timestamp <= self.last_spawn_ts:
            log.warning("dropping an old spawn message", timestamp=message.timestamp)
            return actions
        self.last_spawn_ts = message.timestamp
        self.target_user_count = sum(message.user_classes_count.values())
        options = message.parsed_options
        tags = None
        if "tags" in options or "exclude_tags" in options:
            tags = (options.get("tags"), options.get("exclude_tags"))
        given = tuple(options.items())
        actions.append(Configure(message.stop_timeout, message.host or None, tags, given))
        if message.run_id != self.run_id or not self.run_id:
            self._begin_run(message)
            actions.append(Fire("test_start"))
        actions += [SetState(WorkerState.SPAWNING), ApplySpawn(message)]
        return actions

    def _begin_run(self, message: m.Spawn) -> None:
        self.run_id = message.run_id
        self.epoch = message.epoch
        self.outbox.start_run(message.run_id)
        self.recorder.reset()
        # Names sent in deltas the master drops (another run's final delta, e.g. to a
        # restarted master) never reached its table: each run's first delta defines them.
        self.recorder.forget_announcements()

    def _on_spawning_complete(
        self, message: m.MasterSpawningComplete, now: float, facts: Facts
    ) -> list[Action]:
        """The master's ramp is done: the script hears it here too (Locust's order)."""
        return [Fire("spawning_complete", (("user_count", message.user_count),))]

    def _on_stop(self, message: m.Stop, now: float, facts: Facts) -> list[Action]:
        self.waiting_spawn = None
        return [
            Fire("test_stopping"),
            *_GRACEFUL_STOP,
            Send(m.ClientStopped(self.node_id)),
            Fire("test_stop"),
            SetState(WorkerState.READY),
            Send(m.ClientReady(self.node_id)),
        ]

    def _on_quit(self, message: m.Quit, now: float, facts: Facts) -> list[Action]:
        self.quitting = True
        self.waiting_spawn = None
        log.info("worker quitting")
        return [*_GRACEFUL_STOP, Fire("quitting"), Send(m.WorkerQuit(self.node_id)), Finish()]

    def _on_epoch(self, message: m.HordeEpoch, now: float, facts: Facts) -> list[Action]:
        if message.run_id == self.run_id:
            self.epoch = message.epoch
            self.recorder.reset()
            self.recorder.forget_announcements()  # as for a new run: skipped deltas' names
        return []

    def _on_stats_ack(self, message: m.HordeStatsAck, now: float, facts: Facts) -> list[Action]:
        self.outbox.ack(message.run_id, message.seq, now)
        return []

    def _ignore(self, message: AnyMessage, now: float, facts: Facts) -> list[Action]:
        return []

    # --- the lease -----------------------------------------------------------------------

    def _lease_expired(self, now: float, facts: Facts) -> list[Action]:
        lease = facts.lease
        answered = (
            lease.deadline - lease.seconds
            if lease.deadline is not None and lease.seconds is not None
            else None
        )
        since = f"{now - answered:.1f} s ago" if answered is not None else "registration"
        log.warning(
            f"lease expired: no answer from the master since {since}, stopping {facts.users} users",
            users=facts.users,
            lease=lease.seconds,
        )
        if facts.state == WorkerState.STOPPING:
            # the stop in progress sends the final delta and registers again
            return list(_HALT)
        return [*_HALT, SetState(WorkerState.READY), Report(final=True), Reregister()]

    def _frame_size(self, delta: HordeStatsDelta) -> int:
        return len(encode(m.HordeStats(self.node_id, delta)))
