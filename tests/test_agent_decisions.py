"""The worker agent's decisions as tables: message and facts in, actions out (no users, no
clock, no sleeping)."""

from __future__ import annotations

from typing import Any

import pytest

from horde.protocol import messages as m
from horde.protocol.states import WorkerState
from horde.protocol.upstream import UNHANDLED
from horde.worker import agent as a
from horde.worker.config import WorkerSettings
from horde.worker.lease import Lease
from horde.worker.stats import RequestRecorder
from tests.test_agent import spawn

HOST = "http://127.0.0.1:1"
GRACEFUL_STOP = [
    a.SetState(WorkerState.STOPPING),
    a.StopUsers(graceful=True),
    a.SetUserCount(0),
    a.Report(final=True),
]
HALT = [a.StopUsers(graceful=False), a.SetUserCount(0)]


def lease(expired: bool) -> Lease:
    """A 3 s lease in force that holds until 100.5, or one that ran out at 100.0."""
    held = Lease()
    held.grant(3.0)
    held.sent(1, 97.0 if expired else 97.5)
    held.answered(1)
    return held


def facts(
    users: int = 0,
    state: WorkerState = WorkerState.READY,
    expired: bool = False,
    horde: bool = True,
    registered: bool = True,
) -> a.Facts:
    """The runtime's observations at now=100.0 (lease held until 100.5, or over at 100.0)."""
    return a.Facts(
        state=state,
        users=users,
        counts={"Idle": users} if users else {},
        registered=registered,
        horde=horde,
        lease=lease(expired),
        wall=1000.0,
    )


def configure(stop_timeout: float | None = 0.0, tags: Any = None) -> a.Configure:
    """The Configure a spawn gives; its options are the spawn's (the tags among them)."""
    options = () if tags is None else (("tags", tags[0]),)
    return a.Configure(stop_timeout, HOST, tags, options)


def fresh() -> a.WorkerAgent:
    return a.WorkerAgent(WorkerSettings(node_id="w_1"), RequestRecorder())


HANDLE_TABLE: list[tuple[str, list[m.Message], a.Facts, list[a.Action]]] = [
    (
        "a first spawn starts a run, then goes on with the spawn",
        [spawn(1.0, 3)],
        facts(),
        [
            a.Send(m.Spawning("w_1")),
            configure(),
            a.Fire("test_start"),
            a.SetState(WorkerState.SPAWNING),
            a.ApplySpawn(spawn(1.0, 3)),
        ],
    ),
    (
        "a spawn of the same run fires no test_start",
        [spawn(1.0, 3), spawn(2.0, 1)],
        facts(users=3, state=WorkerState.RUNNING),
        [
            a.Send(m.Spawning("w_1")),
            configure(),
            a.SetState(WorkerState.SPAWNING),
            a.ApplySpawn(spawn(2.0, 1)),
        ],
    ),
    (
        "a spawn of another run starts a new one",
        [spawn(1.0, 3), spawn(2.0, 1, run_id="r2")],
        facts(users=3, state=WorkerState.RUNNING),
        [
            a.Send(m.Spawning("w_1")),
            configure(),
            a.Fire("test_start"),
            a.SetState(WorkerState.SPAWNING),
            a.ApplySpawn(spawn(2.0, 1, run_id="r2")),
        ],
    ),
    (
        "an older spawn is answered with spawning and otherwise dropped",
        [spawn(2.0, 3), spawn(1.0, 5)],
        facts(users=3),
        [a.Send(m.Spawning("w_1"))],
    ),
    (
        "a spawn's tags reach the environment",
        [spawn(1.0, 1, tags=["b"])],
        facts(),
        [
            a.Send(m.Spawning("w_1")),
            configure(tags=(["b"], None)),
            a.Fire("test_start"),
            a.SetState(WorkerState.SPAWNING),
            a.ApplySpawn(spawn(1.0, 1, tags=["b"])),
        ],
    ),
    (
        "stop: test_stopping, graceful stop, final delta, stopped, test_stop, ready",
        [m.Stop("w_1")],
        facts(users=2, state=WorkerState.RUNNING),
        [
            a.Fire("test_stopping"),
            *GRACEFUL_STOP,
            a.Send(m.ClientStopped("w_1")),
            a.Fire("test_stop"),
            a.SetState(WorkerState.READY),
            a.Send(m.ClientReady("w_1")),
        ],
    ),
    (
        "quit: graceful stop, final delta, quitting event, quit, finish",
        [m.Quit("w_1")],
        facts(users=2, state=WorkerState.RUNNING),
        [*GRACEFUL_STOP, a.Fire("quitting"), a.Send(m.WorkerQuit("w_1")), a.Finish()],
    ),
    (
        "an ack while idle changes nothing",
        [m.Ack("w_1", index=0, horde=1, lease=3.0)],
        facts(),
        [],
    ),
    (
        "an ack while users run halts them and sends the final delta",
        [m.Ack("w_1", index=0, horde=1, lease=3.0)],
        facts(users=2, state=WorkerState.RUNNING),
        [*HALT, a.SetState(WorkerState.READY), a.Report(final=True)],
    ),
    ("a reconnect is only logged", [m.Reconnect("w_1")], facts(), []),
    ("an epoch of another run changes nothing", [m.HordeEpoch("w_1", "x", 3)], facts(), []),
    ("a stats ack sends nothing", [m.HordeStatsAck("w_1", "r1", 1)], facts(), []),
    (
        "the master's spawning_complete fires the script's, with the total",
        [m.MasterSpawningComplete("w_1", 3)],
        facts(),
        [a.Fire("spawning_complete", (("user_count", 3),))],
    ),
]


