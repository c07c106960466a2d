"""Worker-side request recording: counters, µs histograms, per-second counts and errors.

Responsibility: :class:`RequestRecorder` accumulates every request the worker's users make
and hands the accumulation out as a delta, either horde's compact ``horde.stats`` payload
(entries interned by id) or Locust's ``stats`` report, resetting as it does. It is pure:
the caller passes ``now``; nothing here reads a clock, sleeps or does I/O. It is not
thread-safe: record and take from the same (gevent) thread.

Imports: the standard library and :mod:`horde.protocol` only.
"""

from __future__ import annotations

from typing import Any

import structlog

from horde.protocol.corrected import CORRECTED_KEY, CorrectedDelta, corrected_to_wire
from horde.protocol.counters import DEFAULT_MAX_NAMES, OVERFLOW_NAME, EntryCounters
from horde.protocol.histogram import Histogram, bucket_mid
from horde.protocol.locust_stats import (
    LocustEntry,
    LocustError,
    LocustStatsReport,
    locust_bucket,
    locust_error_key,
    normalise_error,
)
from horde.protocol.stats import EntryDelta, ErrorDelta, HordeStatsDelta

__all__ = ["PER_SEC_CAP", "RequestRecorder"]

log = structlog.get_logger("horde.worker")

_AGGREGATED = "Aggregated"

PER_SEC_CAP = 60
"""Distinct seconds of per-second counts an entry keeps between two takes.

While the master is slow or gone the worker takes no delta (see ``worker/outbox.py``), so
without a cap these dicts would grow by a key per second. Beyond the cap the oldest seconds
are folded into the earliest one: totals and the first and last second stay exact, and the
master keeps only the last ``PER_SEC_KEEP_SECONDS`` (20) of per-second counts anyway.
"""


class _Entry(EntryCounters):
    """Mutable accumulation for one (method, name) since the last take."""

    __slots__ = ("entry_id", "last_ts", "locust_rt")

    def __init__(self, entry_id: int, method: str, name: str) -> None:
        """Create an empty entry with a stable interned id."""
        self.entry_id = entry_id
        super().__init__(method, name)

    def clear(self) -> None:
        """Zero every figure (the id and key stay)."""
        super().clear()
        self.locust_rt: dict[int, int] = {}
        self.last_ts: float | None = None

    def per_sec_triples(self) -> tuple[int, ...]:
        """Return flat ``[second, requests, failures, ...]`` sorted by second."""
        fails = self.fail_per_sec
        out: list[int] = []
        for sec, n in sorted(self.req_per_sec.items()):
            out += (sec, n, fails.get(sec, 0))
        return tuple(out)


class _Corrected:
    """Coordinated-omission corrected latencies of one (method, name) since the last take."""

    __slots__ = ("count", "hist", "max_us", "min_us", "total_us")

    def __init__(self) -> None:
        self.count = 0
        self.total_us = 0
        self.min_us: int | None = None
        self.max_us = 0
        self.hist = Histogram()


