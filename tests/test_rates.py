"""Arrival rates as tables on a virtual clock: the schedule, the leases of rate, dropped
iterations and the rate's move when a worker is lost."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from horde.master.arrivalspec import class_schedule, constant, parse_stages
from horde.master.config import MasterSettings
from horde.master.coordinator import CommandError, Coordinator, RunState, SwarmRequest
from horde.master.dispatch import UserClassSpec
from horde.master.forms import FieldError, parse_swarm
from horde.master.ratebook import RateBook
from horde.master.ratelease import HORIZON, LEAD, STEP, RateLease, split
from horde.master.swarm import StopReason
from horde.protocol import messages as m
from horde.protocol.codec import decode_downstream, decode_upstream, encode
from horde.protocol.errors import ConfigError, ProtocolError
from horde.protocol.rates import Schedule, owned
from horde.settings import arrival_schedule
from horde.worker.arrivalplan import ClassArrivals
from tests.test_coordinator import Outbox, join

# --- the schedule --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "t", "count"),
    [
        (Schedule(500), 0.0, 0),
        (Schedule(500), 0.001, 1),
        (Schedule(500), 1.0, 500),
        (Schedule(500), 1.0005, 501),
        (Schedule(500), 20.0, 10_000),
        (Schedule(0, ((10, 100),)), 10.0, 500),  # a ramp from 0 to 100/s over 10 s
        (Schedule(0, ((10, 100),)), 5.0, 125),
        (Schedule(0, ((10, 100), (10, 100), (10, 0))), 30.0, 2000),
        (Schedule(0, ((10, 100), (10, 100), (10, 0))), 20.0, 1500),
        (Schedule(0, ((10, 100), (10, 0))), 99.0, 1000),  # after the end: nothing more
    ],
)
def test_count_is_the_integral_of_the_rate(schedule: Schedule, t: float, count: int) -> None:
    """count(t) is how many iterations are due strictly before t: the rate's integral."""
    assert schedule.count(t) == count


@pytest.mark.parametrize(
    "schedule",
    [Schedule(500), Schedule(7.5), Schedule(0, ((30, 100), (120, 500), (30, 0)))],
)
def test_due_inverts_count(schedule: Schedule) -> None:
    """Iteration k is due exactly when count moves from k to k + 1, for every k."""
    end = schedule.end or 60.0
    total = schedule.count(end)
    for k in range(0, total - 1, max(1, total // 997)):
        due, following = schedule.due(k), schedule.due(k + 1)
        assert schedule.count(due) == k
        assert schedule.count((due + following) / 2) == k + 1
        assert 0.0 <= due < following <= end


def test_due_times_are_in_order_and_a_schedule_never_reached_is_refused() -> None:
    """Due times never go back, and an index beyond a finite schedule's end is refused."""
    schedule = parse_stages("2s:10,3s:40,1s:0")
    dues = [schedule.due(k) for k in range(schedule.count(6.0))]
    assert dues == sorted(dues)
    assert schedule.rate_at(2.0) == 10 and schedule.rate_at(3.5) == 25.0
    with pytest.raises(ValueError, match="beyond"):
        schedule.due(schedule.count(6.0) + 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s:100,2m:500,30s:0", Schedule(0, ((30, 100), (120, 500), (30, 0)))),
        ("10:5", Schedule(0, ((10, 5),))),
        ("1h:1000", Schedule(0, ((3600, 1000),))),
    ],
)
def test_stages_are_written_as_spans_and_rates(text: str, expected: Schedule) -> None:
    """--stages takes comma-separated SPAN:RATE linear ramps from 0."""
    assert parse_stages(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("30s", "SPAN:RATE"),
        ("30s:abc", "rate"),
        ("xx:10", "stage 1"),
        ("10s:0", "every rate is 0"),
        ("10s:5,0s:5", "stage 2"),
        ("10s:-1", "between 0"),
    ],
)
def test_bad_stages_are_refused_naming_the_part(text: str, message: str) -> None:
    """A bad stages text is a ValueError naming what is wrong."""
    with pytest.raises(ValueError, match=message):
        parse_stages(text)


def test_a_class_declares_its_rate_or_stages_not_both() -> None:
    """arrival_rate and stages class attributes become schedules; both at once is refused."""

    class Rate:
        arrival_rate = 50

    class Stages:
        stages = [("10s", 20), (30, 20)]

    class Both:
        arrival_rate = 1
        stages = "1s:1"

    assert class_schedule(Rate) == Schedule(50)
    assert class_schedule(Stages) == Schedule(0, ((10, 20), (30, 20)))
    assert class_schedule(object) is None
    with pytest.raises(ValueError, match="Both: set arrival_rate or stages"):
        class_schedule(Both)
    with pytest.raises(ValueError, match="at least"):
        constant(0)


