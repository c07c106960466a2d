"""The master's placement policy: class targets, worker order and the distribution."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from horde.master.dispatch import (
    UserClassSpec,
    _take,
    changed_workers,
    class_targets,
    distribute,
    worker_order,
)

Placement = Mapping[str, Mapping[str, int]]


def specs(*weights: int) -> list[UserClassSpec]:
    """Classes A, B, C... with the given weights."""
    return [UserClassSpec("ABCDEFGH"[i], weight) for i, weight in enumerate(weights)]


def picks(weights: tuple[int, ...], count: int) -> str:
    """The interleaving as a string: which class each successive user goes to."""
    classes = specs(*weights)
    sequence = ""
    previous = class_targets(0, classes)
    for total in range(1, count + 1):
        now = class_targets(total, classes)
        (grown,) = [name for name in now if now[name] == previous[name] + 1]
        sequence += grown
        previous = now
    return sequence


def check_invariants(result: Placement, workers: list[str], targets: Mapping[str, int]) -> None:
    """Per-class sums equal the targets and worker totals differ by at most one."""
    assert list(result) == workers
    for name, want in targets.items():
        assert sum(counts[name] for counts in result.values()) == want
    totals = [sum(counts.values()) for counts in result.values()]
    assert not totals or max(totals) - min(totals) <= 1


def kept(old: Placement, new: Placement) -> int:
    """Users that stay where they were."""
    return sum(
        min(old.get(worker, {}).get(name, 0), count)
        for worker, counts in new.items()
        for name, count in counts.items()
    )


def most_keepable(old: Placement, new: Placement, targets: Mapping[str, int]) -> int:
    """Max flow: the most users any placement with ``new``'s worker totals could keep."""
    workers, names = list(new), list(targets)
    nodes = 2 + len(names) + len(workers)
    cap = [[0] * nodes for _ in range(nodes)]
    for c, name in enumerate(names):
        cap[0][2 + c] = targets[name]
        for w, worker in enumerate(workers):
            cap[2 + c][2 + len(names) + w] = old.get(worker, {}).get(name, 0)
    for w, worker in enumerate(workers):
        cap[2 + len(names) + w][1] = sum(new[worker].values())
    flow = 0
    while True:
        parent = [-1] * nodes
        parent[0] = 0
        queue = deque([0])
        while queue:
            u = queue.popleft()
            for v in range(nodes):
                if parent[v] < 0 and cap[u][v] > 0:
                    parent[v] = u
                    queue.append(v)
        if parent[1] < 0:
            return flow
        path = _path(parent)
        push = min(cap[parent[v]][v] for v in path)
        for v in path:
            cap[parent[v]][v] -= push
            cap[v][parent[v]] += push
        flow += push


def _path(parent: list[int]) -> list[int]:
    """Nodes of the augmenting path ending at the sink, sink first."""
    nodes, v = [], 1
    while v != 0:
        nodes.append(v)
        v = parent[v]
    return nodes


# --- class_targets ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weights", "sequence"),
    [
        ((1,), "AAAA"),
        ((1, 1), "ABABAB"),
        ((1, 1, 1), "ABCABC"),
        ((3, 1), "AAABAAAB"),
        ((5, 1), "AAAAABAAAAAB"),
        ((3, 2, 1), "ABABACABABAC"),
        ((2, 4), "BABBAB"),
    ],
)
def test_class_targets_follow_a_fixed_interleaving(weights: tuple[int, ...], sequence: str) -> None:
    """Each extra user goes to one class, in a sequence that repeats every sum(weights)."""
    assert picks(weights, len(sequence)) == sequence


@pytest.mark.parametrize(
    ("total", "expected"),
    [
        (0, {"A": 0, "B": 0, "C": 0}),
        (1, {"A": 1, "B": 0, "C": 0}),
        (6, {"A": 3, "B": 2, "C": 1}),
        (10, {"A": 5, "B": 4, "C": 1}),
        (1_000_000, {"A": 500_000, "B": 333_334, "C": 166_666}),
        (10**15 + 3, {"A": 5 * 10**14 + 2, "B": 333_333_333_333_334, "C": 166_666_666_666_667}),
    ],
)
def test_class_targets_split_any_total_by_weight(total: int, expected: dict[str, int]) -> None:
    """Totals of any size split 3:2:1 exactly, computed without iterating over users."""
    assert class_targets(total, specs(3, 2, 1)) == expected


