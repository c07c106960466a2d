"""User dispatch: how many users of each class run on each worker.

Responsibility: the master's pure placement policy. :func:`class_targets` splits a total
into per-class counts, :func:`worker_order` sorts workers the way Locust does so users
spread across hosts first, and :func:`distribute` turns the current placement and new
per-class targets into the next absolute placement ``{worker: {class: n}}``, moving as few
users as possible. Nothing here does I/O, sleeps or reads a clock.

Imports: the standard library only.
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

_MARK_EVERY = 64  # prefix counts are stored every this many picks of an interleaving period
_UNIT_TAKES = 8  # below this many units, taking one at a time beats the threshold search


@dataclass(frozen=True, slots=True)
class UserClassSpec:
    """A user class as dispatch sees it: its name, weight and optional fixed count.

    A class with ``fixed_count > 0`` always gets that many users (while the total allows)
    and ignores its weight, as in Locust.
    """

    name: str
    weight: int = 1
    fixed_count: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        for field in ("weight", "fixed_count"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{field} of {self.name!r} must be an integer >= 0, got {value!r}")


def class_targets(total: int, classes: Sequence[UserClassSpec]) -> dict[str, int]:
    """Split ``total`` users into per-class counts, keyed in class order.

    Fixed-count classes are served first, in class order, each capped by what is left.
    The rest is split by weight as the first N picks of a deterministic interleaving
    (the quota method: every class stays strictly within one user of its exact share,
    and growing the total never shrinks a class). If no class has a positive weight,
    users beyond the fixed counts are not placed, so the sum can be less than ``total``.
    The cost does not grow with ``total``: O(classes) per call, after a one-off
    O(W log classes) per weight set (W = sum of weights / their gcd), which is cached.
    """
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise ValueError(f"total must be an integer >= 0, got {total!r}")
    names = [spec.name for spec in classes]
    if len(set(names)) != len(names):
        raise ValueError(f"class names must be unique, got {names!r}")
    result = dict.fromkeys(names, 0)
    left = total
    for spec in classes:
        if spec.fixed_count:
            result[spec.name] = min(spec.fixed_count, left)
            left -= result[spec.name]
    weighted = [spec for spec in classes if not spec.fixed_count and spec.weight > 0]
    if weighted and left:
        counts = _interleave_counts(tuple(spec.weight for spec in weighted), left)
        for spec, count in zip(weighted, counts, strict=True):
            result[spec.name] = count
    return result


def _interleave_counts(weights: tuple[int, ...], picks: int) -> list[int]:
    """Counts per weight after the first ``picks`` picks of the periodic interleaving."""
    divisor = math.gcd(*weights)
    reduced = tuple(weight // divisor for weight in weights)
    rounds, rest = divmod(picks, sum(reduced))
    prefix = _period(reduced).prefix(rest)
    return [rounds * weight + extra for weight, extra in zip(reduced, prefix, strict=True)]


class _Period:
    """One period (sum of weights picks) of the quota-method interleaving, with prefix marks.

    Pick ``n`` (1-based) gives a user to the class whose next user has the earliest
    deadline (the first pick at which its exact share reaches that user, ties by class
    order) among classes whose exact share already exceeds their count. This is earliest
    deadline first over unit jobs, so no class ever falls a whole user behind or ahead of
    its share; after a full period every class holds exactly its weight, so it repeats.
    """

    def __init__(self, weights: tuple[int, ...]) -> None:
        period = sum(weights)
        counts = [0] * len(weights)
        waiting = [(1, index) for index in range(len(weights))]  # (release pick, class)
        ready: list[tuple[int, int]] = []  # (deadline pick, class)
        self.order = array("I")
        self.marks: list[tuple[int, ...]] = []
        for pick in range(1, period + 1):
            if (pick - 1) % _MARK_EVERY == 0:
                self.marks.append(tuple(counts))
            while waiting and waiting[0][0] <= pick:
                _, index = heapq.heappop(waiting)
                due = -(-(counts[index] + 1) * period // weights[index])
                heapq.heappush(ready, (due, index))
            _, index = heapq.heappop(ready)
            self.order.append(index)
            counts[index] += 1
            if counts[index] < weights[index]:
                heapq.heappush(waiting, (counts[index] * period // weights[index] + 1, index))

    def prefix(self, picks: int) -> list[int]:
        """Counts per class after the first ``picks`` picks (``picks`` < the period)."""
        block = picks // _MARK_EVERY
        counts = list(self.marks[block])
        for index in self.order[block * _MARK_EVERY : picks]:
            counts[index] += 1
        return counts


@lru_cache(maxsize=32)
def _period(weights: tuple[int, ...]) -> _Period:
    """Build (once per weight tuple) the interleaving period for ``weights``."""
    return _Period(weights)


def interleaving(weights: Sequence[int]) -> Sequence[int]:
    """One period of the quota-method interleaving of ``weights`` (each above 0, reduced by
    their gcd): for each pick, the index of the weight it goes to (see :class:`_Period`)."""
    divisor = math.gcd(*weights)
    return _period(tuple(weight // divisor for weight in weights)).order


def worker_order(worker_ids: Iterable[str]) -> list[str]:
    """Sort workers the way Locust places users: spread across hosts first.

    The host is the part of the id before the first ``_``. Each worker gets its index
    among its host's workers (sorted by id); the result is sorted by (that index, id).
    """
    ids = sorted(worker_ids)
    repeated = sorted({a for a, b in pairwise(ids) if a == b})
    if repeated:
        raise ValueError(f"worker ids must be unique, repeated: {repeated!r}")
    seen_on_host: defaultdict[str, int] = defaultdict(int)
    rank: dict[str, int] = {}
    for worker_id in ids:
        host = worker_id.split("_")[0]
        rank[worker_id] = seen_on_host[host]
        seen_on_host[host] += 1
    return sorted(ids, key=lambda worker_id: (rank[worker_id], worker_id))


def distribute(
    current: Mapping[str, Mapping[str, int]],
    workers: Sequence[str],
    targets: Mapping[str, int],
) -> dict[str, dict[str, int]]:
    """Return the next absolute placement ``{worker: {class: n}}`` for every worker.

    ``workers`` is the usable set, already in :func:`worker_order`; workers of
    ``current`` not in it are dropped and their users placed elsewhere. Every worker's
    dict lists every class (targets first, then classes only ``current`` knows, at 0).
    Per-class sums equal ``targets``; worker totals differ by at most one, the extra
    users going to workers that already hold more (ties by worker order). A worker loses
    users only when its total must shrink or a class must shrink, and removals and
    additions pick classes by how far the worker is above or below its proportional
    share of each class (ties by the class's global surplus or deficit, then class
    order). With no workers the result is empty. Cost O(workers x classes x log).
    """
    if len(set(workers)) != len(workers):
        raise ValueError("workers must be unique")
    for name, count in targets.items():
        if not isinstance(count, int) or count < 0:
            raise ValueError(f"target for {name!r} must be an integer >= 0, got {count!r}")
    classes = list(targets)
    known = set(classes)
    for worker in workers:
        for name in current.get(worker, {}):
            if name not in known:
                known.add(name)
                classes.append(name)
    if not workers:
        return {}
    held = [_row(current.get(worker, {}), classes, worker) for worker in workers]
    _Balancer(held, [targets.get(name, 0) for name in classes]).run()
    return {
        worker: dict(zip(classes, row, strict=True))
        for worker, row in zip(workers, held, strict=True)
    }


def changed_workers(
    old: Mapping[str, Mapping[str, int]], new: Mapping[str, Mapping[str, int]]
) -> list[str]:
    """Workers whose placement differs between ``old`` and ``new`` (missing counts as ``{}``).

    Workers of ``new`` come first, in its order, then workers only ``old`` has. Dicts are
    compared as they are, so ``{"A": 0}`` differs from ``{}``: keep the zeros that
    :func:`distribute` returns, so a worker told ``{"A": 0}`` knows to stop its A users.
    """
    changed = [w for w, counts in new.items() if dict(old.get(w, {})) != dict(counts)]
    changed += [w for w, counts in old.items() if w not in new and len(counts) > 0]
    return changed


def _row(counts: Mapping[str, int], classes: list[str], worker: str) -> list[int]:
    """One worker's current counts as a list in ``classes`` order, validated."""
    row = [counts.get(name, 0) for name in classes]
    if any(not isinstance(count, int) or count < 0 for count in row):
        raise ValueError(f"current counts of {worker!r} must be integers >= 0, got {counts!r}")
    return row


