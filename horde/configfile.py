"""Configuration files: Locust's ``locust.conf`` format, read as defaults for the flags.

Locust users keep settings in ``locust.conf`` (``key = value`` lines, ``#`` comments,
``true``/``false``, keys spelt as the long flag without its dashes: ``spawn-rate = 5`` or
``spawn_rate = 5``). horde reads ``~/.locust.conf``, ``./locust.conf`` and ``./horde.conf``
when they exist, then the file ``--config FILE`` names, later files winning; then the
``HORDE_*`` variables and the command line override them, as Locust's order is. A key no
command has is an error naming the file and line; a key only other commands have is
ignored by this one (``master = true`` is what ``horde master`` is).

Imports: the standard library and horde.protocol.errors.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from pathlib import Path

from horde.protocol.errors import ConfigError

__all__ = ["DEFAULT_FILES", "apply_config", "config_files", "read_config"]

DEFAULT_FILES = ("~/.locust.conf", "locust.conf", "horde.conf")
"""Read when present, in this order (a later file wins)."""
IGNORED_KEYS = frozenset({"master", "worker", "headful", "web-ui", "processes-auto"})
"""Locust mode keys: horde's command says what it is (``horde master``, ``horde worker``)."""


def read_config(path: Path) -> dict[str, tuple[str, int]]:
    """``{flag dest: (value text, line number)}`` of one file; a bad line is an error."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc}") from None
    values: dict[str, tuple[str, int]] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise ConfigError(f"{path}:{number}: expected 'key = value', got {raw.strip()!r}")
        values[key.strip().lstrip("-").replace("-", "_")] = (value.strip(), number)
    return values


def config_files(argv: Sequence[str], cwd: Path, config: str | None = None) -> list[Path]:
    """The files to read: the defaults that exist, then ``config`` (``HORDE_CONFIG``), then
    ``--config FILE`` from ``argv``."""
    files = [p for p in (Path(f).expanduser() for f in DEFAULT_FILES) if (cwd / p).is_file()]
    files = [cwd / p if not p.is_absolute() else p for p in files]
    if config:
        files.append(Path(config))
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            files.append(Path(argv[i + 1]))
        elif arg.startswith("--config="):
            files.append(Path(arg.split("=", 1)[1]))
    return files


def _actions(parser: argparse.ArgumentParser) -> Iterable[argparse.Action]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)
        elif action.option_strings:
            yield action


def apply_config(parser: argparse.ArgumentParser, files: Sequence[Path]) -> None:
    """Set the flags' defaults from ``files`` (converted as the flag converts its text)."""
    actions: dict[str, list[argparse.Action]] = {}
    for action in _actions(parser):
        actions.setdefault(action.dest, []).append(action)
    for path in files:
        for dest, (text, number) in read_config(path).items():
            if dest.replace("_", "-") in IGNORED_KEYS:
                continue
            if dest not in actions or dest in ("help", "config"):
                raise ConfigError(f"{path}:{number}: {dest!r} is not a horde setting")
            for action in actions[dest]:
                action.default = _convert(action, text, f"{path}:{number}")
                action.required = False


def _convert(action: argparse.Action, text: str, where: str) -> object:
    if isinstance(action, argparse._StoreTrueAction):
        lowered = text.lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            raise ConfigError(f"{where}: {action.dest} takes true or false, got {text!r}")
        return lowered in ("true", "1", "yes", "on")
    if isinstance(action, argparse._AppendAction):  # --threshold: ';' apart
        return [v.strip() for v in text.split(";") if v.strip()]
    if action.nargs == "*":
        inner = text.strip("[]")
        return [v.strip().strip("'\"") for v in inner.split(",") if v.strip()]
    convert = action.type if callable(action.type) else str
    try:
        return convert(text.strip("'\""))
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not valid for {action.dest}") from None
