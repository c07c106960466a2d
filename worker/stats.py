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

from horde.protocol.counters import EntryCounters
from horde.protocol.histogram import bucket_mid
from horde.protocol.stats import (
    EntryDelta,
    ErrorDelta,
    HordeStatsDelta,
    LocustEntry,
    LocustError,
    LocustStatsReport,
    locust_bucket,
    locust_error_key,
    normalise_error,
)

__all__ = ["PER_SEC_CAP", "RequestRecorder"]

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


class RequestRecorder:
    """Accumulates request outcomes; ``take_*`` returns the delta since the last take.

    Entries are keyed by ``(method, name)`` and interned: each key gets a stable integer id
    the first time it is seen, and a delta defines (in ``names``) the ids it uses that have
    not been announced yet. With ``exact_locust_buckets`` the recorder also keeps Locust's
    ms buckets from the exact times (one extra dict update per request); otherwise a Locust
    report derives them from histogram midpoints.
    """

    def __init__(self, *, exact_locust_buckets: bool = False) -> None:
        """Create an empty recorder (no I/O, no clock)."""
        self._entries: dict[tuple[str, str], _Entry] = {}
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
            entry = self._entries[(request_type, name)] = _Entry(
                len(self._entries), request_type, name
            )
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