class _Balancer:
    """Rewrites a placement matrix in place: shed excess, shed class surplus, fill."""

    def __init__(self, held: list[list[int]], want: list[int]) -> None:
        self.held = held
        self.want = want
        self.total = sum(want)
        self.surplus = [
            sum(row[c] for row in held) - want[c] for c in range(len(want))
        ]  # negative: deficit
        self.sizes = self._sizes()

    def _sizes(self) -> list[int]:
        """Each worker's new total: equal shares, the remainder to the fullest workers."""
        count = len(self.held)
        base, extra = divmod(self.total, count)
        sizes = [base] * count
        fullest = sorted(range(count), key=lambda w: (-sum(self.held[w]), w))
        for worker in fullest[:extra]:
            sizes[worker] += 1
        return sizes

    def run(self) -> None:
        """Apply the three passes; afterwards every row sums to its size."""
        if self.total == 0:
            for row in self.held:
                row[:] = [0] * len(row)
            return
        self._shed_excess()
        for cls in range(len(self.want)):
            if self.surplus[cls] > 0:
                self._shed_class(cls)
        self._fill_all()

    def _above_share(self, worker: int) -> list[int]:
        """How far each class on ``worker`` is above its share, scaled by the total."""
        row, size = self.held[worker], self.sizes[worker]
        return [self.total * row[c] - size * self.want[c] for c in range(len(row))]

    def _shed_excess(self) -> None:
        """Cut every shrinking worker to its size, serving class surpluses where possible.

        First each such worker sheds users of classes in global surplus; augmenting
        paths then swap which worker sheds which class until no more surplus can be
        served (a maximum matching, so no user is removed needlessly); whatever a worker
        still has to shed comes from the classes it holds most above its share.
        """
        removed: dict[int, list[int]] = {}
        left: dict[int, int] = {}
        for worker, row in enumerate(self.held):
            excess = sum(row) - self.sizes[worker]
            if excess > 0:
                caps = [min(n, max(0, s)) for n, s in zip(row, self.surplus, strict=True)]
                removed[worker] = self._remove(worker, caps, min(excess, sum(caps)))
                left[worker] = excess - sum(removed[worker])
        while self._augment(removed, left):
            pass
        for worker, amount in left.items():
            self._remove(worker, list(self.held[worker]), amount)

    def _augment(self, removed: dict[int, list[int]], left: dict[int, int]) -> bool:
        """Find one path that lets a worker with cuts still to make serve a class surplus.

        Breadth-first over classes from those still in surplus: from class ``c``, a
        worker holding ``c`` either still has cuts to make (path found) or can shed
        ``c`` instead of a class it already shed, which then needs a new shedder.
        """
        sources = [c for c, surplus in enumerate(self.surplus) if surplus > 0]
        if not sources or not any(left.values()):
            return False
        parent: dict[int, tuple[int, int] | None] = dict.fromkeys(sources)
        queue = deque(sources)
        while queue:
            cls = queue.popleft()
            for worker, shed in removed.items():
                if self.held[worker][cls] <= 0:
                    continue
                if left[worker] > 0:
                    self._apply_path(parent, cls, worker, removed, left)
                    return True
                for other, count in enumerate(shed):
                    if count > 0 and other not in parent:
                        parent[other] = (cls, worker)
                        queue.append(other)
        return False

    def _apply_path(
        self,
        parent: dict[int, tuple[int, int] | None],
        cls: int,
        worker: int,
        removed: dict[int, list[int]],
        left: dict[int, int],
    ) -> None:
        """Push as many users as the path allows along an augmenting path."""
        hops: list[tuple[int, int, int]] = []  # (class now shed, worker, class restored)
        amount = min(left[worker], self.held[worker][cls])
        step = cls
        while (link := parent[step]) is not None:
            previous, hop = link
            amount = min(amount, self.held[hop][previous], removed[hop][step])
            hops.append((previous, hop, step))
            step = previous
        amount = min(amount, self.surplus[step])
        self.held[worker][cls] -= amount
        removed[worker][cls] += amount
        left[worker] -= amount
        for shed, hop, restored in hops:
            self.held[hop][shed] -= amount
            removed[hop][shed] += amount
            self.held[hop][restored] += amount
            removed[hop][restored] -= amount
        self.surplus[step] -= amount

    def _remove(self, worker: int, caps: list[int], amount: int) -> list[int]:
        """Remove ``amount`` users from ``worker``, most-above-share classes first."""
        row = self.held[worker]
        if amount <= 0:
            return [0] * len(row)
        rank = sorted(range(len(row)), key=lambda c: (-self.surplus[c], c))
        taken = _take(self._above_share(worker), self.total, caps, amount, rank)
        for cls, count in enumerate(taken):
            row[cls] -= count
            self.surplus[cls] -= count
        return taken

    def _shed_class(self, cls: int) -> None:
        """Remove a class's remaining surplus from the workers most above their share."""
        levels = [
            self.total * row[cls] - size * self.want[cls]
            for row, size in zip(self.held, self.sizes, strict=True)
        ]
        caps = [row[cls] for row in self.held]
        taken = _take(levels, self.total, caps, self.surplus[cls], range(len(self.held)))
        for row, count in zip(self.held, taken, strict=True):
            row[cls] -= count
        self.surplus[cls] = 0

    def _fill_all(self) -> None:
        """Top every worker up to its size, spreading each class along the worker order.

        A worker takes the classes it is most below its share of, plus the rounding
        carried from earlier workers (error diffusion), so a class too small to be a
        whole user on any one worker still lands on workers spread along the order
        instead of piling onto the last ones.
        """
        carry = [0] * len(self.want)
        for worker, row in enumerate(self.held):
            below = [-level for level in self._above_share(worker)]
            room = self.sizes[worker] - sum(row)
            if room > 0:
                levels = [level + extra for level, extra in zip(below, carry, strict=True)]
                deficit = [-surplus for surplus in self.surplus]
                rank = sorted(range(len(row)), key=lambda c: (-deficit[c], c))
                taken = _take(levels, self.total, deficit, room, rank)
                for cls, count in enumerate(taken):
                    row[cls] += count
                    self.surplus[cls] += count
                    below[cls] -= count * self.total
            carry = [extra + level for extra, level in zip(carry, below, strict=True)]


