"""The parser a script's ``init_command_line_parser`` listeners get, as Locust gives it.

Locust's listeners call ``parser.add_argument("--my-argument", type=str, default="",
env_var="LOCUST_MY_ARGUMENT", help=..., include_in_web_ui=True, is_secret=False)``
(configargparse's keywords plus Locust's own). :class:`ScriptArguments` adds each option
to the running command's parser and remembers how to describe it; after the command line
is parsed, :meth:`ScriptArguments.options` gives the :class:`ScriptOption` list with
their values. ``env_var`` works (a set variable is the default), as does
``HORDE_<NAME>`` like every horde flag.

Imports: the standard library and horde.protocol.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from horde.protocol.errors import ScriptError
from horde.protocol.options import ScriptOption

__all__ = ["ScriptArguments"]

_KINDS: dict[object, str] = {str: "str", int: "int", float: "float", bool: "bool"}


class ScriptArguments:
    """Locust's parser, as ``init_command_line_parser`` listeners use it."""

    def __init__(self, parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
        self._parser = parser
        self._environ = environ
        self._specs: list[tuple[argparse.Action, bool, bool, bool]] = []

    def add_argument(
        self,
        *names: str,
        env_var: str | None = None,
        include_in_web_ui: bool = True,
        is_secret: bool = False,
        is_required: bool = False,
        is_multiple: bool = False,
        **kwargs: Any,
    ) -> argparse.Action:
        """Add an option (argparse's arguments, plus Locust's keywords; ``is_multiple``,
        for the web UI's several choices, is kept as the option's list default)."""
        try:
            action = self._parser.add_argument(*names, **kwargs)
        except (argparse.ArgumentError, ValueError, TypeError) as exc:
            raise ScriptError(f"the script's option {names}: {exc}") from None
        for variable in (env_var, f"HORDE_{action.dest.upper()}"):
            if variable and variable in self._environ:
                raw = self._environ[variable]
                convert = action.type if callable(action.type) else str
                if isinstance(action, argparse._StoreTrueAction):
                    action.default = raw.strip().lower() in ("1", "true", "yes", "on")
                else:
                    action.default = convert(raw)
        if action.help is not None:
            action.help = f"{action.help} (the script's option)"
        self._specs.append((action, include_in_web_ui, is_secret, is_required))
        return action

    def add_argument_group(self, *args: Any, **kwargs: Any) -> ScriptArguments:
        """Groups only arrange ``--help``; options land on the same parser."""
        return self

    def options(self, args: argparse.Namespace) -> tuple[ScriptOption, ...]:
        """Every option the script added, with its value in ``args``."""
        out = []
        for action, in_ui, secret, required in self._specs:
            if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
                kind = "bool"
            elif isinstance(action.default, bool) and action.type is None:
                kind = "bool"  # Locust: a boolean default makes a checkbox
            else:
                kind = _KINDS.get(action.type, "str")
            out.append(
                ScriptOption(
                    name=action.dest,
                    value=getattr(args, action.dest, action.default),
                    default=action.default,
                    kind=kind,
                    help=(action.help or "").removesuffix(" (the script's option)"),
                    choices=tuple(action.choices) if action.choices else None,
                    include_in_web_ui=in_ui,
                    is_secret=secret,
                    is_required=required,
                )
            )
        return tuple(out)
