"""Log-linear latency histogram of integer microseconds (HdrHistogram-like, fixed layout).

Responsibility: map a latency in microseconds to a bucket index and back, and keep sparse,
mergeable bucket counts with nearest-rank percentiles. The layout is fixed, so two
histograms built anywhere merge by adding counts per index.

Layout: values 0..255 µs each have their own bucket (index = value). Above that, every power
of two ``[2**k, 2**(k+1))`` is split into 128 equal sub-buckets, so a bucket is never wider
than 1/128 of its lower bound and its midpoint is within 1/256 (< 0.4%) of any value in it.
Values at or above :data:`CAP_US` (2**40 µs, about 12.7 days) land in the last bucket;
negative values land in bucket 0.

Imports: the standard library only.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from itertools import accumulate
from math import ceil
from typing import Any

__all__ = [
    "CAP_US",
    "NUM_BUCKETS",
    "Histogram",
    "bucket_high",
    "bucket_index",
    "bucket_indices",
    "bucket_low",
    "bucket_mid",
]

_SUB_BITS = 7  # 128 sub-buckets per power of two
_LINEAR_LIMIT = 256  # values below this are exact
CAP_US = 1 << 40
"""Values at or above this many microseconds are clamped into the last bucket."""

NUM_BUCKETS = ((40 - 8) << _SUB_BITS) + _LINEAR_LIMIT
"""Number of buckets (4352); valid indices are ``0 .. NUM_BUCKETS - 1``."""

_LAST = NUM_BUCKETS - 1


def bucket_index(us: int) -> int:
    """Return the bucket index holding ``us`` microseconds (clamped to the valid range)."""
    if us < _LINEAR_LIMIT:
        return us if us > 0 else 0
    if us >= CAP_US:
        return _LAST
    shift = us.bit_length() - 8
    return (shift << _SUB_BITS) + (us >> shift)


def bucket_low(i: int) -> int:
    """Return the smallest microsecond value that falls in bucket ``i``."""
    if i < _LINEAR_LIMIT:
        return i
    shift = (i >> _SUB_BITS) - 1
    return ((i & 127) + 128) << shift


def bucket_high(i: int) -> int:
    """Return the largest microsecond value (inclusive) that falls in bucket ``i``."""
    if i < _LINEAR_LIMIT:
        return i
    shift = (i >> _SUB_BITS) - 1
    return (((i & 127) + 129) << shift) - 1


def bucket_mid(i: int) -> int:
    """Return the integer midpoint of bucket ``i``, the value a percentile reports for it."""
    return (bucket_low(i) + bucket_high(i)) >> 1


def _rank(p: float, n: int) -> int:
    """Return the nearest-rank position (1-based) of percentile ``p`` among ``n`` values."""
    return min(n, max(1, ceil(p * n)))


class Histogram:
    """Sparse bucket counts of microsecond latencies; merging is adding counts per index.

    ``counts`` maps bucket index to count; ``total`` is the sum of the counts. The hot path,
    :meth:`record`, is a few integer operations and one dict update.
    """

    __slots__ = ("counts", "total")

    def __init__(self, counts: dict[int, int] | None = None) -> None:
        """Create a histogram, optionally adopting an existing ``counts`` dict."""
        self.counts: dict[int, int] = {} if counts is None else counts
        self.total: int = sum(self.counts.values())

    def __repr__(self) -> str:
        """Return a short representation showing the total and the number of buckets used."""
        return f"Histogram(total={self.total}, buckets={len(self.counts)})"

    def __eq__(self, other: object) -> bool:
        """Histograms are equal when their non-zero counts are equal."""
        if not isinstance(other, Histogram):
            return NotImplemented
        mine = {i: n for i, n in self.counts.items() if n}
        theirs = {i: n for i, n in other.counts.items() if n}
        return mine == theirs

    __hash__ = None  # type: ignore[assignment]  # mutable

    def record(self, us: int, n: int = 1) -> None:
        """Add ``n`` observations of ``us`` microseconds."""
        if us < _LINEAR_LIMIT:
            i = us if us > 0 else 0
        elif us >= CAP_US:
            i = _LAST
        else:
            shift = us.bit_length() - 8
            i = (shift << _SUB_BITS) + (us >> shift)
        counts = self.counts
        counts[i] = counts.get(i, 0) + n
        self.total += n

    def merge(self, other: Histogram) -> None:
        """Add every count of ``other`` into this histogram."""
        counts = self.counts
        get = counts.get
        for i, n in other.counts.items():
            counts[i] = get(i, 0) + n
        self.total += other.total

    def merge_pairs(self, flat: Sequence[int]) -> None:
        """Add flat ``[idx, count, idx, count, ...]`` pairs (already validated) into this one."""
        counts = self.counts
        get = counts.get
        it = iter(flat)
        for i, n in zip(it, it, strict=True):
            counts[i] = get(i, 0) + n
        self.total += sum(flat[1::2])

    def to_pairs(self) -> list[int]:
        """Return the non-zero counts as flat ``[idx, count, ...]`` pairs sorted by index."""
        counts = self.counts
        out: list[int] = []
        for i in sorted(counts):
            n = counts[i]
            if n:
                out.append(i)
                out.append(n)
        return out

    def clear(self) -> None:
        """Drop every count."""
        self.counts = {}
        self.total = 0

    def percentile(self, p: float, *, min_us: int | None = None, max_us: int | None = None) -> int:
        """Return the nearest-rank ``p`` percentile (0..1) in µs, 0 when empty.

        The rank is ``ceil(p * total)``, at least 1, and the value is its bucket's midpoint.
        ``min_us`` and ``max_us``, when given, must be the exact extremes of the recorded
        values: the first rank then reads as ``min_us``, the last as ``max_us`` (so ``p=1.0``
        is the maximum) and every other value is clamped into ``[min_us, max_us]``, so a
        percentile never exceeds the maximum.
        """
        return self.percentiles((p,), min_us=min_us, max_us=max_us)[0]

    def percentiles(
        self, ps: Iterable[float], *, min_us: int | None = None, max_us: int | None = None
    ) -> list[int]:
        """Return :meth:`percentile` for each of ``ps`` with a single sort of the buckets."""
        wanted = list(ps)
        n = self.total
        out = [0] * len(wanted)
        counts = self.counts
        if n <= 0 or not counts:
            return out
        keys = sorted(counts)
        if min(counts.values()) <= 0:
            keys = [i for i in keys if counts[i] > 0]
            if not keys:
                return out
        seen = list(accumulate(map(counts.__getitem__, keys)))  # requests up to each bucket
        last = len(keys) - 1
        for k, p in enumerate(wanted):
            rank = _rank(p, n)
            if rank >= n and max_us is not None:
                out[k] = max_us
                continue
            if rank <= 1 and min_us is not None:
                out[k] = min_us
                continue
            value = bucket_mid(keys[min(bisect_left(seen, rank), last)])
            if min_us is not None:
                value = max(value, min_us)
            if max_us is not None:
                value = min(value, max_us)
            out[k] = value
        return out

    @classmethod
    def from_pairs(cls, flat: Sequence[int]) -> Histogram:
        """Build a histogram from flat ``[idx, count, ...]`` pairs."""
        hist = cls()
        hist.merge_pairs(flat)
        return hist

    def copy(self) -> Histogram:
        """Return an independent copy."""
        return Histogram(dict(self.counts))


def bucket_indices(us: Any) -> Any:
    """:func:`bucket_index` of each value of an int64 numpy array of µs (numpy imported here).

    Exact: values are clamped below :data:`CAP_US` first, so their float64 form is exact
    and its binary exponent is the value's bit length.
    """
    import numpy as np  # only a master converting Locust buckets calls this

    values = np.minimum(np.maximum(us, 0), CAP_US)
    shift = np.maximum(np.frexp(values.astype(np.float64))[1] - 8, 0)
    out = (shift << _SUB_BITS) + (values >> shift)
    out[values >= CAP_US] = _LAST
    return out
