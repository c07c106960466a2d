"""The master's brain: the run state machine and one short handler per message type.

The coordinator owns the worker registry, the merged stats, the current distribution of
users and the ramp. It never sleeps and never touches a socket: it sends through an
injected ``send(identity, message)`` callable and every entry point takes ``now``. The
loops (:mod:`horde.master.loops`) feed it frames and clock ticks; the HTTP shim calls its
commands. Cross-cutting reactions are written once: a worker lost for any reason goes
through :meth:`Coordinator._lose_worker`.

Imports: the standard library, structlog and horde.master / horde.protocol.
"""

from __future__ import annotations

import math
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog

from horde.master.config import MasterSettings
from horde.master.corrected import CorrectedStats
from horde.master.dispatch import (
    UserClassSpec,
    class_targets,
    distribute,
    worker_order,
)
from horde.master.exceptions import ExceptionBook
from horde.master.history import History, history_point
from horde.master.migrate import move_toward, users_out_of_place
from horde.master.ramp import RampPlan
from horde.master.ratelimit import LogThrottle
from horde.master.registry import Registry, WorkerState
from horde.master.shape import ShapeRunner
from horde.master.stats import MergedStats
from horde.master.swarm import (
    ACTIVE_RUN,
    CommandError,
    RunHooks,
    RunState,
    SwarmRequest,
    validate_request,
)
from horde.protocol import messages as m
from horde.protocol.codec import AnyMessage
from horde.protocol.corrected import CORRECTED_KEY, corrected_from_wire
from horde.protocol.errors import ProtocolError

log = structlog.get_logger("horde.master")

Send = Callable[[str, AnyMessage], None]
MAX_LOG_LINES = 500
LEASE_GRACE = 0.5
"""Seconds past a missing horde worker's lease before its users go elsewhere: the worker
checks its lease every 0.1 s and then stops its users, so no user ever runs twice."""