@pytest.mark.parametrize(
    ("total", "expected"),
    [
        (0, {"A": 0, "B": 0, "C": 0}),
        (2, {"A": 2, "B": 0, "C": 0}),
        (4, {"A": 3, "B": 0, "C": 1}),
        (5, {"A": 3, "B": 0, "C": 2}),
        (10, {"A": 3, "B": 5, "C": 2}),
    ],
)
def test_fixed_counts_come_first_in_class_order(total: int, expected: dict[str, int]) -> None:
    """Fixed-count classes are served in class order, capped by the total; the rest weighs."""
    classes = [UserClassSpec("A", 1, 3), UserClassSpec("B", 1), UserClassSpec("C", 9, 2)]
    assert class_targets(total, classes) == expected


def test_classes_without_weight_get_nobody() -> None:
    """Zero-weight classes get no user, and with no weighted class the rest is unplaced."""
    assert class_targets(5, [UserClassSpec("A", 0), UserClassSpec("B", 2)]) == {"A": 0, "B": 5}
    only_fixed = [UserClassSpec("A", 1, 2), UserClassSpec("B", 0)]
    assert class_targets(5, only_fixed) == {"A": 2, "B": 0}


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: class_targets(-1, specs(1)), "total"),
        (lambda: class_targets(1, [UserClassSpec("A"), UserClassSpec("A")]), "unique"),
        (lambda: UserClassSpec("A", -1), "weight"),
        (lambda: UserClassSpec("A", 1, -2), "fixed_count"),
        (lambda: UserClassSpec("", 1), "name"),
    ],
)
def test_class_targets_reject_bad_input(call: object, field: str) -> None:
    """Bad totals and class specs raise ValueError naming the problem."""
    with pytest.raises(ValueError, match=field):
        call()  # type: ignore[operator]


@settings(max_examples=150, deadline=None)
@given(
    weights=st.lists(st.integers(1, 40), min_size=1, max_size=7),
    total=st.integers(0, 2_000),
)
def test_class_targets_stay_within_one_user_of_the_exact_share(
    weights: list[int], total: int
) -> None:
    """Counts sum to the total, never drift a whole user from the share and never shrink."""
    classes = specs(*weights)
    now, then = class_targets(total, classes), class_targets(total + 1, classes)
    assert sum(now.values()) == total
    for spec, weight in zip(classes, weights, strict=True):
        assert abs(now[spec.name] - Fraction(total * weight, sum(weights))) < 1
        assert then[spec.name] >= now[spec.name]


# --- worker_order -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        ([], []),
        (["w3", "w1", "w2"], ["w1", "w2", "w3"]),
        (["b_2", "a_1", "a_2", "b_1", "c_1"], ["a_1", "b_1", "c_1", "a_2", "b_2"]),
        (["a_x", "a_y", "a_z", "b_x"], ["a_x", "b_x", "a_y", "a_z"]),
    ],
)
def test_worker_order_spreads_across_hosts_first(ids: list[str], expected: list[str]) -> None:
    """Workers sort by their index within their host, then by id, as Locust does."""
    assert worker_order(iter(ids)) == expected


def test_worker_order_rejects_duplicates() -> None:
    """A worker id listed twice is a caller bug."""
    with pytest.raises(ValueError, match="unique"):
        worker_order(["a_1", "a_1"])


# --- distribute -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("workers", "targets", "expected"),
    [
        (["w1", "w2", "w3"], {"A": 10}, {"w1": {"A": 4}, "w2": {"A": 3}, "w3": {"A": 3}}),
        (["w1", "w2"], {"A": 6, "B": 2}, {"w1": {"A": 3, "B": 1}, "w2": {"A": 3, "B": 1}}),
        (
            ["w1", "w2", "w3"],
            {"A": 1, "B": 1, "C": 1},
            {
                "w1": {"A": 1, "B": 0, "C": 0},
                "w2": {"A": 0, "B": 1, "C": 0},
                "w3": {"A": 0, "B": 0, "C": 1},
            },
        ),
        (
            ["a_1", "b_1", "a_2", "b_2"],
            {"A": 2},
            {"a_1": {"A": 1}, "b_1": {"A": 1}, "a_2": {"A": 0}, "b_2": {"A": 0}},
        ),
        (["w1", "w2"], {"A": 0, "B": 0}, {"w1": {"A": 0, "B": 0}, "w2": {"A": 0, "B": 0}}),
        ([], {"A": 5}, {}),
    ],
)
def test_distribute_from_empty(
    workers: list[str], targets: dict[str, int], expected: dict[str, dict[str, int]]
) -> None:
    """A fresh placement is even, mixes classes per worker and follows the worker order."""
    assert distribute({}, workers, targets) == expected


def test_fixed_count_users_are_placed_like_any_other() -> None:
    """Fixed-count targets flow through distribute unchanged."""
    classes = [UserClassSpec("A", 1, 1), UserClassSpec("B", 1)]
    result = distribute({}, ["w1", "w2"], class_targets(5, classes))
    assert result == {"w1": {"A": 1, "B": 2}, "w2": {"A": 0, "B": 2}}


