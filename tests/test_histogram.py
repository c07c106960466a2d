"""The log-linear µs histogram: layout, relative error, merging and nearest-rank percentiles."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from horde.protocol.histogram import (
    CAP_US,
    NUM_BUCKETS,
    Histogram,
    bucket_high,
    bucket_index,
    bucket_low,
    bucket_mid,
)


def exact_nearest_rank(values: list[int], p: float) -> int:
    """Return the exact nearest-rank percentile of ``values``."""
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(p * len(ordered))))
    return ordered[rank - 1]


def test_small_values_have_their_own_bucket() -> None:
    """Every value from 0 to 255 µs is its own bucket and reads back exactly."""
    for us in range(256):
        i = bucket_index(us)
        assert i == us
        assert bucket_low(i) == bucket_high(i) == bucket_mid(i) == us


def test_buckets_tile_the_range_without_gaps() -> None:
    """Consecutive buckets are contiguous, and each is at most 1/128 of its lower bound wide."""
    for i in range(NUM_BUCKETS - 1):
        assert bucket_high(i) + 1 == bucket_low(i + 1)
        assert bucket_index(bucket_low(i)) == i
        assert bucket_index(bucket_high(i)) == i
        if i >= 256:
            assert (bucket_high(i) - bucket_low(i) + 1) * 128 <= bucket_low(i)


def test_out_of_range_values_are_clamped() -> None:
    """Negative values go to bucket 0 and values at or above the cap to the last bucket."""
    assert bucket_index(-5) == 0
    assert bucket_index(CAP_US) == NUM_BUCKETS - 1
    assert bucket_index(CAP_US * 1000) == NUM_BUCKETS - 1
    assert bucket_index(CAP_US - 1) == NUM_BUCKETS - 1


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=10, max_value=100_000_000))
def test_midpoint_relative_error_is_below_one_percent(us: int) -> None:
    """A value from 10 µs to 100 s reads back as its bucket midpoint within 1%."""
    mid = bucket_mid(bucket_index(us))
    assert abs(mid - us) <= us * 0.01


def test_record_matches_bucket_index() -> None:
    """Histogram.record counts each value in the bucket bucket_index names."""
    hist = Histogram()
    values = [0, 1, 255, 256, 257, 1000, 123_456, CAP_US + 1]
    for us in values:
        hist.record(us)
    hist.record(1000, 4)
    expected: dict[int, int] = {}
    for us in [*values, 1000, 1000, 1000, 1000]:
        expected[bucket_index(us)] = expected.get(bucket_index(us), 0) + 1
    assert hist.counts == expected
    assert hist.total == len(values) + 4


def test_pairs_round_trip_and_merge() -> None:
    """to_pairs is sorted by index; merge_pairs and merge add counts per index."""
    a = Histogram()
    for us in (5, 300, 300, 70_000):
        a.record(us)
    pairs = a.to_pairs()
    assert pairs[::2] == sorted(pairs[::2])
    b = Histogram.from_pairs(pairs)
    assert b == a and b.total == a.total
    b.merge(a)
    c = Histogram()
    c.merge_pairs(pairs)
    c.merge_pairs(pairs)
    assert b == c
    assert b.total == 8


def test_empty_histogram_percentile_is_zero() -> None:
    """An empty histogram reports 0 for every percentile."""
    assert Histogram().percentile(0.5, min_us=0, max_us=0) == 0
    assert Histogram().percentiles([0.1, 0.9], min_us=0, max_us=0) == [0, 0]


def test_percentile_of_small_exact_values_is_exact() -> None:
    """Below 256 µs nearest-rank percentiles are exact (rank = ceil(p*n), at least 1)."""
    values = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    hist = Histogram()
    for us in values:
        hist.record(us)
    for p, expected in [(0.0, 10), (0.1, 10), (0.11, 20), (0.5, 50), (0.95, 100), (1.0, 100)]:
        assert hist.percentile(p, min_us=10, max_us=100) == expected


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=10, max_value=100_000_000), min_size=1, max_size=300),
    st.sampled_from([0.0, 0.5, 0.66, 0.9, 0.95, 0.99, 0.999, 1.0]),
)
def test_percentile_within_one_percent_of_exact(values: list[int], p: float) -> None:
    """Percentiles equal the exact nearest-rank value within 1% and never exceed the max."""
    hist = Histogram()
    for us in values:
        hist.record(us)
    got = hist.percentile(p, min_us=min(values), max_us=max(values))
    exact = exact_nearest_rank(values, p)
    assert abs(got - exact) <= exact * 0.01
    assert min(values) <= got <= max(values)


def test_percentile_one_is_the_maximum() -> None:
    """p=1.0 returns the exact maximum even though its bucket midpoint is above it."""
    hist = Histogram()
    hist.record(100_000)
    hist.record(1_000_001)
    top = hist.percentile(1.0, min_us=100_000, max_us=1_000_001)
    assert top == 1_000_001
    assert bucket_mid(bucket_index(1_000_001)) != 1_000_001


def test_percentiles_matches_single_calls() -> None:
    """percentiles() agrees with percentile() for every p, in the order asked."""
    rng = random.Random(7)
    hist = Histogram()
    values = [rng.randint(100, 5_000_000) for _ in range(1000)]
    for us in values:
        hist.record(us)
    ps = [0.99, 0.5, 0.0, 1.0, 0.75]
    low, high = min(values), max(values)
    singles = [hist.percentile(p, min_us=low, max_us=high) for p in ps]
    assert hist.percentiles(ps, min_us=low, max_us=high) == singles


@pytest.mark.parametrize("p", [-1.0, 2.0])
def test_out_of_range_p_is_clamped_to_min_or_max_rank(p: float) -> None:
    """A p below 0 gives the smallest value and above 1 the largest."""
    hist = Histogram()
    for us in (3, 7, 9):
        hist.record(us)
    assert hist.percentile(p, min_us=3, max_us=9) == (3 if p < 0 else 9)
