"""When a receive loop answers heartbeats at once and holds the rest: pure policy, no I/O.

A receive loop that batches its frames shares the costs paid per wake-up, at the price of
latency; that trade pays only when frames arrive fast. :class:`ArrivalGauge` measures the
arrival rate (frames a second, taking ``now``); below :data:`HOLD_RATE_MAX` a receive loop
answers each heartbeat as it arrives and gathers the other frames in a :class:`HeldBatch`,
handled together once it is due. A heartbeat goes ahead only when nothing of its sender is
held, so each worker's messages are still handled in the order it sent them.

Imports: the standard library and horde.protocol.
"""

from __future__ import annotations

from horde.protocol.codec import is_heartbeat_frame

HOLD_RATE_MAX = 3000.0
"""Frames a second below which a receive loop holds frames and answers heartbeats at once.

1,000 workers send about 1,330 a second; 5,000 send about 6,700, where sharing each
wake-up among a batch matters more than a few milliseconds of latency.
"""
GAUGE_WINDOW = 1.0
"""How long :class:`ArrivalGauge` counts before it states a new rate (seconds)."""

Frames = list[bytes]


class ArrivalGauge:
    """The arrival rate of the last full window: frames counted, divided by its length."""

    def __init__(self, window: float = GAUGE_WINDOW) -> None:
        self._window = window
        self._start: float | None = None
        self._count = 0
        self.rate = 0.0
        """Frames a second over the last window that ended (0 before the first)."""

    def add(self, frames: int, now: float) -> None:
        """Count ``frames`` received at ``now``; a window that has ended states its rate."""
        if self._start is None:
            self._start = now
        elif now - self._start >= self._window:
            self.rate = self._count / (now - self._start)
            self._start = now
            self._count = 0
        self._count += frames

    def busy(self, threshold: float) -> bool:
        """Whether frames arrive fast enough (``threshold`` a second, typically
        :data:`HOLD_RATE_MAX`) that batching beats answering at once."""
        return self.rate >= threshold


class HeldBatch:
    """Frames held back to be handled together, and the senders they came from."""

    def __init__(self) -> None:
        self.frames: list[Frames] = []
        self.since: float | None = None
        """When the first held frame was held (None: nothing held)."""
        self._senders: set[bytes] = set()

    def __len__(self) -> int:
        return len(self.frames)

    def add(self, batch: list[Frames], now: float) -> list[Frames]:
        """Hold ``batch``'s frames except the heartbeats that may go ahead; return those.

        A heartbeat goes ahead (returned, in order) when no earlier frame of its sender is
        held; anything else, malformed frames included, is held.
        """
        ahead: list[Frames] = []
        senders = self._senders
        for frames in batch:
            sender = frames[0]
            if sender not in senders and _is_heartbeat(frames):
                ahead.append(frames)
                continue
            if self.since is None:
                self.since = now
            self.frames.append(frames)
            senders.add(sender)
        return ahead

    def due(self, now: float, pause: float, limit: int) -> bool:
        """Whether the held frames are to be handled now: ``pause`` has passed since the
        first was held, or ``limit`` frames are held."""
        return self.since is not None and (now - self.since >= pause or len(self.frames) >= limit)

    def deadline(self, pause: float) -> float | None:
        """When the held frames fall due by time (None: nothing held)."""
        return None if self.since is None else self.since + pause

    def take(self) -> list[Frames]:
        """The next piece of held frames, in the order received: up to and including the
        first that is not a heartbeat (a stats report can take milliseconds to handle).

        Between pieces, heartbeats received meanwhile are answered. Senders stay held
        until every held frame is taken, so none of them overtakes its own frames.
        """
        frames = self.frames
        end = next((i for i, f in enumerate(frames) if not _is_heartbeat(f)), len(frames) - 1)
        piece, self.frames = frames[: end + 1], frames[end + 1 :]
        if not self.frames:
            self.take_all()
        return piece

    def take_all(self) -> list[Frames]:
        """Every held frame, in the order received; the batch is empty afterwards."""
        frames = self.frames
        self.frames = []
        self.since = None
        self._senders = set()
        return frames


def _is_heartbeat(frames: Frames) -> bool:
    """Whether a received message (identity, payload) looks like a heartbeat."""
    return len(frames) == 2 and is_heartbeat_frame(frames[1])