class RequestRecorder:
    """Accumulates request outcomes; ``take_*`` returns the delta since the last take.

    Entries are keyed by ``(method, name)`` and interned: each key gets a stable integer id
    the first time it is seen, and a delta defines (in ``names``) the ids it uses that have
    not been announced yet. With ``exact_locust_buckets`` the recorder also keeps Locust's
    ms buckets from the exact times (one extra dict update per request); otherwise a Locust
    report derives them from histogram midpoints.

    At most ``max_names`` distinct keys get entries of their own; requests under any later
    key go to ``(method, OVERFLOW_NAME)`` and the first such key is logged as a warning.
    :meth:`record_corrected` keeps the coordinated-omission corrected series of pacing
    users under the same keys; it travels in horde deltas only (Locust has no such field).
    """

    def __init__(
        self, *, exact_locust_buckets: bool = False, max_names: int = DEFAULT_MAX_NAMES
    ) -> None:
        """Create an empty recorder (no I/O, no clock)."""
        if max_names < 1:
            raise ValueError(f"max_names must be at least 1, got {max_names}")
        self.max_names = max_names
        self.overflowed = 0
        """Requests recorded under the overflow entry because of the cap (cumulative)."""
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._corrected: dict[tuple[str, str], _Corrected] = {}
        self._errors: dict[tuple[str, str, str], list[Any]] = {}
        self._announced: set[int] = set()
        self._exact = exact_locust_buckets
        self._period_start: float | None = None

    def record(  # noqa: PLR0917 - Locust's events.request arguments, plus now
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        response_length: int | None,
        exception: BaseException | str | None,
        now: float,
        **_ignored: Any,
    ) -> None:
        """Record one request (the hot path); signature-compatible with ``events.request``.

        ``response_time`` is in ms (None for requests without one); ``response_length`` is
        in bytes (None counts as 0); ``now`` is the unix time the request ended. Locust's
        other event keywords (``response``, ``context``, ``url``, ``start_time``) are
        accepted and ignored. A truthy ``exception`` makes the request a failure too, as in
        Locust.
        """
        entry = self._entries.get((request_type, name))
        if entry is None:
            entry = self._new_entry(request_type, name)
        sec = int(now)
        entry.num_requests += 1
        entry.last_ts = now
        per = entry.req_per_sec
        seen = per.get(sec)
        if seen is None:
            per[sec] = 1
            if len(per) > PER_SEC_CAP:
                _fold_old_seconds(entry)
        else:
            per[sec] = seen + 1
        if response_time is None:
            entry.num_none_requests += 1
        else:
            us = max(round(response_time * 1000.0), 0)
            entry.total_rt_us += us
            entry.max_rt_us = max(entry.max_rt_us, us)
            low = entry.min_rt_us
            if low is None or us < low:
                entry.min_rt_us = us
            entry.hist.record(us)
            if self._exact:
                rt = entry.locust_rt
                key = locust_bucket(response_time)
                rt[key] = rt.get(key, 0) + 1
        entry.total_content_length += response_length or 0
        if exception:
            self._record_error(entry, sec, exception, now)

    def _new_entry(self, request_type: str, name: str) -> _Entry:
        """Create the entry for a new key, or return the overflow entry beyond the cap."""
        if len(self._entries) >= self.max_names:
            self.overflowed += 1
            key = (request_type, OVERFLOW_NAME)
            overflow = self._entries.get(key)
            if overflow is not None:
                return overflow
            log.warning(
                f"more than {self.max_names} distinct request names: requests under new names"
                f" are counted as {OVERFLOW_NAME!r} (group URLs with name=...)",
                first_overflow=f"{request_type} {name}",
            )
            request_type, name = key
        entry = self._entries[(request_type, name)] = _Entry(len(self._entries), request_type, name)
        return entry

    def record_corrected(
        self, request_type: str, name: str, response_time: float, lateness: float
    ) -> None:
        """Record a pacing user's request from its intended start, after :meth:`record`.

        ``response_time`` is the raw time in ms, ``lateness`` how late (s, at least 0) the
        task iteration that made the request started; the corrected time is their sum.
        """
        key = (request_type, name)
        if key not in self._entries:  # recorded under the overflow entry
            key = (request_type, OVERFLOW_NAME)
        c = self._corrected.get(key)
        if c is None:
            c = self._corrected[key] = _Corrected()
        us = max(round(response_time * 1000.0 + max(lateness, 0.0) * 1e6), 0)
        c.count += 1
        c.total_us += us
        c.max_us = max(c.max_us, us)
        if c.min_us is None or us < c.min_us:
            c.min_us = us
        c.hist.record(us)

    def _take_corrected(self) -> tuple[CorrectedDelta, ...]:
        """Return the corrected series since the last take and reset it."""
        items = tuple(
            CorrectedDelta(method, name, c.count, c.total_us, c.min_us, c.max_us, tuple(pairs))
            for (method, name), c in self._corrected.items()
            if c.count and c.min_us is not None and (pairs := c.hist.to_pairs())
        )
        self._corrected = {}
        return items

    def _record_error(
        self, entry: _Entry, sec: int, exception: BaseException | str, now: float
    ) -> None:
        """Count a failure on ``entry`` and in the error table (Locust's key)."""
        entry.num_failures += 1
        if sec not in entry.req_per_sec:  # a late request whose second was just folded
            sec = min(entry.req_per_sec)
        fails = entry.fail_per_sec
        fails[sec] = fails.get(sec, 0) + 1
        key = (entry.method, entry.name, normalise_error(exception))
        seen = self._errors.get(key)
        if seen is None:
            self._errors[key] = [1, now, now]
        else:
            seen[0] += 1
            seen[1] = min(seen[1], now)
            seen[2] = max(seen[2], now)

    def current(self) -> list[EntryCounters]:
        """The entries with requests since the last take, as they are now (read them, do
        not change them): what a Locust worker's ``environment.stats`` holds."""
        return list(self._active())

    def _active(self) -> list[_Entry]:
        """Return the entries with activity since the last take."""
        return [e for e in self._entries.values() if e.num_requests or e.num_failures]

    def take_horde_delta(
        self,
        *,
        run_id: str,
        epoch: int,
        seq: int,
        now: float,
        user_classes_count: dict[str, int],
        user_count: int,
    ) -> HordeStatsDelta:
        """Return the accumulated delta as a ``horde.stats`` payload and reset the figures."""
        names: list[tuple[int, str, str]] = []
        entries: list[EntryDelta] = []
        announced = self._announced
        for e in self._active():
            if e.entry_id not in announced:
                announced.add(e.entry_id)
                names.append((e.entry_id, e.method, e.name))
            entries.append(
                EntryDelta(
                    e.entry_id,
                    e.num_requests,
                    e.num_none_requests,
                    e.num_failures,
                    e.total_rt_us,
                    e.min_rt_us,
                    e.max_rt_us,
                    int(e.total_content_length),
                    tuple(e.hist.to_pairs()),
                    e.per_sec_triples(),
                )
            )
            e.clear()
        errors = tuple(
            ErrorDelta(method, name, error, occ, first, last)
            for (method, name, error), (occ, first, last) in self._errors.items()
        )
        self._errors = {}
        self._period_start = now
        corrected = self._take_corrected()
        return HordeStatsDelta(
            run_id=run_id,
            epoch=epoch,
            seq=seq,
            sent_at=now,
            names=tuple(names),
            entries=tuple(entries),
            errors=errors,
            user_classes_count=dict(user_classes_count),
            user_count=user_count,
            extra={CORRECTED_KEY: corrected_to_wire(corrected)} if corrected else {},
        )

    def take_locust_report(
        self, *, now: float, user_classes_count: dict[str, int], user_count: int
    ) -> LocustStatsReport:
        """Return the accumulated delta in Locust's ``stats`` format and reset the figures."""
        active = self._active()
        stats = tuple(self._locust_entry(e) for e in active)
        total = _locust_total(stats, self._period_start if self._period_start else now)
        errors = {
            locust_error_key(method, name, error): LocustError(
                name, method, error, occ, first, last
            )
            for (method, name, error), (occ, first, last) in self._errors.items()
        }
        for e in active:
            e.clear()
        self._errors = {}
        self._corrected = {}  # Locust's master has no place for it
        self._period_start = now
        return LocustStatsReport(
            stats=stats,
            stats_total=total,
            errors=errors,
            user_classes_count=dict(user_classes_count),
            user_count=user_count,
        )

    def _locust_entry(self, e: _Entry) -> LocustEntry:
        """Convert one entry to Locust's serialized form (ms, Locust buckets)."""
        if self._exact:
            buckets = dict(e.locust_rt)
        else:
            buckets = {}
            for i, n in e.hist.counts.items():
                key = locust_bucket(bucket_mid(i) / 1000.0)
                buckets[key] = buckets.get(key, 0) + n
        start = self._period_start
        return LocustEntry(
            name=e.name,
            method=e.method,
            last_request_timestamp=e.last_ts,
            start_time=start if start is not None else float(min(e.req_per_sec, default=0)),
            num_requests=e.num_requests,
            num_none_requests=e.num_none_requests,
            num_failures=e.num_failures,
            total_response_time=e.total_rt_us / 1000.0,
            max_response_time=e.max_rt_us / 1000.0,
            min_response_time=None if e.min_rt_us is None else e.min_rt_us / 1000.0,
            total_content_length=e.total_content_length,
            response_times=buckets,
            num_reqs_per_sec=dict(e.req_per_sec),
            num_fail_per_sec=dict(e.fail_per_sec),
        )

    def reset(self) -> None:
        """Drop the accumulated figures and errors; keep the intern table and announcements."""
        for e in self._entries.values():
            e.clear()
        self._errors = {}
        self._corrected = {}
        self._period_start = None

    def forget_announcements(self) -> None:
        """Make the next delta define every id it uses (after connecting to a new master)."""
        self._announced.clear()