class Coordinator:
    """Run state, registry, distribution and stats of one master."""

    def __init__(
        self,
        settings: MasterSettings,
        user_classes: Sequence[UserClassSpec],
        send: Send,
        *,
        scripts: Sequence[m.ScriptFile] = (),
        new_run_id: Callable[[], str] = lambda: uuid.uuid4().hex[:12],
        started_at: float = 0.0,
        hooks: RunHooks | None = None,
        shapes: Mapping[str, Callable[[], Any]] | None = None,
    ) -> None:
        self.settings = settings
        self.user_classes = list(user_classes)
        self.shapes = dict(shapes or {})
        self.scripts = tuple(scripts)
        self._send_raw = send
        self._new_run_id = new_run_id
        self.hooks = hooks or RunHooks()
        self.registry = Registry(settings.heartbeat_interval, settings.heartbeat_liveness)
        self.stats = MergedStats(started_at=started_at, max_names=settings.max_names)
        self.corrected = CorrectedStats(max_names=settings.max_names)
        self.exceptions = ExceptionBook()
        self.state = RunState.READY
        self.run_id = ""
        self.epoch = 0
        self.host = settings.host
        self.target_total = 0
        self.applied_total = 0
        self.distribution: dict[str, dict[str, int]] = {}
        self.ramp: RampPlan | None = None
        self.spawn_rate = settings.spawn_rate
        self.migrate_at: float | None = None
        self.stats_seq: dict[str, tuple[str, int]] = {}
        self.lease_wait: dict[str, float] = {}
        self.shape: ShapeRunner | None = None
        self.selected_classes: tuple[str, ...] | None = None
        self.run_options: dict[str, object] = settings.run_options
        self.history = History()
        self.deadline: float | None = None
        self.stop_deadline: float | None = None
        self.awaiting_stop: set[str] = set()
        self.counters: dict[str, int] = {}
        self.worker_logs: dict[str, deque[str]] = {}
        self.worker_requests: dict[str, int] = {}
        self._sent: dict[str, tuple[Mapping[str, int], str]] = {}
        self._spawn_ts = 0.0
        self._throttle = LogThrottle()
        self._handlers: dict[type, Callable[[str, Any, float], None]] = {
            m.ClientReady: self._on_client_ready,
            m.WorkerHeartbeat: self._on_heartbeat,
            m.Spawning: self._on_spawning,
            m.WorkerSpawningComplete: self._on_spawning_complete,
            m.LocustStats: self._on_locust_stats,
            m.HordeStats: self._on_horde_stats,
            m.ClientStopped: self._on_client_stopped,
            m.WorkerQuit: self._on_quit,
            m.ExceptionReport: self._on_exception,
            m.LocustfileRequest: self._on_locustfile,
            m.Logs: self._on_logs,
        }

    # --- commands ------------------------------------------------------------------------

    def start(self, request: SwarmRequest, now: float) -> None:
        """Start a test, or change the user count of the running one."""
        validate_request(
            request,
            max_users=self.settings.max_users,
            class_names=[spec.name for spec in self.user_classes],
            shape_names=self.shapes,
        )
        if self.state is RunState.STOPPING:
            raise CommandError("the test is stopping; start again once it has stopped")
        if not self.registry.active():
            raise CommandError("no worker is connected yet; start a worker first")
        if self.state not in ACTIVE_RUN:
            self._new_run(now)
            self.deadline = None
        if request.host:
            self.host = request.host
        self.run_options = {**self.settings.run_options, **request.options}
        if request.run_time:  # without one, a change keeps the running test's limit
            self.deadline = now + request.run_time
        if request.shape_class is not None:
            self.shape = ShapeRunner(
                request.shape_class,
                self.shapes[request.shape_class](),
                now,
                known_classes=[spec.name for spec in self.user_classes],
                max_users=self.settings.max_users,
            )
            self.state = RunState.SPAWNING
            log.info("swarm with shape", run_id=self.run_id, shape=request.shape_class)
        else:
            self.shape = None
            self._retarget(request.user_count, request.spawn_rate, request.user_classes, now)
            log.info(
                "swarm",
                run_id=self.run_id,
                users=request.user_count,
                spawn_rate=request.spawn_rate,
                host=self.host,
                run_time=request.run_time,
                user_classes=request.user_classes,
            )
        self.tick(now)

    def _retarget(
        self, users: int, rate: float, classes: tuple[str, ...] | None, now: float
    ) -> None:
        """Ramp from the users placed now to ``users`` at ``rate``, among ``classes``.

        A new choice of classes re-places the users already running at once; the ramp
        then moves the total.
        """
        changed = classes != self.selected_classes
        self.selected_classes = classes
        self.spawn_rate = rate
        if changed and self.applied_total and self.state in ACTIVE_RUN:
            self._apply_total(self.applied_total, now)
        self.target_total = users
        self.ramp = RampPlan(self.applied_total, users, rate, now)
        self.state = RunState.SPAWNING

    def stop(self, now: float) -> None:
        """Stop the test: every worker stops its users and reports its final stats."""
        if self.state not in ACTIVE_RUN:
            return
        self.ramp = None
        self.shape = None
        self.migrate_at = None
        self.deadline = None
        self.distribution = {}
        self._sent = {}
        self.applied_total = self.target_total = 0
        self.awaiting_stop = set()
        for record in self.registry.all():
            if record.state is not WorkerState.MISSING:
                self._send(record.id, m.Stop(record.id))
                self.awaiting_stop.add(record.id)
        self.stop_deadline = now + self.settings.stop_wait + (self._stop_timeout or 0)
        self.state = RunState.STOPPING
        log.info("stopping", run_id=self.run_id, workers=len(self.awaiting_stop))
        self._check_stopped(now)

    def quit(self) -> None:
        """Tell every worker to exit."""
        for record in self.registry.all():
            self._send(record.id, m.Quit(record.id))

    def reset_stats(self, now: float) -> None:
        """Start a new stats epoch: figures restart from zero, a running test goes on."""
        self.epoch += 1
        self.stats.reset(now)
        self.corrected.reset()
        self.exceptions.clear()
        self.worker_requests.clear()
        self.history.clear()
        if self.run_id:
            for record in self.registry.all():
                if record.is_horde:
                    self._send(record.id, m.HordeEpoch(record.id, self.run_id, self.epoch))
        log.info("stats reset", run_id=self.run_id, epoch=self.epoch)

    def _new_run(self, now: float) -> None:
        self.run_id = self._new_run_id()
        self.epoch = 0
        self.stats.reset(now)
        self.corrected.reset()
        self.exceptions.clear()
        self.worker_requests.clear()
        self.history.clear()
        self.distribution = {}
        self._sent = {}
        self.applied_total = 0
        self.selected_classes = None
        self.hooks.test_start()

    # --- time ----------------------------------------------------------------------------

    def tick(self, now: float) -> float:
        """Advance the shape, ramp, migration, deadline and stop; return seconds to sleep."""
        waits = [self.settings.sweep_interval]
        if self.shape is not None and self.state in ACTIVE_RUN:
            if self.shape.due(now):
                self._shape_step(self.shape, now)
            if self.shape is not None:
                waits.append(self.shape.next_at - now)
        if self.state is RunState.SPAWNING and self.ramp is not None:
            waits.append(self._advance_ramp(self.ramp, now))
        if self.migrate_at is not None and self.state in ACTIVE_RUN:
            if now >= self.migrate_at:
                self._migrate(now)
            if self.migrate_at is not None:
                waits.append(self.migrate_at - now)
        if self.deadline is not None and self.state in ACTIVE_RUN:
            if now >= self.deadline:
                log.info("run time reached, stopping")
                self.stop(now)
            else:
                waits.append(self.deadline - now)
        if self.state is RunState.STOPPING:
            self._check_stopped(now)
        waits.extend(expiry - now for expiry in self.lease_wait.values())
        if self.state in (*ACTIVE_RUN, RunState.STOPPING) and self.history.due(now):
            self.history.add(history_point(self.stats, self.user_count, now))
        return max(0.0, min(waits))

    def _advance_ramp(self, ramp: RampPlan, now: float) -> float:
        """Apply every ramp step due at ``now``; return seconds until the next one."""
        step = ramp.next_step(now)
        while step is not None:
            self._apply_total(step.total, now)
            step = ramp.next_step(now)
        if not ramp.done:
            return max(0.0, ramp.next_at - now)
        self.ramp = None
        self.state = RunState.RUNNING
        for record in self.registry.active():
            self._send(record.id, m.MasterSpawningComplete(record.id, self.applied_total))
        log.info("spawning complete", users=self.applied_total)
        return math.inf

    def _shape_step(self, shape: ShapeRunner, now: float) -> None:
        """Ask the shape for the wanted load; follow it, or stop when it ends or fails."""
        previous = shape.current
        try:
            step = shape.step(now)
        except Exception as exc:  # the user's tick() failed: report it and stop
            self.exceptions.record(
                f"load shape {shape.name}: {type(exc).__name__}: {exc}",
                traceback.format_exc(),
                "master",
            )
            log.error("load shape failed, stopping", shape=shape.name, error=str(exc))
            self.stop(now)
            return
        if step is None:
            log.info("load shape finished, stopping", shape=shape.name)
            self.stop(now)
            return
        if step != previous:
            log.info(
                "load shape step",
                shape=shape.name,
                users=step.user_count,
                spawn_rate=step.spawn_rate,
                user_classes=step.user_classes,
            )
            self._retarget(step.user_count, step.spawn_rate, step.user_classes, now)

    def sweep(self, now: float) -> None:
        """Mark silent workers missing (moving their users); forget long-missing ones."""
        for event in self.registry.sweep(now):
            self._count("worker_missing")
            log.warning("worker missing", worker=event.worker_id, silent_for=event.silent_for)
            record = self.registry.get(event.worker_id)
            if record is not None and record.is_horde and event.worker_id in self.distribution:
                # Its lease ran out at most ``lease`` after the last heartbeat we got.
                expiry = record.last_heartbeat + self.settings.lease_seconds + LEASE_GRACE
                self.lease_wait[event.worker_id] = expiry
            else:  # a Locust worker has no lease: its users move now (it may run on)
                self._lose_worker(event.worker_id, now)
        for worker, expiry in list(self.lease_wait.items()):
            record = self.registry.get(worker)
            if record is None or record.state is not WorkerState.MISSING:
                del self.lease_wait[worker]  # back (or gone): its own path reconciles it
            elif now >= expiry:
                del self.lease_wait[worker]
                self._lose_worker(worker, now)
        forget_before = now - self.settings.forget_missing_after
        for record in self.registry.all():
            if record.state is WorkerState.MISSING and record.last_heartbeat < forget_before:
                log.info("forgetting missing worker", worker=record.id)
                self.registry.remove(record.id)
                self.stats.forget_worker(record.id)
                self.stats_seq.pop(record.id, None)

    # --- messages ------------------------------------------------------------------------

    def handle(self, identity: str, message: AnyMessage, now: float) -> None:
        """React to one decoded message from the worker whose socket is ``identity``."""
        handler = self._handlers.get(type(message))
        if handler is None:
            self._count("unknown_type")
            if self._throttle.allow(f"type:{message.type}", now) is not None:
                log.warning("unknown message type", type=message.type, worker=identity)
            return
        if not isinstance(message, m.ClientReady | m.LocustfileRequest) and (
            identity not in self.registry
        ):
            self._on_stranger(identity, message, now)
            return
        handler(identity, message, now)

    def count_malformed(self, identity: str, reason: str, detail: str, now: float) -> None:
        """Count and (rate-limited) log a frame that failed to decode."""
        self._count(f"malformed_{reason}")
        suppressed = self._throttle.allow(f"malformed:{reason}", now)
        if suppressed is not None:
            log.warning(
                "malformed frame dropped",
                worker=identity,
                reason=reason,
                detail=detail[:200],
                suppressed=suppressed,
            )

    def _on_stranger(self, identity: str, message: AnyMessage, now: float) -> None:
        """A peer we do not know (we restarted, or it was removed) is asked to register.

        Nothing else it sends counts: unlike Locust's master, stats from a peer that never
        registered are dropped, so no stranger can inflate a run's figures. (A horde
        worker resends what was not acknowledged once it has registered again.)
        """
        self._count("unknown_worker")
        if isinstance(message, m.WorkerHeartbeat):
            self._send(identity, m.Reconnect(identity))

    def _on_client_ready(self, identity: str, message: m.ClientReady, now: float) -> None:
        if identity in self.registry and identity in self.distribution:
            # It came back with its users stopped (its lease ran out): they move at once.
            self._lose_worker(identity, now, keep_record=True)
        record = self.registry.register(
            identity,
            now,
            is_horde=message.horde_version is not None,
            version=str(message.version),
        )
        # The intern table and stats sequence stay: the same process resends what we lack.
        self._sent.pop(identity, None)
        if record.is_horde:
            ack = m.Ack(
                identity,
                index=record.index,
                horde=m.PROTOCOL_VERSION,
                lease=self.settings.lease_seconds,
            )
        else:
            ack = m.Ack(identity, index=record.index)
        self._send(identity, ack)
        log.info(
            "worker ready",
            worker=identity,
            index=record.index,
            horde=record.is_horde,
            workers=self.registry.count_active(),
        )
        self._start_migration(now)

    def _on_heartbeat(self, identity: str, message: m.WorkerHeartbeat, now: float) -> None:
        result = self.registry.heartbeat(
            identity,
            now,
            state=self._reported_state(identity, message.state, now),
            cpu=message.cpu_usage,
            memory=message.memory_usage,
            user_count=message.user_count,
            loop_lag=message.loop_lag,
        )
        self._send(identity, m.MasterHeartbeat(identity, beat=message.beat))
        if result.revived:
            log.info("worker back", worker=identity)
            self._start_migration(now)

    def _reported_state(self, identity: str, text: str, now: float) -> WorkerState:
        """The state a heartbeat reports; an unknown one is counted and the old one kept."""
        try:
            state = WorkerState(text)
        except ValueError:
            state = WorkerState.MISSING
        if state is not WorkerState.MISSING:
            return state
        self._count("malformed_state")
        if self._throttle.allow("state", now) is not None:
            log.warning("heartbeat with an unknown state", worker=identity, state=text[:40])
        record = self.registry.get(identity)
        if record is None or record.state is WorkerState.MISSING:
            return WorkerState.READY
        return record.state

    def _on_spawning(self, identity: str, message: m.Spawning, now: float) -> None:
        self.registry.set_state(identity, WorkerState.SPAWNING)

    def _on_spawning_complete(
        self, identity: str, message: m.WorkerSpawningComplete, now: float
    ) -> None:
        self.registry.update_users(identity, dict(message.user_classes_count), message.user_count)
        self.registry.set_state(identity, WorkerState.RUNNING)

    def _on_locust_stats(self, identity: str, message: m.LocustStats, now: float) -> None:
        self._merge_stats(identity, message, now)

    def _on_horde_stats(self, identity: str, message: m.HordeStats, now: float) -> None:
        self._merge_stats(identity, message, now)

    def _merge_stats(
        self, identity: str, message: m.LocustStats | m.HordeStats, now: float
    ) -> None:
        if isinstance(message, m.HordeStats):
            delta = message.delta
            if not self._in_sequence(identity, delta.run_id, delta.seq):
                return
            if delta.epoch != self.epoch:
                self._count("stale_stats")
                self.stats.define_names(identity, delta.names)  # later deltas refer to them
                return
            self.stats.merge_horde(identity, delta, now)
            if CORRECTED_KEY in delta.extra:
                self._merge_corrected(delta.extra[CORRECTED_KEY])
            requests = delta.request_count()
            counts, total = delta.user_classes_count, delta.user_count
        else:
            if not self.run_id:
                self._count("stale_stats")
                return
            self.stats.merge_locust(identity, message.report, now)
            requests = message.report.stats_total.num_requests
            counts, total = message.report.user_classes_count, message.report.user_count
        self.worker_requests[identity] = self.worker_requests.get(identity, 0) + requests
        self.registry.update_users(identity, dict(counts), total)

    def _merge_corrected(self, wire: object) -> None:
        """Merge a delta's corrected series; a malformed one is counted and dropped whole."""
        try:
            items = corrected_from_wire(wire)
        except ProtocolError:
            self._count("malformed_corrected")
            return
        self.corrected.merge(items)

    def _in_sequence(self, identity: str, run_id: str, seq: int) -> bool:
        """Whether a horde delta is the next one of this run; acknowledge what we have.

        Each (run, worker, seq) is merged once and in order: a duplicate or a delta after
        a gap is not merged, and the ack repeats the last seq merged (the worker resends
        from there). Deltas of other runs are dropped unacknowledged.
        """
        if not run_id or run_id != self.run_id:
            self._count("stale_stats")
            return False
        known_run, merged = self.stats_seq.get(identity, (run_id, 0))
        if known_run != run_id:
            merged = 0
        accept = seq == merged + 1
        if accept:
            merged = seq
        else:
            self._count("duplicate_stats" if seq <= merged else "stats_gap")
        self.stats_seq[identity] = (run_id, merged)
        self._send(identity, m.HordeStatsAck(identity, run_id, merged))
        return accept

    def _on_client_stopped(self, identity: str, message: m.ClientStopped, now: float) -> None:
        self.registry.update_users(identity, {}, 0)
        self.registry.set_state(identity, WorkerState.STOPPED)
        if identity in self.awaiting_stop:
            self.awaiting_stop.discard(identity)
            self._check_stopped(now)
        elif self.state in ACTIVE_RUN and identity in self.distribution:
            log.warning("worker stopped its users on its own", worker=identity)
            self._lose_worker(identity, now, keep_record=True)

    def _on_quit(self, identity: str, message: m.WorkerQuit, now: float) -> None:
        log.info("worker quit", worker=identity)
        self._lose_worker(identity, now)
        self.registry.remove(identity)
        self.stats.forget_worker(identity)
        self.stats_seq.pop(identity, None)
        self._check_stopped(now)

    def _on_exception(self, identity: str, message: m.ExceptionReport, now: float) -> None:
        self.exceptions.record(message.msg, message.traceback, identity)

    def _on_locustfile(self, identity: str, message: m.LocustfileRequest, now: float) -> None:
        if self.scripts:
            self._send(identity, m.LocustfileReply(identity, self.scripts))
        else:
            self._send(identity, m.LocustfileReply(identity, error="the master has no script"))

    def _on_logs(self, identity: str, message: m.Logs, now: float) -> None:
        lines = self.worker_logs.setdefault(identity, deque(maxlen=MAX_LOG_LINES))
        lines.extend(message.lines)

    # --- the shared reactions ------------------------------------------------------------

    def _lose_worker(self, identity: str, now: float, *, keep_record: bool = True) -> None:
        """A worker is gone (missing, quit, re-registered): move its users to the others."""
        self.awaiting_stop.discard(identity)
        self._sent.pop(identity, None)
        had_users = self.distribution.pop(identity, None)
        if keep_record and identity in self.registry:
            self.registry.update_users(identity, {}, 0)
        if self.state not in ACTIVE_RUN or had_users is None:
            return
        if not [r for r in self.registry.active() if r.id != identity]:
            log.warning("no workers left, stopping the test")
            self.stop(now)
            return
        self._apply_total(self.applied_total, now, exclude=identity)

    def _full_placement(self, total: int, exclude: str | None = None) -> dict[str, dict[str, int]]:
        """Where ``total`` users belong on the active workers (moving as few as possible)."""
        workers = worker_order(r.id for r in self.registry.active() if r.id != exclude)
        chosen = self.selected_classes
        specs = [s for s in self.user_classes if chosen is None or s.name in chosen]
        targets = dict.fromkeys((s.name for s in self.user_classes), 0)
        targets.update(class_targets(total, specs))
        return distribute(self.distribution, workers, targets)

    def _start_migration(self, now: float) -> None:
        """A worker joined (or came back to) a running test: move its share at the spawn rate."""
        if self.state in ACTIVE_RUN and self.ramp is None:
            self.migrate_at = now

    def _migrate(self, now: float) -> None:
        """Move the next ``max(1, floor(rate))`` users toward the balanced placement."""
        full = self._full_placement(self.applied_total)
        step = max(1, int(self.spawn_rate))
        moved = move_toward(self.distribution, full, step)
        moved = {w: counts for w, counts in moved.items() if w in full}
        self._place(moved, self.applied_total, now)
        if users_out_of_place(moved, full) == 0:
            self.migrate_at = None
        else:
            self.migrate_at = now + step / self.spawn_rate

    def _apply_total(self, total: int, now: float, *, exclude: str | None = None) -> None:
        """Place ``total`` users on the active workers at once; send ``spawn`` where changed."""
        self.migrate_at = None
        self._place(self._full_placement(total, exclude), total, now)

    def _place(self, new: dict[str, dict[str, int]], total: int, now: float) -> None:
        """Adopt placement ``new``; send ``spawn`` to every worker whose share changed."""
        for worker, counts in new.items():
            if self._sent.get(worker) == (counts, self.host):
                continue
            self._spawn_ts = max(now, self._spawn_ts + 1e-6)
            self._send(worker, self._spawn_message(worker, counts))
            self._sent[worker] = (counts, self.host)
        self.distribution = new
        self.applied_total = total

    def _spawn_message(self, worker: str, counts: Mapping[str, int]) -> m.Spawn:
        return m.Spawn(
            worker,
            timestamp=self._spawn_ts,
            user_classes_count=dict(counts),
            host=self.host,
            stop_timeout=self._stop_timeout,
            parsed_options=self.run_options,
            run_id=self.run_id,
            epoch=self.epoch,
        )

    @property
    def _stop_timeout(self) -> float | None:
        value = self.run_options.get("stop_timeout", self.settings.stop_timeout)
        return float(value) if isinstance(value, int | float) else None

    def _check_stopped(self, now: float) -> None:
        if self.state is not RunState.STOPPING:
            return
        waiting = set()
        for worker in self.awaiting_stop:
            record = self.registry.get(worker)
            if record is not None and record.state is not WorkerState.MISSING:
                waiting.add(worker)
        self.awaiting_stop = waiting
        timed_out = self.stop_deadline is not None and now >= self.stop_deadline
        if not waiting or timed_out:
            if timed_out and waiting:
                log.warning("stop timed out", waiting=sorted(waiting))
            self.state = RunState.STOPPED
            self.awaiting_stop = set()
            log.info("stopped", run_id=self.run_id)
            self.hooks.test_stop()

    # --- helpers -------------------------------------------------------------------------

    def _send(self, identity: str, message: AnyMessage) -> None:
        self._send_raw(identity, message)

    def _count(self, key: str) -> None:
        self.counters[key] = self.counters.get(key, 0) + 1

    @property
    def user_count(self) -> int:
        """Users the workers report running (missing workers excluded)."""
        return sum(r.user_count for r in self.registry.all() if r.state is not WorkerState.MISSING)