@pytest.mark.parametrize(
    ("messages", "seen", "expected"),
    [row[1:] for row in HANDLE_TABLE],
    ids=[row[0] for row in HANDLE_TABLE],
)
def test_handle_decides_from_the_message_and_facts(
    messages: list[m.Message], seen: a.Facts, expected: list[a.Action]
) -> None:
    """The actions for the last message, after the earlier ones, are exactly the table's."""
    agent = fresh()
    for message in messages[:-1]:
        agent.handle(message, 100.0, seen)  # type: ignore[arg-type]
    assert agent.handle(messages[-1], 100.0, seen) == expected  # type: ignore[arg-type]


SPAWN_TABLE: list[tuple[str, int, bool, list[a.Action]]] = [
    ("users start while the lease holds", 2, False, [a.StartUsers({"Idle": 2}, HOST)]),
    ("users wait while the lease is expired", 2, True, []),
    ("zero users need no lease", 0, True, [a.StartUsers({"Idle": 0}, HOST)]),
]


@pytest.mark.parametrize(
    ("users", "expired", "expected"),
    [row[1:] for row in SPAWN_TABLE],
    ids=[row[0] for row in SPAWN_TABLE],
)
def test_apply_spawn_starts_users_only_under_a_lease(
    users: int, expired: bool, expected: list[a.Action]
) -> None:
    """Going on with a spawn starts its users, unless users need a lease that ran out."""
    agent = fresh()
    assert agent.apply_spawn(spawn(1.0, users), 100.0, facts(expired=expired)) == expected
    assert agent.waiting_spawn == (spawn(1.0, users) if expected == [] else None)


LEASE_TABLE: list[tuple[str, bool, a.Facts, list[a.Action]]] = [
    ("held, nothing waiting: nothing", False, facts(users=2), []),
    ("expired without users: nothing", False, facts(expired=True), []),
    (
        "expired with users: halt, final delta, register again",
        False,
        facts(users=2, state=WorkerState.RUNNING, expired=True),
        [*HALT, a.SetState(WorkerState.READY), a.Report(final=True), a.Reregister()],
    ),
    (
        "expired during a graceful stop: halt only (the stop reports)",
        False,
        facts(users=2, state=WorkerState.STOPPING, expired=True),
        HALT,
    ),
    (
        "a waiting spawn starts once the lease holds",
        True,
        facts(),
        [a.StartUsers({"Idle": 2}, HOST)],
    ),
    ("a waiting spawn keeps waiting while expired", True, facts(expired=True), []),
]


@pytest.mark.parametrize(
    ("waiting", "seen", "expected"),
    [row[1:] for row in LEASE_TABLE],
    ids=[row[0] for row in LEASE_TABLE],
)
def test_check_lease_decides_from_the_lease_and_users(
    waiting: bool, seen: a.Facts, expected: list[a.Action]
) -> None:
    """The lease check halts users, starts a waiting spawn or does nothing, as tabled."""
    agent = fresh()
    if waiting:
        agent.apply_spawn(spawn(1.0, 2), 100.0, facts(expired=True))
    assert agent.check_lease(100.0, seen) == expected


def test_a_stop_forgets_the_waiting_spawn() -> None:
    """A stop cancels a spawn waiting for its lease: the next check starts nothing."""
    agent = fresh()
    agent.apply_spawn(spawn(1.0, 2), 100.0, facts(expired=True))
    agent.handle(m.Stop("w_1"), 100.0, facts())
    assert agent.check_lease(100.0, facts()) == []


def test_users_started_reports_counts_and_a_failure() -> None:
    """After starting users the agent reports the counts; a failure is reported first,
    marked unhandled (Locust's failed spawn is an unhandled greenlet exception)."""
    agent = fresh()
    running = [a.SetState(WorkerState.RUNNING), a.SetUserCount(3)]
    complete = a.Send(m.WorkerSpawningComplete("w_1", {"Idle": 3}, 3))
    assert agent.users_started({"Idle": 3}, None) == [*running, complete]
    failed = a.Send(m.ExceptionReport("w_1", msg="no class Nope", extra={UNHANDLED: True}))
    assert agent.users_started({"Idle": 3}, "no class Nope") == [failed, *running, complete]


def test_a_second_shutdown_does_nothing() -> None:
    """shutdown leaves as a quit does, once; a second signal asks for nothing."""
    agent = fresh()
    assert agent.shutdown(100.0, facts())[-1] == a.Finish()
    assert agent.shutdown(100.0, facts()) == []


def test_reports_follow_the_masters_format() -> None:
    """No run: a horde master gets nothing, a Locust master its report; a run: one delta."""
    agent = fresh()
    assert agent.report(100.0, facts()) == []
    (locust,) = agent.report(100.0, facts(horde=False))
    assert isinstance(locust, a.SendLocustStats)
    agent.handle(spawn(1.0, 0), 100.0, facts())
    (horde,) = agent.report(100.0, facts(registered=True))
    assert isinstance(horde, a.Send) and isinstance(horde.message, m.HordeStats)
    assert (horde.message.delta.run_id, horde.message.delta.seq) == ("r1", 1)
    assert agent.report(100.0, facts(registered=False)) == []


def test_log_lines_become_one_logs_message() -> None:
    """New log lines go in one ``logs`` message; no lines, no message."""
    agent = fresh()
    assert agent.log_lines([]) == []
    assert agent.log_lines(["a", "b"]) == [a.Send(m.Logs("w_1", ("a", "b")))]
