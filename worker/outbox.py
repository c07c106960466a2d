"""The worker's unacknowledged horde stats deltas: window, acks, resends, frame-size splits.

Responsibility: :class:`Outbox` keeps the deltas of the current run that the master has not
acknowledged yet, in ``seq`` order, and decides when to send what:

- **Window.** A new delta may be taken from the recorder only while fewer than ``window``
  are in flight and the link is registered. Otherwise nothing is taken: the recorder keeps
  accumulating, so data never sent coalesces for free into the next delta, and memory stays
  bounded. A final delta (``stop``, ``quit``, SIGTERM, lease expiry) may go beyond the
  window, up to twice it.
- **Acks.** ``horde.stats_ack(run, seq)`` is cumulative: every delta up to ``seq`` is
  dropped. Acks of another run change nothing.
- **Resends.** Every unacknowledged delta is sent again, in order and with unchanged
  ``seq``, after a re-registration (:meth:`Outbox.resend_all`) and when no ack has made
  progress for ``resend_after`` seconds (:meth:`Outbox.resend_due`). The master merges each
  ``(run, worker, seq)`` once and in order, so duplicates are harmless.
- **Names.** A master forgets a worker's name table when the worker registers again, so a
  resend after a re-registration defines every id in the first resent delta that uses it.
- **Frame size.** No delta exceeds ``max_frame`` bytes, even with every name it could ever
  carry: an oversized one is split into consecutive ``seq`` numbers (entries, errors and
  corrected items spread greedily; names travel with the part holding their entry). An
  item too large for any frame on its own is dropped and counted in
  :attr:`Outbox.dropped_items`.
- **Runs.** A new run id clears the outbox; numbering restarts at 1.

Pure: the caller passes ``now`` (monotonic seconds) and a ``size`` function giving a
delta's encoded frame size; nothing here reads a clock or does I/O.

Imports: the standard library, msgpack and horde.protocol.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import msgpack

from horde.protocol.corrected import CORRECTED_KEY
from horde.protocol.stats import EntryDelta, ErrorDelta, HordeStatsDelta

__all__ = ["WINDOW", "Outbox", "split_delta"]

WINDOW = 4
"""Deltas in flight (sent, not yet acknowledged) before the worker stops taking new ones."""
_SLACK = 24
"""Bytes kept free per part: four msgpack array headers may grow from 1 to 5 bytes."""

Size = Callable[[HordeStatsDelta], int]
Defs = dict[int, tuple[int, str, str]]


def _packed(obj: object) -> int:
    """The msgpack size of one wire value."""
    return len(msgpack.packb(obj))


def _with_all_names(delta: HordeStatsDelta, defs: Defs) -> HordeStatsDelta:
    """``delta`` defining every id its entries use (the most it may ever carry)."""
    names = tuple(defs[e.entry_id] for e in delta.entries if e.entry_id in defs)
    return dataclasses.replace(delta, names=names)


def split_delta(
    delta: HordeStatsDelta, max_frame: int, size: Size, defs: Defs
) -> tuple[list[HordeStatsDelta], int]:
    """Split ``delta`` into parts of at most ``max_frame`` bytes with every name they use.

    Returns the parts, numbered ``delta.seq``, ``delta.seq + 1`` ... (one part, the delta
    itself, when it fits), and how many entries and errors were too big for any frame and
    left out. Each part keeps the delta's user counts and ``sent_at``.
    """
    if size(_with_all_names(delta, defs)) <= max_frame:
        return [delta], 0
    corrected: list[list[object]] = list(delta.extra.get(CORRECTED_KEY) or [])
    bare_extra = {k: v for k, v in delta.extra.items() if k != CORRECTED_KEY}
    empty = dataclasses.replace(delta, names=(), entries=(), errors=(), extra=bare_extra)
    budget = max_frame - size(empty) - _SLACK - (len(CORRECTED_KEY) + 6 if corrected else 0)
    announced = {d[0] for d in delta.names}
    buckets: list[
        tuple[list[tuple[int, str, str]], list[EntryDelta], list[ErrorDelta], list[object]]
    ] = []
    used = budget + 1  # forces a first bucket
    dropped = 0
    items: list[EntryDelta | ErrorDelta | list[object]] = [
        *delta.entries,
        *delta.errors,
        *corrected,
    ]
    for item in items:
        name = defs.get(item.entry_id) if isinstance(item, EntryDelta) else None
        wire = item if isinstance(item, list) else item.to_wire()
        cost = _packed(wire) + (_packed(list(name)) if name else 0)
        if cost > budget:
            dropped += 1
            continue
        if used + cost > budget:
            buckets.append(([], [], [], []))
            used = 0
        names, entries, errors, fixes = buckets[-1]
        used += cost
        if isinstance(item, EntryDelta):
            entries.append(item)
            if name is not None and item.entry_id in announced:
                names.append(name)
        elif isinstance(item, ErrorDelta):
            errors.append(item)
        else:
            fixes.append(item)
    if not buckets:
        buckets.append(([], [], [], []))
    parts = [
        dataclasses.replace(
            delta,
            seq=delta.seq + i,
            names=tuple(names),
            entries=tuple(entries),
            errors=tuple(errors),
            extra={**bare_extra, CORRECTED_KEY: fixes} if fixes else bare_extra,
            pack=False,  # sized item by item in the list form
        )
        for i, (names, entries, errors, fixes) in enumerate(buckets)
    ]
    return parts, dropped


class Outbox:
    """The current run's deltas sent and not yet acknowledged, in ``seq`` order."""

    def __init__(
        self, *, resend_after: float, max_frame: int, size: Size, window: int = WINDOW
    ) -> None:
        """Create an empty outbox (no run yet); no clock, no I/O."""
        self.window = window
        self.resend_after = resend_after
        self.max_frame = max_frame
        self.size = size
        self.run_id = ""
        self.next_seq = 1
        """The ``seq`` the next delta taken must carry."""
        self.dropped_items = 0
        """Entries and errors left out because no frame could hold them (cumulative)."""
        self.ack_regressions = 0
        """Acks below one already received for the run (a master that lost its place)."""
        self._pending: list[HordeStatsDelta] = []
        self._acked = 0
        self._timer: float | None = None
        self._defs: Defs = {}

    @property
    def unacked(self) -> tuple[HordeStatsDelta, ...]:
        """The deltas sent and not acknowledged, oldest first."""
        return tuple(self._pending)

    @property
    def acked(self) -> int:
        """The highest ``seq`` of the current run the master acknowledged."""
        return self._acked

    def start_run(self, run_id: str) -> None:
        """Follow ``run_id``: a different run drops every pending delta and restarts at 1."""
        if run_id == self.run_id:
            return
        self.run_id = run_id
        self.next_seq = 1
        self._acked = 0
        self._pending.clear()
        self._timer = None

    def may_take(self, *, registered: bool, final: bool = False) -> bool:
        """True when a new delta may be taken now (a final one: even with a full window)."""
        if final:
            return len(self._pending) < 2 * self.window
        return registered and len(self._pending) < self.window

    def add(self, delta: HordeStatsDelta, now: float) -> list[HordeStatsDelta]:
        """Keep a freshly taken delta (numbered ``next_seq``); return the parts to send."""
        if delta.run_id != self.run_id or delta.seq != self.next_seq:
            raise ValueError(
                f"delta {delta.run_id}/{delta.seq} is not next ({self.run_id}/{self.next_seq})"
            )
        for name in delta.names:
            self._defs[name[0]] = name
        parts, dropped = split_delta(delta, self.max_frame, self.size, self._defs)
        self.dropped_items += dropped
        if not self._pending:
            self._timer = now
        self._pending.extend(parts)
        self.next_seq = parts[-1].seq + 1
        return parts

    def ack(self, run_id: str, seq: int, now: float) -> int:
        """Drop the deltas of ``run_id`` up to ``seq``; return how many were dropped."""
        if run_id != self.run_id:
            return 0
        if seq < self._acked:
            self.ack_regressions += 1
            return 0
        self._acked = seq
        before = len(self._pending)
        self._pending = [d for d in self._pending if d.seq > seq]
        dropped = before - len(self._pending)
        if dropped:
            self._timer = now
        return dropped

    def resend_due(self, now: float, *, registered: bool) -> list[HordeStatsDelta]:
        """Every pending delta when no ack progressed for ``resend_after``; else nothing."""
        if not registered or not self._pending or self._timer is None:
            return []
        if now - self._timer < self.resend_after:
            return []
        self._timer = now
        return list(self._pending)

    def resend_all(self, now: float) -> list[HordeStatsDelta]:
        """Every pending delta, re-announcing names, after the worker registered again.

        The first pending delta that uses an id now defines it (the master forgot the names
        when the worker registered); split parts were sized for that, so none grows too big.
        """
        seen: set[int] = set()
        out: list[HordeStatsDelta] = []
        for delta in self._pending:
            names = []
            for e in delta.entries:
                name = self._defs.get(e.entry_id)
                if name is not None and e.entry_id not in seen:
                    seen.add(e.entry_id)
                    names.append(name)
            out.append(dataclasses.replace(delta, names=tuple(names)))
        self._pending = out
        if out:
            self._timer = now
        return list(out)