CURRENT = {"w1": {"A": 3, "B": 1}, "w2": {"A": 2, "B": 1}, "w3": {"A": 2, "B": 1}}


@pytest.mark.parametrize(
    ("workers", "targets", "expected"),
    [
        (  # w2 leaves: its 3 users land on the survivors, who keep all of theirs
            ["w1", "w3"],
            {"A": 7, "B": 3},
            {"w1": {"A": 4, "B": 1}, "w3": {"A": 3, "B": 2}},
        ),
        (  # w4 joins: one user each from w1 (fullest) and w3; w2 keeps its 3
            ["w1", "w2", "w3", "w4"],
            {"A": 7, "B": 3},
            {
                "w1": {"A": 2, "B": 1},
                "w2": {"A": 2, "B": 1},
                "w3": {"A": 1, "B": 1},
                "w4": {"A": 2, "B": 0},
            },
        ),
        (  # scale down: only removals, from the class most above each worker's share
            ["w1", "w2", "w3"],
            {"A": 3, "B": 1},
            {"w1": {"A": 1, "B": 1}, "w2": {"A": 1, "B": 0}, "w3": {"A": 1, "B": 0}},
        ),
        (  # scale up: only additions; the fullest worker takes the extra user
            ["w1", "w2", "w3"],
            {"A": 9, "B": 4},
            {"w1": {"A": 3, "B": 2}, "w2": {"A": 3, "B": 1}, "w3": {"A": 3, "B": 1}},
        ),
        (  # a class dropped from the targets is kept at zero so workers stop it
            ["w1", "w2", "w3"],
            {"B": 3},
            {"w1": {"B": 1, "A": 0}, "w2": {"B": 1, "A": 0}, "w3": {"B": 1, "A": 0}},
        ),
    ],
)
def test_distribute_moves_only_the_delta(
    workers: list[str], targets: dict[str, int], expected: dict[str, dict[str, int]]
) -> None:
    """Joins, leaves and rescaling move the fewest users and keep the rest in place."""
    result = distribute(CURRENT, workers, targets)
    assert result == expected
    assert kept(CURRENT, result) == most_keepable(CURRENT, result, targets)


def test_shrinking_workers_shed_the_classes_that_must_shrink() -> None:
    """When totals and classes both shrink, cuts are matched to surplus classes (no swaps)."""
    current = {
        "w0": {"A": 0, "B": 1, "C": 1, "D": 2},
        "w1": {"A": 1, "B": 1, "C": 1, "D": 1},
        "w2": {"A": 1, "B": 0, "C": 1, "D": 2},
        "w3": {"A": 0, "B": 2, "C": 0, "D": 2},
        "w4": {"A": 1, "B": 0, "C": 1, "D": 1},
    }
    targets = {"A": 2, "B": 4, "C": 3, "D": 6}
    result = distribute(current, list(current), targets)
    check_invariants(result, list(current), targets)
    gained = [w for w in current for name in targets if result[w][name] > current[w][name]]
    assert gained == []
    assert kept(current, result) == 15


@pytest.mark.parametrize(
    ("current", "targets", "expected"),
    [
        (  # new weights, same total: each worker swaps one A for one B
            {"w1": {"A": 2}, "w2": {"A": 2}},
            {"A": 2, "B": 2},
            {"w1": {"A": 1, "B": 1}, "w2": {"A": 1, "B": 1}},
        ),
        (  # w1 must shrink but only B is in surplus, and only w2 holds B
            {"w1": {"A": 3}, "w2": {"B": 2}},
            {"A": 3, "B": 1},
            {"w1": {"A": 2, "B": 0}, "w2": {"A": 1, "B": 1}},
        ),
    ],
)
def test_class_changes_move_the_fewest_users(
    current: dict[str, dict[str, int]],
    targets: dict[str, int],
    expected: dict[str, dict[str, int]],
) -> None:
    """When a class must shrink where no total does, the cheapest swaps are made."""
    result = distribute(current, list(current), targets)
    assert result == expected
    assert kept(current, result) == most_keepable(current, result, targets)


def test_distribute_places_a_million_users_on_five_thousand_workers() -> None:
    """A large placement is computed in one go and satisfies every invariant."""
    workers = worker_order(f"host{i % 50}_{i:04d}" for i in range(5_000))
    targets = class_targets(1_000_000, specs(3, 1, 1))
    result = distribute({}, workers, targets)
    check_invariants(result, workers, targets)
    assert result[workers[0]] == {"A": 120, "B": 40, "C": 40}
    grown = distribute(result, workers, class_targets(1_000_100, specs(3, 1, 1)))
    assert sorted(changed_workers(result, grown)) == sorted(workers[:100])