# --- grants ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "last", "period", "offsets", "expected"),
    [
        (0, 6, 2, (0,), [0, 2, 4]),
        (0, 6, 2, (1,), [1, 3, 5]),
        (10, 15, 3, (0, 2), [11, 12, 14]),
        (5, 5, 1, (0,), []),
    ],
)
def test_owned_lists_a_workers_part_of_a_grant(
    first: int, last: int, period: int, offsets: tuple[int, ...], expected: list[int]
) -> None:
    """A worker owns the indices whose position k % period is one of its offsets."""
    assert list(owned(first, last, period, offsets)) == expected


def test_a_grant_is_split_in_proportion_to_the_pools_and_covers_every_index_once() -> None:
    """Pools of 100, 300 and 100 get 1/5, 3/5 and 1/5 of a grant, disjoint and complete."""
    grants = split(0, 1000, "A", [("w1", 100), ("w2", 300), ("w3", 100)])
    parts = {g.worker_id: list(owned(g.first, g.last, g.period, g.offsets)) for g in grants}
    assert {w: len(p) for w, p in parts.items()} == {"w1": 200, "w2": 600, "w3": 200}
    assert sorted(k for p in parts.values() for k in p) == list(range(1000))


def _run_lease(
    lease: RateLease, pools_at: dict[float, list[tuple[str, int]]], until: float
) -> dict[str, list[float]]:
    """Drive ``lease`` on a virtual clock; return each worker's granted due times."""
    granted: dict[str, list[float]] = {}
    seen: set[int] = set()
    pools: list[tuple[str, int]] = []
    now = 0.0
    while now < until:
        pools = pools_at.get(round(now, 3), pools)
        for g in lease.issue(pools, now):
            for k in owned(g.first, g.last, g.period, g.offsets):
                assert k not in seen, f"index {k} granted twice"
                seen.add(k)
                due = lease.origin + lease.schedules[g.user_class].due(k)
                assert due <= now + HORIZON + 1e-9  # granted at most a horizon ahead
                granted.setdefault(g.worker_id, []).append(due)
        now = round(now + 0.01, 3)
    return granted


def test_two_workers_share_a_constant_rate_evenly_and_no_index_twice() -> None:
    """500/s over two equal pools for 20 s: each index once, each worker 250/s every second."""
    lease = RateLease({"A": Schedule(500)}, origin=LEAD)
    granted = _run_lease(lease, {0.0: [("w1", 100), ("w2", 100)]}, 21.0)
    for worker in ("w1", "w2"):
        per_second = Counter(math.floor(t - LEAD) for t in granted[worker])
        assert all(per_second[s] == 250 for s in range(20)), per_second
    assert lease.scheduled(20 + LEAD) == {"A": 10_000}


def test_a_lost_workers_share_moves_to_the_survivors_within_a_horizon() -> None:
    """One of three workers is lost at 5 s: after one horizon and step the two others run
    the whole rate, and the fleet's rate is whole again."""
    lease = RateLease({"A": Schedule(600)}, origin=0.0)
    three = [("w1", 100), ("w2", 100), ("w3", 100)]
    granted = _run_lease(lease, {0.0: three, 5.0: three[:2]}, 12.0)
    last_w3 = max(granted["w3"])
    assert 5.0 < last_w3 <= 5.0 + HORIZON + STEP
    for worker in ("w1", "w2"):
        per_second = Counter(math.floor(t) for t in granted[worker])
        assert per_second[3] == 200 and per_second[7] == 300
    fleet = Counter(math.floor(t) for times in granted.values() for t in times)
    assert all(fleet[s] == 600 for s in range(11))


def test_a_joiner_takes_a_share_at_the_next_step() -> None:
    """A worker that brings a pool at 3 s is granted iterations from the next step on."""
    lease = RateLease({"A": Schedule(100)}, origin=0.0)
    granted = _run_lease(lease, {0.0: [("w1", 50)], 3.0: [("w1", 50), ("w2", 50)]}, 6.0)
    assert min(granted["w2"]) >= 3.0 + HORIZON - 0.02
    assert min(granted["w2"]) <= 3.0 + HORIZON + STEP + 0.02


def test_no_pool_no_grant_and_a_stopped_lease_grants_nothing() -> None:
    """Without a horde pool nothing is granted; after a stop nothing, and figures freeze."""
    lease = RateLease({"A": Schedule(100)}, origin=0.0)
    assert lease.issue([("locust", 0)], 1.0) == []
    lease.stop(2.0)
    assert lease.issue([("w1", 10)], 3.0) == []
    assert lease.scheduled(50.0) == {"A": 200}
    assert lease.elapsed(50.0) == 2.0


