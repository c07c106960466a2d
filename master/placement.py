"""Placement: which worker runs how many users of each class, and the moves toward it.

Responsibility: the current distribution ``{worker_id: {class: n}}`` of a run, the share
last sent to each worker (so an unchanged share is not sent again), the users' total, the
classes chosen, a migration in progress (a worker joined a running test: its share moves
over at the spawn rate) and the missing horde workers whose lease is running out (their
users move only once the lease has surely ended). The coordinator builds the ``spawn``
messages from what :meth:`Placement.place` returns. Pure: every method takes ``now``.

Imports: the standard library and horde.master.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from horde.master.dispatch import UserClassSpec, class_targets, distribute, worker_order
from horde.master.migrate import move_toward, users_out_of_place

Share = dict[str, int]
SpawnOrder = tuple[str, Share, float]
"""A share to send: (worker_id, users per class, the spawn's timestamp)."""


class Placement:
    """The distribution of one run's users over the workers, and the moves toward it."""

    def __init__(self, user_classes: Sequence[UserClassSpec]) -> None:
        self.user_classes = tuple(user_classes)
        self.distribution: dict[str, Share] = {}
        self.applied_total = 0
        """Users placed (the ramp's current step)."""
        self.selected_classes: tuple[str, ...] | None = None
        """The classes the run uses (None: all)."""
        self.migrate_at: float | None = None
        """When the next migration step is due (None: no migration under way)."""
        self.lease_wait: dict[str, float] = {}
        """Missing horde workers holding users -> when their lease has surely run out."""
        self._sent: dict[str, tuple[Mapping[str, int], str]] = {}
        self._spawn_ts = 0.0

    def full(self, workers: Iterable[str], total: int) -> dict[str, Share]:
        """Where ``total`` users belong on ``workers`` (moving as few as possible)."""
        chosen = self.selected_classes
        specs = [s for s in self.user_classes if chosen is None or s.name in chosen]
        targets = dict.fromkeys((s.name for s in self.user_classes), 0)
        targets.update(class_targets(total, specs))
        return distribute(self.distribution, worker_order(workers), targets)

    def apply(self, workers: Iterable[str], total: int, host: str, now: float) -> list[SpawnOrder]:
        """Place ``total`` users on ``workers`` at once (ending a migration)."""
        self.migrate_at = None
        return self.place(self.full(workers, total), total, host, now)

    def migrate(
        self, workers: Iterable[str], rate: float, host: str, now: float
    ) -> list[SpawnOrder]:
        """Move the next ``max(1, floor(rate))`` users toward the balanced placement."""
        full = self.full(workers, self.applied_total)
        step = max(1, int(rate))
        moved = move_toward(self.distribution, full, step)
        moved = {w: counts for w, counts in moved.items() if w in full}
        orders = self.place(moved, self.applied_total, host, now)
        self.migrate_at = None if users_out_of_place(moved, full) == 0 else now + step / rate
        return orders

    def place(self, new: dict[str, Share], total: int, host: str, now: float) -> list[SpawnOrder]:
        """Adopt placement ``new``; return the shares that changed, to be sent."""
        orders = []
        for worker, counts in new.items():
            if self._sent.get(worker) == (counts, host):
                continue
            self._spawn_ts = max(now, self._spawn_ts + 1e-6)
            orders.append((worker, counts, self._spawn_ts))
            self._sent[worker] = (counts, host)
        self.distribution = new
        self.applied_total = total
        return orders

    def unsent(self, worker_id: str) -> None:
        """``worker_id`` starts over (it registered again): its next share is sent."""
        self._sent.pop(worker_id, None)

    def forget(self, worker_id: str) -> bool:
        """Take ``worker_id`` out of the placement; return whether it held users."""
        self._sent.pop(worker_id, None)
        self.lease_wait.pop(worker_id, None)
        return self.distribution.pop(worker_id, None) is not None

    def clear(self) -> None:
        """No users anywhere (the test stopped): nothing placed, sent or moving."""
        self.distribution = {}
        self._sent = {}
        self.applied_total = 0
        self.migrate_at = None

    def new_run(self) -> None:
        """A new run: nothing placed, and every class chosen until the run says otherwise."""
        self.clear()
        self.selected_classes = None