def test_a_class_too_small_for_one_worker_is_spread_along_the_order() -> None:
    """Three users of a rare class land on three different workers, not all on the last."""
    workers = [f"w{i:02d}" for i in range(30)]
    result = distribute({}, workers, {"A": 3_000, "B": 3})
    assert [worker for worker in workers if result[worker]["B"]] == ["w04", "w14", "w24"]


@pytest.mark.parametrize(
    ("current", "workers", "targets", "message"),
    [
        ({}, ["w1", "w1"], {"A": 1}, "unique"),
        ({}, ["w1"], {"A": -1}, "target"),
        ({"w1": {"A": -2}}, ["w1"], {"A": 1}, "current"),
    ],
)
def test_distribute_rejects_bad_input(
    current: dict[str, dict[str, int]], workers: list[str], targets: dict[str, int], message: str
) -> None:
    """Duplicate workers and negative counts raise ValueError."""
    with pytest.raises(ValueError, match=message):
        distribute(current, workers, targets)


def test_changed_workers_lists_differences_with_missing_as_empty() -> None:
    """New workers' changes come first, then workers only the old placement had."""
    old = {"a": {"A": 1}, "b": {"A": 0}, "gone": {"A": 2}, "empty": {}}
    new = {"a": {"A": 1}, "b": {}, "c": {"A": 0}}
    assert changed_workers(old, new) == ["b", "c", "gone"]
    assert changed_workers(new, new) == []


placements = st.integers(1, 5).flatmap(
    lambda classes: st.tuples(
        st.lists(st.integers(1, 6), min_size=classes, max_size=classes),
        st.lists(st.integers(0, 60), min_size=1, max_size=5),
        st.integers(1, 7),
    )
)


@settings(max_examples=150, deadline=None)
@given(case=placements, joined=st.integers(0, 2), left=st.integers(0, 2))
def test_distribute_invariants_hold_through_any_sequence(
    case: tuple[list[int], list[int], int], joined: int, left: int
) -> None:
    """Sums, the one-user spread and minimal movement hold as totals and workers change."""
    weights, totals, worker_count = case
    classes = specs(*weights)
    workers = [f"w{i}" for i in range(worker_count)]
    current: dict[str, dict[str, int]] = {}
    for step, total in enumerate(totals):
        if step == len(totals) - 1:
            workers = workers[left:] + [f"new{i}" for i in range(joined)] or ["only"]
        targets = class_targets(total, classes)
        result = distribute(current, workers, targets)
        check_invariants(result, workers, targets)
        assert kept(current, result) == most_keepable(current, result, targets)
        current = result


@settings(max_examples=150, deadline=None)
@given(case=placements, growth=st.integers(0, 40))
def test_growing_the_total_never_takes_a_user_away(
    case: tuple[list[int], list[int], int], growth: int
) -> None:
    """When only the total grows, every worker keeps every user it had."""
    weights, totals, worker_count = case
    classes = specs(*weights)
    workers = [f"w{i}" for i in range(worker_count)]
    current: dict[str, dict[str, int]] = {}
    for total in totals:
        current = distribute(current, workers, class_targets(total, classes))
    grown = distribute(current, workers, class_targets(totals[-1] + growth, classes))
    for worker in workers:
        for name, count in current[worker].items():
            assert grown[worker][name] >= count


def take_one_by_one(
    levels: list[int], step: int, caps: list[int], amount: int, rank: list[int]
) -> list[int]:
    """The unit-at-a-time definition that the fast ``_take`` must reproduce."""
    position = {index: place for place, index in enumerate(rank)}
    got = [0] * len(levels)
    for _ in range(amount):
        candidates = [i for i in range(len(levels)) if got[i] < caps[i]]
        best = max(candidates, key=lambda i: (levels[i] - got[i] * step, -position[i]))
        got[best] += 1
    return got


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(-500, 500), st.integers(0, 30)), min_size=1, max_size=6),
    step=st.integers(1, 50),
    data=st.data(),
)
def test_batched_take_matches_taking_one_unit_at_a_time(
    rows: list[tuple[int, int]], step: int, data: st.DataObject
) -> None:
    """The threshold search behind every removal and fill equals the one-by-one greedy."""
    levels, caps = [level for level, _ in rows], [cap for _, cap in rows]
    amount = data.draw(st.integers(0, sum(caps)))
    rank = data.draw(st.permutations(range(len(rows))))
    assert _take(levels, step, caps, amount, rank) == take_one_by_one(
        levels, step, caps, amount, rank
    )
    with pytest.raises(RuntimeError):
        _take(levels, step, caps, sum(caps) + 1, rank)