# --- a worker's iterations: started on time or dropped ---------------------------------


def _grant(first: int, last: int, sent_at: float, rate: float = 100.0) -> m.HordeRate:
    return m.HordeRate(
        "w", run_id="r1", user_class="A", schedule=Schedule(rate), origin=0.0,
        sent_at=sent_at, first=first, last=last, period=1, offsets=(0,),
    )  # fmt: skip


def test_a_grant_is_mapped_to_the_workers_clock_by_the_fastest_delivery() -> None:
    """Due times shift by the smallest (receipt - sent) seen: a slow grant moves nothing."""
    plan = ClassArrivals("A", 0.010)
    plan.grant(_grant(0, 2, sent_at=100.0), now=1000.002)  # worker clock ahead by 900.002
    plan.grant(_grant(2, 4, sent_at=100.1), now=1000.5)  # delayed 0.4 s on the way
    assert [round(due, 6) for _, due in plan.pending] == [900.002, 900.012, 900.022, 900.032]


@pytest.mark.parametrize(
    ("events", "started", "dropped"),
    [
        # (pop at, start at): every iteration picked and started on time
        ([(0.000, 0.000), (0.010, 0.012), (0.020, 0.030)], 3, 0),
        # the user woke 10.1 ms after the due time: not started, dropped
        ([(0.000, 0.0101), (0.010, 0.010)], 1, 1),
        # no free user at all for the second (the runtime calls drop())
        ([(0.000, 0.001), (0.010, None)], 1, 1),
    ],
)
def test_an_iteration_starts_within_the_max_delay_or_is_dropped(
    events: list[tuple[float, float | None]], started: int, dropped: int
) -> None:
    """Started only within max_start_delay of its due time; else counted dropped."""
    plan = ClassArrivals("A", 0.010)
    plan.grant(_grant(0, len(events), sent_at=0.0), now=0.0)
    for pop_at, start_at in events:
        item = plan.pop_due(pop_at)
        assert item is not None
        if start_at is None:
            plan.drop()
        else:
            lateness = plan.start(item[1], start_at)
            assert lateness is None or 0 <= lateness <= 0.010
    assert (plan.started, plan.dropped) == (started, dropped)
    assert plan.pop_due(99.0) is None


def test_a_new_run_starts_the_counts_over() -> None:
    """A grant of another run empties the queue and the counts."""
    plan = ClassArrivals("A", 0.010)
    plan.grant(_grant(0, 3, 0.0), 0.0)
    plan.start(0.0, 0.0)
    plan.grant(m.HordeRate("w", run_id="r2", user_class="A", schedule=Schedule(1)), 5.0)
    assert (plan.started, plan.dropped, len(plan.pending)) == (0, 0, 0)


# --- the wire ----------------------------------------------------------------------------


def test_rate_messages_round_trip_and_bad_ones_are_protocol_errors() -> None:
    """horde.rate and horde.arrivals survive the codec; a bad grant is a ProtocolError."""
    grant = m.HordeRate(
        "w", run_id="r", user_class="A", schedule=parse_stages("1s:5,2s:0"), origin=1.5,
        sent_at=2.0, first=10, last=20, period=3, offsets=(0, 2),
    )  # fmt: skip
    assert decode_downstream(encode(grant)) == grant
    report = m.HordeArrivals("w", run_id="r", pool=7, started={"A": 3}, dropped={"A": 1})
    assert decode_upstream(encode(report)) == report
    bad = encode(grant).replace(b"\xa6period\x03", b"\xa6period\x00")
    with pytest.raises(ProtocolError):
        decode_downstream(bad)


# --- the master ----------------------------------------------------------------------------


def _master(classes: list[UserClassSpec]) -> tuple[Coordinator, Outbox]:
    outbox = Outbox()
    runs = iter(f"run{i}" for i in range(1, 100))
    c = Coordinator(MasterSettings(), classes, outbox, new_run_id=lambda: next(runs))
    return c, outbox


def _pools(c: Coordinator, *workers: str, pool: int = 10) -> None:
    for w in workers:
        c.handle(w, m.HordeArrivals(w, pool=pool), 0.0)


def test_a_run_with_no_horde_worker_is_refused_clearly() -> None:
    """Locust workers get no share of the rate: a run of arrival-rate classes is refused."""
    c, _ = _master([UserClassSpec("A")])
    join(c, "locust_1", horde=False)
    with pytest.raises(CommandError, match="need a horde worker"):
        c.start(SwarmRequest(arrival=Schedule(100)), 0.0)
    assert c.state is RunState.READY


