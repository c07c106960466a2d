"""Loads a user script (a locustfile) and finds the user and shape classes it offers.

A script is imported from its path under a fresh module name, so two loads never share
state, and its directory is put on ``sys.path`` so it can import its sibling modules (as
Locust does). Every failure is a :class:`ScriptError` whose message names the file and
carries the original error text.

Imports: the standard library, ``horde.worker.api`` and ``horde.protocol``.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import itertools
import os
import re
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar, cast

from horde.protocol.errors import ScriptError
from horde.worker.api.users import LoadTestShape, User

_module_numbers = itertools.count(1)
C = TypeVar("C", bound=type[Any])


@dataclass(frozen=True)
class LoadedScript:
    """A loaded script: its module, its classes by name, and its source text."""

    module: ModuleType
    user_classes: dict[str, type[User]]
    shape_classes: dict[str, type[LoadTestShape]]
    source: str
    path: str


def load_script(path: str | os.PathLike[str]) -> LoadedScript:
    """Import the script at ``path`` and collect its non-abstract User and shape classes.

    Raises :class:`ScriptError` if the file is missing or unreadable, fails to import
    (syntax error, failing import, exception at import time), or defines no user class.
    """
    script = Path(path).resolve()
    if not script.is_file():
        raise ScriptError(f"script not found: {path}")
    try:
        source = script.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError(f"cannot read script {script}: {exc}") from exc
    module = _import(script)
    user_classes = _classes_of(module, User, script)
    if not user_classes:
        raise ScriptError(
            f"no user classes in {script}: define a subclass of horde.User or horde.HttpUser"
            " that is not marked abstract"
        )
    shape_classes = _classes_of(module, LoadTestShape, script)
    for name, shape in shape_classes.items():
        if shape.tick is LoadTestShape.tick:
            raise ScriptError(f"load shape {name} in {script} does not define tick()")
    return LoadedScript(module, user_classes, shape_classes, source, str(script))


def load_source(filename: str, contents: str) -> LoadedScript:
    """Load a script received as text (from the master): written to a fresh temporary
    directory under the base name of ``filename``, then loaded as :func:`load_script`."""
    base = re.split(r"[\\/]", filename)[-1]
    base = re.sub(r"[^\w.-]", "_", base).lstrip(".") or "locustfile.py"
    if not base.endswith(".py"):
        base += ".py"
    target = Path(tempfile.mkdtemp(prefix="horde-script-")) / base
    target.write_text(contents, encoding="utf-8")
    return load_script(target)


def _import(script: Path) -> ModuleType:
    stem = re.sub(r"\W", "_", script.stem)
    name = f"horde_script_{stem}_{next(_module_numbers)}"
    loader = importlib.machinery.SourceFileLoader(name, str(script))
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None  # spec_from_loader only fails without a loader
    module = importlib.util.module_from_spec(spec)
    directory = str(script.parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    sys.modules[name] = module
    try:
        loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[name]
        raise ScriptError(f"syntax error in {script}, line {exc.lineno}: {exc.msg}") from exc
    except (Exception, SystemExit) as exc:
        del sys.modules[name]
        where = _line_in(script, exc)
        raise ScriptError(f"error importing {script}{where}: {type(exc).__name__}: {exc}") from exc
    return module


def _line_in(script: Path, exc: BaseException) -> str:
    """`` (line N)`` for the deepest frame of ``exc`` that is in the script, if any."""
    lines = [
        frame.lineno
        for frame in traceback.extract_tb(exc.__traceback__)
        if frame.filename == str(script)
    ]
    return f" (line {lines[-1]})" if lines else ""


def _classes_of(module: ModuleType, base: C, script: Path) -> dict[str, C]:
    found: dict[str, C] = {}
    for value in vars(module).values():
        if not (isinstance(value, type) and issubclass(value, base)):
            continue
        if getattr(value, "abstract", False):
            continue
        other = found.get(value.__name__)
        if other is not None and other is not value:
            raise ScriptError(f"two classes named {value.__name__} in {script}: rename one of them")
        found[value.__name__] = cast(C, value)
    return found
