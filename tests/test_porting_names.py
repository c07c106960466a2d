"""The one porting rule holds for names: every name Locust 2.47 offers in a module horde
mirrors exists in horde's counterpart (``locust`` -> ``horde`` in the module path)."""

from __future__ import annotations

import importlib

import pytest

MIRRORED = {
    "locust": "horde",
    "locust.exception": "horde.exception",
    "locust.env": "horde.env",
    "locust.event": "horde.event",
    "locust.user": "horde.user",
    "locust.user.wait_time": "horde.user.wait_time",
    "locust.runners": "horde.runners",
}
"""Locust's modules horde mirrors, and horde's counterparts."""

#: Names Locust's modules hold that are not part of what they offer (imports of their own).
NOT_OFFERED = {
    "locust.env": {"RunnerType"},  # a typing alias
    "locust.event": {"DeprecatedEventHook", "log"},
    "locust.user.wait_time": {"TYPE_CHECKING"},
    "locust.runners": {"TYPE_CHECKING"},
}

#: Names horde offers only once another part lands (checked by the tests of that part).
LATER: dict[str, set[str]] = {}


def offered(module_name: str) -> set[str]:
    """What a Locust module offers: its ``__all__``, else its public names defined there."""
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is not None:
        return set(names)
    own = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and getattr(value, "__module__", module_name) == module_name
        and not isinstance(value, type(importlib))
    }
    return own - NOT_OFFERED.get(module_name, set())


@pytest.mark.parametrize(("locust_name", "horde_name"), sorted(MIRRORED.items()))
def test_every_name_locust_offers_there_exists_in_horde(locust_name: str, horde_name: str) -> None:
    """Each name of the Locust module resolves on the horde module."""
    horde_module = importlib.import_module(horde_name)
    expected = offered(locust_name) - LATER.get(locust_name, set())
    missing = sorted(name for name in expected if not hasattr(horde_module, name))
    assert not missing, f"{horde_name} lacks {missing}"


def test_a_retired_class_says_what_it_was_renamed() -> None:
    """Subclassing Locust or HttpLocust fails naming User or HttpUser, as in Locust."""
    import horde
    from horde.protocol.errors import ScriptError

    with pytest.raises(ScriptError, match="renamed HttpUser"):

        class Old(horde.HttpLocust):
            pass
