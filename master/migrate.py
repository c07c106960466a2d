"""Moving users toward a new placement a few at a time (a worker joined a running test).

Responsibility: given the current placement ``{worker: {class: n}}`` and the placement to
reach, :func:`move_toward` returns the placement after moving at most ``budget`` users:
each move takes one user of a class from a worker above its target for that class and
gives it to a worker below it. Called once per step of the spawn rate, it moves a
joining worker's share over at that rate, never changing the total. Pure.

Imports: the standard library only.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping

Placement = Mapping[str, Mapping[str, int]]


def move_toward(current: Placement, target: Placement, budget: int) -> dict[str, dict[str, int]]:
    """The placement after moving at most ``budget`` users from ``current`` to ``target``.

    Workers missing from ``target`` keep what they have; classes are moved in the order
    ``target`` lists them, each move from the worker with the largest surplus to the one
    with the largest deficit (ties by worker order). With budget >= the number of users
    out of place, the result equals ``target`` wherever the per-class totals agree.
    Cost O(budget x log workers) per class, after one pass over the workers.
    """
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    workers = list(dict.fromkeys([*target, *current]))
    result = {w: dict(current.get(w, {})) for w in workers}
    for worker in target:
        for cls in target[worker]:
            result[worker].setdefault(cls, 0)
    classes = list(dict.fromkeys(c for w in workers for c in result[w]))
    order = {w: i for i, w in enumerate(workers)}
    for cls in classes:
        if budget == 0:
            break
        diff = {w: result[w].get(cls, 0) - target[w].get(cls, 0) for w in target}
        # Heaps of (-surplus, order) and (-deficit, order): largest first, ties by order.
        donors = [(-d, order[w], w) for w, d in diff.items() if d > 0]
        takers = [(d, order[w], w) for w, d in diff.items() if d < 0]
        heapq.heapify(donors)
        heapq.heapify(takers)
        while budget > 0 and donors and takers:
            surplus, i, donor = heapq.heappop(donors)
            deficit, j, taker = heapq.heappop(takers)
            result[donor][cls] -= 1
            result[taker][cls] = result[taker].get(cls, 0) + 1
            budget -= 1
            if surplus + 1 < 0:
                heapq.heappush(donors, (surplus + 1, i, donor))
            if deficit + 1 < 0:
                heapq.heappush(takers, (deficit + 1, j, taker))
    return result


def users_out_of_place(current: Placement, target: Placement) -> int:
    """How many users ``move_toward`` still has to move to reach ``target``."""
    return sum(
        max(0, target[w].get(cls, 0) - current.get(w, {}).get(cls, 0))
        for w in target
        for cls in target[w]
    )
