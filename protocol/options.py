"""A script's own command-line options (Locust's ``init_command_line_parser``), as data.

A script adds options to the parser in an ``init_command_line_parser`` listener; the CLI
records each as a :class:`ScriptOption` with the value the command line (or its
variable, or a config file) gave. The master shows them in the dashboard's start form
(unless ``include_in_web_ui`` is false; a secret one is shown masked), accepts them in
``/swarm``, lists them in ``/openapi.json``, and sends their values to the workers in each
spawn's ``parsed_options``, where scripts read ``environment.parsed_options.NAME``.

Imports: the standard library and horde.protocol.errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from horde.protocol.errors import ConfigError

__all__ = ["OPTION_TYPES", "ScriptOption"]

OPTION_TYPES = ("str", "int", "float", "bool")
"""The value types a script option may have (others are read as text)."""


@dataclass(frozen=True, slots=True)
class ScriptOption:
    """One option a script added, with its value for this process."""

    name: str
    """The option's ``dest`` (``--my-argument`` -> ``my_argument``)."""
    value: Any
    default: Any = None
    kind: str = "str"
    """One of :data:`OPTION_TYPES`."""
    help: str = ""
    choices: tuple[Any, ...] | None = None
    include_in_web_ui: bool = True
    is_secret: bool = False
    is_required: bool = False

    def convert(self, raw: object) -> object:
        """A value for this option from a form or JSON field; ConfigError if it cannot be."""
        value = _as(self.kind, raw, self.name)
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{self.name} must be one of {list(self.choices)}, got {raw!r}")
        return value


def _as(kind: str, raw: object, name: str) -> object:
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off", ""):
            return False
        raise ConfigError(f"{name} takes true or false, got {raw!r}")
    if kind in ("int", "float"):
        if isinstance(raw, bool):
            raise ConfigError(f"{name} takes a number, got {raw!r}")
        try:
            value = int(str(raw)) if kind == "int" else float(str(raw))
        except ValueError:
            raise ConfigError(f"{name} takes a number, got {raw!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{name} takes a finite number, got {raw!r}")
        return value
    if not isinstance(raw, str | int | float):
        raise ConfigError(f"{name} takes text, got {raw!r}")
    return str(raw)
