"""Moving users toward a balanced placement a few at a time, and the lease setting."""

from __future__ import annotations

import pytest

from horde.master.config import MasterSettings
from horde.master.migrate import move_toward, users_out_of_place
from horde.protocol.errors import ConfigError


@pytest.mark.parametrize(
    ("current", "target", "budget", "expected"),
    [
        (
            {"a": {"X": 10}},
            {"a": {"X": 5}, "b": {"X": 5}},
            2,
            {"a": {"X": 8}, "b": {"X": 2}},
        ),
        (
            {"a": {"X": 10}},
            {"a": {"X": 5}, "b": {"X": 5}},
            99,
            {"a": {"X": 5}, "b": {"X": 5}},
        ),
        (
            {"a": {"X": 4, "Y": 2}, "b": {"X": 4, "Y": 2}},
            {"a": {"X": 3, "Y": 1}, "b": {"X": 3, "Y": 1}, "c": {"X": 2, "Y": 2}},
            3,
            {"a": {"X": 3, "Y": 1}, "b": {"X": 3, "Y": 2}, "c": {"X": 2, "Y": 1}},
        ),
        ({"a": {"X": 3}}, {"a": {"X": 3}}, 5, {"a": {"X": 3}}),
        ({"a": {"X": 3}}, {"a": {"X": 1}, "b": {"X": 2}}, 0, {"a": {"X": 3}, "b": {"X": 0}}),
    ],
)
def test_move_toward_moves_at_most_the_budget(
    current: dict[str, dict[str, int]],
    target: dict[str, dict[str, int]],
    budget: int,
    expected: dict[str, dict[str, int]],
) -> None:
    """Each step moves at most ``budget`` users, largest surplus to largest deficit."""
    result = move_toward(current, target, budget)
    assert result == expected
    total = sum(sum(c.values()) for c in current.values())
    assert sum(sum(c.values()) for c in result.values()) == total


def test_out_of_place_counts_what_is_left_to_move() -> None:
    """users_out_of_place reaches 0 exactly when the target is reached."""
    current = {"a": {"X": 10}}
    target = {"a": {"X": 5}, "b": {"X": 5}}
    assert users_out_of_place(current, target) == 5
    assert users_out_of_place(move_toward(current, target, 5), target) == 0
    with pytest.raises(ValueError):
        move_toward(current, target, -1)


def test_lease_defaults_to_missing_detection_time_and_may_not_exceed_it() -> None:
    """The lease is liveness x interval by default; a longer one is refused."""
    assert MasterSettings().lease_seconds == 3.0
    assert MasterSettings(heartbeat_interval=0.5, heartbeat_liveness=4).lease_seconds == 2.0
    assert MasterSettings(lease=1.5).lease_seconds == 1.5
    with pytest.raises(ConfigError):
        MasterSettings(lease=3.5)