def test_classes_split_the_rate_by_weight_and_locust_workers_get_none() -> None:
    """--arrival-rate 300 over weights 2:1 gives 200/s and 100/s, only to horde workers."""
    c, out = _master([UserClassSpec("A", 2), UserClassSpec("B", 1)])
    join(c, "h_1", "h_2")
    join(c, "locust_1", horde=False)
    _pools(c, "h_1", "h_2")
    c.start(SwarmRequest(arrival=Schedule(300)), 0.0)
    assert c.rates is not None
    assert {n: s.start_rate for n, s in c.rates.schedules.items()} == {"A": 200, "B": 100}
    for step in range(1, 30):
        c.tick(step * STEP)
    grants = out.take(m.HordeRate)
    assert {w for w, _ in grants} == {"h_1", "h_2"}
    assert not [g for _, g in out.take(m.Spawn) if any(g.user_classes_count.values())]  # type: ignore[attr-defined]


def test_the_master_snapshot_carries_started_dropped_and_achieved_rate() -> None:
    """Workers' absolute counts add up per class in the snapshot's arrivals, and a departed
    worker's counts stay in the totals."""
    c, _ = _master([UserClassSpec("A")])
    join(c, "h_1", "h_2")
    _pools(c, "h_1", "h_2")
    c.start(SwarmRequest(arrival=Schedule(100), run_time=10), 0.0)
    for w, started, dropped in (("h_1", 400, 5), ("h_2", 380, 15), ("h_1", 500, 5)):
        c.handle(w, m.HordeArrivals(w, run_id="run1", pool=10, started={"A": started},
                                    dropped={"A": dropped}), 5.0)  # fmt: skip
    c.handle("h_2", m.WorkerQuit("h_2"), 5.0)
    c.tick(10.0)
    snap = c.snapshot(30.0)
    assert c.state is RunState.STOPPING and c.end is not None
    assert c.end.reason is StopReason.RUN_TIME
    (row,) = snap.arrivals  # the schedule began LEAD after the start and ended at the stop
    assert (row.started, row.dropped, row.scheduled) == (880, 20, 975)
    assert row.achieved_rate == pytest.approx(880 / (10 - LEAD))
    total = snap.arrivals_total
    assert total is not None and total.dropped == 20


def test_stages_end_the_run_when_they_finish() -> None:
    """A run of stages stops on its own once the last stage has run."""
    c, _ = _master([UserClassSpec("A")])
    join(c, "h_1")
    _pools(c, "h_1")
    c.start(SwarmRequest(arrival=parse_stages("1s:10,1s:0")), 0.0)
    c.tick(1.0)
    assert c.state is RunState.RUNNING
    c.tick(2.0 + LEAD)
    assert c.end is not None and c.end.reason is StopReason.STAGES_FINISHED


def test_ratebook_ignores_counts_of_another_run() -> None:
    """Counts reported under an older run id do not enter this run's figures."""
    book = RateBook()
    book.new_run("r2")
    book.report("w", m.HordeArrivals("w", run_id="r1", pool=4, started={"A": 9}))
    assert book.counts() == {} and book.pools == {"w": 4}


# --- the spelling ------------------------------------------------------------------------


def test_swarm_takes_an_arrival_rate_or_stages_without_a_user_count() -> None:
    """/swarm's arrival_rate and stages fields become the request's schedule; both at once,
    or a bad one, is refused naming the field."""
    assert parse_swarm({"arrival_rate": "500"}).arrival == Schedule(500)
    assert parse_swarm({"stages": "30s:100,2m:500,30s:0"}).arrival == parse_stages(
        "30s:100,2m:500,30s:0"
    )
    assert parse_swarm({"user_count": "3"}).arrival is None
    for form, field in (
        ({"arrival_rate": "0"}, "arrival_rate"),
        ({"stages": "30s"}, "stages"),
        ({"arrival_rate": "5", "stages": "1s:1"}, "stages"),
        ({"arrival_rate": "5", "shape_class": "Steps"}, "shape_class"),
    ):
        with pytest.raises(FieldError) as caught:
            parse_swarm(form)
        assert caught.value.field == field


def test_the_command_line_takes_arrival_rate_or_stages_not_both() -> None:
    """--arrival-rate and --stages become the master's schedule; both is a usage error."""
    assert arrival_schedule("250", None) == Schedule(250)
    assert arrival_schedule(None, "10s:5") == Schedule(0, ((10, 5),))
    assert arrival_schedule(None, None) is None
    with pytest.raises(ConfigError, match="not both"):
        arrival_schedule("1", "1s:1")
    with pytest.raises(ConfigError, match="--stages"):
        arrival_schedule(None, "1s")
