"""horde's one exception tree: the errors the master raises on purpose are HordeErrors."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from horde.master.forms import FieldError, parse_swarm
from horde.master.shape import ShapeError, read_tick
from horde.master.swarm import CommandError, SwarmRequest, validate_request
from horde.protocol.errors import HordeError, RequestError, ScriptError


def _bad_field() -> None:
    parse_swarm({"user_count": "many"})


def _refused_command() -> None:
    validate_request(SwarmRequest(user_count=5), max_users=4, class_names=(), shape_names=())


def _bad_tick() -> None:
    read_tick((1, 0), ["A"], 100)


@pytest.mark.parametrize(
    ("raise_it", "kind", "branch", "message", "field"),
    [
        (
            _bad_field,
            FieldError,
            RequestError,
            "user_count must be an integer, got 'many'",
            "user_count",
        ),
        (
            _refused_command,
            CommandError,
            RequestError,
            "user_count must be between 0 and 4, got 5",
            "user_count",
        ),
        (
            _bad_tick,
            ShapeError,
            ScriptError,
            "tick() spawn rate must be a positive number, got 0",
            None,
        ),
    ],
)
def test_master_errors_join_the_horde_error_tree(
    raise_it: Callable[[], None],
    kind: type[Exception],
    branch: type[HordeError],
    message: str,
    field: str | None,
) -> None:
    """FieldError, CommandError and ShapeError are HordeErrors on their branch, still
    ValueErrors, with their messages and fields unchanged."""
    with pytest.raises(HordeError) as caught:
        raise_it()
    error = caught.value
    assert type(error) is kind
    assert isinstance(error, branch) and isinstance(error, ValueError)
    assert str(error) == message and error.args == (message,)
    assert getattr(error, "field", None) == field