def _fold_old_seconds(entry: _Entry) -> None:
    """Fold an entry's oldest per-second counts into its earliest second (bounded memory).

    Keeps the earliest second and the latest ``PER_SEC_CAP - 1``; failure seconds follow the
    request seconds, so they stay a subset of them.
    """
    seconds = sorted(entry.req_per_sec)
    first, old = seconds[0], seconds[1 : len(seconds) - PER_SEC_CAP + 1]
    for counts in (entry.req_per_sec, entry.fail_per_sec):
        folded = sum(counts.pop(sec, 0) for sec in old)
        if folded:
            counts[first] = counts.get(first, 0) + folded


def _sum_into(target: dict[int, int], source: dict[int, int]) -> None:
    """Add the counts of ``source`` into ``target``."""
    for key, n in source.items():
        target[key] = target.get(key, 0) + n


def _locust_total(stats: tuple[LocustEntry, ...], start: float) -> LocustEntry:
    """Return Locust's ``Aggregated`` entry summing ``stats``."""
    rts: dict[int, int] = {}
    reqs: dict[int, int] = {}
    fails: dict[int, int] = {}
    for s in stats:
        _sum_into(rts, s.response_times)
        _sum_into(reqs, s.num_reqs_per_sec)
        _sum_into(fails, s.num_fail_per_sec)
    lasts = [s.last_request_timestamp for s in stats if s.last_request_timestamp is not None]
    mins = [s.min_response_time for s in stats if s.min_response_time is not None]
    return LocustEntry(
        name=_AGGREGATED,
        method="",
        last_request_timestamp=max(lasts, default=None),
        start_time=min([start, *(s.start_time for s in stats)]),
        num_requests=sum(s.num_requests for s in stats),
        num_none_requests=sum(s.num_none_requests for s in stats),
        num_failures=sum(s.num_failures for s in stats),
        total_response_time=sum(s.total_response_time for s in stats),
        max_response_time=max((s.max_response_time for s in stats), default=0),
        min_response_time=min(mins, default=None),
        total_content_length=sum(s.total_content_length for s in stats),
        response_times=rts,
        num_reqs_per_sec=reqs,
        num_fail_per_sec=fails,
    )
