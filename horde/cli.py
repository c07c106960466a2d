"""The ``horde`` command: ``run``, ``master``, ``worker``, ``demo`` and ``target``.

The only place that reads ``os.environ`` and monkey-patches: it parses flags (each flag
can also come from a ``HORDE_*`` environment variable, e.g. ``HORDE_USERS=50``, and its
``--help`` line names it), configures logging, and hands the namespace to
``horde.commands``, which turns it into frozen settings (``horde.settings``) at once.
The flags themselves, with their defaults, are listed in ``horde.flags``.

Imports: everything (it is the entry point).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from horde import logsetup
from horde.configfile import apply_config, config_files
from horde.flags import COMMANDS, LOGGING
from horde.protocol.errors import HordeError, InitListenerError, ScriptError
from horde.scriptargs import ScriptArguments
from horde.settings import log_settings

__all__ = ["build_parser", "main"]

EPILOG = """\
examples:
  horde run -f locustfile.py --headless -u 100 -r 10 -t 1m -H http://127.0.0.1:8080
  horde keygen keys     # CURVE keys: the master refuses to listen beyond loopback without them
  horde master -f locustfile.py --secret-key keys/master.key_secret --allow-keys keys/workers
  horde worker --master 10.0.0.5 --master-key keys/master.key --secret-key keys/worker.key_secret
  horde demo

Every flag can also be set with an environment variable, named in each command's --help:
HORDE_ and the flag's name in capitals with dashes as underscores (HORDE_USERS=100,
HORDE_MASTER=10.0.0.5:5557); a flag given on the command line wins.
"""


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; each flag's help names its environment variable."""
    from horde import __version__

    parser = argparse.ArgumentParser(
        prog="horde",
        description="horde: a distributed load generator that speaks Locust's protocol.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"horde {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, summary, description, options in COMMANDS:
        command = sub.add_parser(name, help=summary, description=description)
        for flags, kwargs in [*options, *LOGGING]:
            action = command.add_argument(*flags, **kwargs)
            if action.option_strings:  # a positional argument has no variable
                action.help = f"{action.help} [env {env_name(action)}]"
    return parser


def env_name(action: argparse.Action) -> str:
    """The ``HORDE_*`` variable that sets a flag's default: ``--spawn-rate`` -> HORDE_SPAWN_RATE."""
    return f"HORDE_{action.dest.upper()}"


def apply_env(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Let ``HORDE_<FLAG>`` variables set the defaults of every subcommand's flags."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                apply_env(subparser, environ)
            continue
        if not action.option_strings or action.dest in ("help", "version"):
            continue
        value = environ.get(env_name(action))
        if value is None:
            continue
        if isinstance(action, argparse._StoreTrueAction):
            action.default = value.strip().lower() in ("1", "true", "yes", "on")
        elif action.nargs == "*":
            action.default = value.split(",") if value else []
        elif isinstance(action, argparse._AppendAction):  # --threshold: ';' or lines apart
            action.default = [v.strip() for v in value.replace(";", "\n").splitlines() if v.strip()]
        else:
            convert = action.type if callable(action.type) else str
            try:
                action.default = convert(value)
            except ValueError:
                parser.error(
                    f"{env_name(action)}={value!r} is not valid for {action.option_strings[-1]}"
                )
        action.required = False


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    from gevent import monkey

    monkey.patch_all()  # before anything imports socket, ssl or threading users
    parser = build_parser()
    arguments = attach_key_values(sys.argv[1:] if argv is None else argv)
    try:
        # config files, then HORDE_* variables, then the command line: later wins
        apply_config(parser, config_files(arguments, Path.cwd(), os.environ.get("HORDE_CONFIG")))
        apply_env(parser, os.environ)
        # the script first, so its init_command_line_parser listeners add their options
        script, script_args = preload(parser, arguments)
        args = parser.parse_args(arguments)
        if args.command == "worker" and args.processes is not None:  # Locust's worker fork
            from horde.forked import process_count, run_worker_processes

            return run_worker_processes(process_count(args.processes), arguments)
        from horde import commands

        logs = log_settings(args)
        logsetup.configure(logs, args.command)
        options = script_args.options(args) if script_args is not None else ()
        return commands.dispatch(args, logs, commands.Preloaded(script, options))
    except (ScriptError, InitListenerError) as exc:  # the script's fault: 1, as in Locust
        print(f"horde: error: {exc}", file=sys.stderr)
        return 1
    except HordeError as exc:
        print(f"horde: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


KEY_FLAGS = ("--secret-key", "--master-key", "--allow-keys")
"""The flags whose value may be a Z85 key, and a Z85 key may begin with ``-``."""

Z85_KEY_LENGTH = 40


def attach_key_values(arguments: Sequence[str]) -> list[str]:
    """``--master-key -xyz...`` as ``--master-key=-xyz...``: argparse would read a 40-character
    Z85 key that begins with ``-`` (one key in 85) as an unknown option, so join it to its flag."""
    joined: list[str] = []
    for token in arguments:
        if joined and joined[-1] in KEY_FLAGS and _dashed_key(token):
            joined[-1] = f"{joined[-1]}={token}"
        else:
            joined.append(token)
    return joined


def _dashed_key(token: str) -> bool:
    return token.startswith("-") and len(token) == Z85_KEY_LENGTH


SCRIPT_COMMANDS = ("run", "master", "worker")
"""The commands that load a user script from ``-f`` before parsing the rest."""


def preload(
    parser: argparse.ArgumentParser, arguments: Sequence[str]
) -> tuple[Any, ScriptArguments | None]:
    """Load ``-f``'s script and let its ``init_command_line_parser`` listeners add their
    options to the command's parser (as Locust does); ``(None, None)`` without one."""
    known, _ = parser.parse_known_args(arguments)
    path = getattr(known, "locustfile", None)
    if known.command not in SCRIPT_COMMANDS or not path:
        return None, None
    import horde
    from horde.worker.api.loader import load_script

    script = load_script(path)
    script_args = ScriptArguments(subparser(parser, known.command), os.environ)
    horde.events.init_command_line_parser.fire(parser=script_args)
    return script, script_args


def subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of subcommand ``name``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: argparse.ArgumentParser = action.choices[name]
            return found
    raise KeyError(name)
