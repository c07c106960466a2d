"""``Locust`` and ``HttpLocust``: names Locust 1.0 retired, kept (as Locust keeps them) only
to say so when a very old script subclasses one.

Imports: horde.protocol.errors.
"""

from __future__ import annotations

from typing import Any

from horde.protocol.errors import ScriptError

__all__ = ["HttpLocust", "Locust"]


class _Renamed:
    """A retired base class: subclassing it raises, naming the new one."""

    renamed_to = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "renamed_to" in cls.__dict__:
            return  # Locust and HttpLocust themselves
        retired = next(b for b in cls.__mro__ if "renamed_to" in b.__dict__)
        renamed = retired.__dict__["renamed_to"]
        retired_name = retired.__name__
        raise ScriptError(
            f"{cls.__name__}: the {retired_name} class was renamed {renamed} (Locust 1.0); "
            f"subclass horde.{renamed} instead"
        )


class Locust(_Renamed):
    """Retired: use ``User``."""

    renamed_to = "User"


class HttpLocust(_Renamed):
    """Retired: use ``HttpUser``."""

    renamed_to = "HttpUser"