def _take(
    levels: Sequence[int], step: int, caps: Sequence[int], amount: int, rank: Iterable[int]
) -> list[int]:
    """Take ``amount`` units, one at a time, from the index with the highest level.

    Each unit lowers its index's level by ``step``; index ``i`` gives at most
    ``caps[i]`` units; equal levels go to the index earlier in ``rank``. Computed in
    O(len x log range) by finding the level of the last unit taken, not unit by unit.
    """
    order = list(rank)
    lv = [levels[i] for i in order]
    cp = [max(0, caps[i]) for i in order]
    if amount > sum(cp):
        raise RuntimeError(f"dispatch bug: cannot take {amount} units from caps {list(caps)!r}")
    got = _take_ordered(lv, step, cp, amount)
    result = [0] * len(levels)
    for position, index in enumerate(order):
        result[index] = got[position]
    return result


def _take_ordered(levels: list[int], step: int, caps: list[int], amount: int) -> list[int]:
    """:func:`_take` with ties broken by position."""
    if amount <= 0:
        return [0] * len(levels)
    live = [i for i, cap in enumerate(caps) if cap > 0]
    if amount <= _UNIT_TAKES:
        return _take_units(levels, step, caps, amount, live)

    def at_least(threshold: int) -> int:
        return sum(min(caps[i], max(0, (levels[i] - threshold) // step + 1)) for i in live)

    high = max(levels[i] for i in live)
    low = min(levels[i] - (min(caps[i], amount) - 1) * step for i in live)
    while low < high:  # largest threshold with at_least(threshold) >= amount
        middle = (low + high + 1) // 2
        if at_least(middle) >= amount:
            low = middle
        else:
            high = middle - 1
    got = [
        min(cap, max(0, (level - low - 1) // step + 1))
        for level, cap in zip(levels, caps, strict=True)
    ]
    short = amount - sum(got)
    for i in live:
        if short and got[i] < caps[i] and levels[i] - got[i] * step == low:
            got[i] += 1
            short -= 1
    return got


def _take_units(
    levels: list[int], step: int, caps: list[int], amount: int, live: list[int]
) -> list[int]:
    """:func:`_take_ordered` one unit at a time, for small amounts."""
    got = [0] * len(levels)
    for _ in range(amount):
        best, best_level = -1, 0
        for i in live:
            if got[i] < caps[i]:
                level = levels[i] - got[i] * step
                if best < 0 or level > best_level:
                    best, best_level = i, level
        got[best] += 1
    return got
