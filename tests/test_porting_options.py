"""A script's own command-line options (init_command_line_parser): parsed on the master
from flags and variables, sent to the workers, accepted by /swarm, shown in the
dashboard's config and listed in /openapi.json; the same values as under Locust."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from horde.master.forms import FieldError, parse_swarm
from horde.master.openapi import document
from horde.protocol.options import ScriptOption
from tests.fault_support import SCRIPTS, counting_target
from tests.support import (
    as_locust_script,
    probe_env,
    run_locust_fleet,
)

FLAGS = ["--my-argument", "hello", "--my-level", "3", "--my-flag"]


def seen(log: Path) -> dict[str, set[str]]:
    """Every value noted, by option name."""
    values: dict[str, set[str]] = {}
    for line in log.read_text().splitlines():
        name, value = line.split(" ", 1)[1].split("=", 1)
        values.setdefault(name, set()).add(value)
    return values


@pytest.mark.process
@pytest.mark.timeout(120)
def test_script_options_reach_both_sides_with_the_values_locust_gives(tmp_path: Path) -> None:
    """horde run and a Locust master + worker: master and workers see the flags' values
    and the env_var's, the same under both."""
    horde_log, locust_log = tmp_path / "horde.log", tmp_path / "locust.log"
    locust_script = as_locust_script(SCRIPTS / "options_probe.py", tmp_path)
    with counting_target() as target:
        command = [sys.executable, "-m", "horde", "run", "-f", str(SCRIPTS / "options_probe.py")]
        command += ["--headless", "-u", "1", "-r", "10", "-t", "2s", "--workers", "1"]
        command += ["--web-port", "0", "-H", target.url, *FLAGS]
        done = subprocess.run(
            command,
            env=probe_env(horde_log, PROBE_MY_ENV="from-env"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        flags = ["-u", "1", "-r", "10", "-t", "2s", *FLAGS]
        env = probe_env(locust_log, PROBE_MY_ENV="from-env")
        assert run_locust_fleet(locust_script, target.url, flags, env)[0] == 0
    horde_values = seen(horde_log)
    assert horde_values == {
        "my_argument": {"hello"},
        "my_level": {"3"},
        "my_flag": {"True"},
        "my_env": {"from-env"},
    }
    assert horde_values == seen(locust_log)


OPTIONS = (
    ScriptOption("my_argument", "hello", "unset", "str", "a word"),
    ScriptOption("my_level", 3, 1, "int", "a level", choices=(1, 2, 3)),
    ScriptOption("my_flag", False, False, "bool"),
    ScriptOption("my_secret", "s3", "s3", "str", is_secret=True),
)


def test_swarm_takes_the_scripts_options_converted_to_their_type() -> None:
    """/swarm fields named as the options are run options; a bad value names its field;
    an empty secret keeps the master's value."""
    request = parse_swarm(
        {
            "user_count": "1",
            "my_level": "2",
            "my_flag": "true",
            "my_secret": "",
            "my_argument": None,
        },
        script_options=OPTIONS,
    )
    assert request.options == {"my_level": 2, "my_flag": True}
    with pytest.raises(FieldError, match="my_level must be one of") as caught:
        parse_swarm({"user_count": "1", "my_level": "7"}, script_options=OPTIONS)
    assert caught.value.field == "my_level"
    with pytest.raises(FieldError, match="'my_other' is not a /swarm field"):
        parse_swarm({"user_count": "1", "my_other": "x"}, script_options=OPTIONS)


def test_openapi_lists_the_scripts_options_as_swarm_fields() -> None:
    """Each option is a SwarmRequest property with its JSON type and choices."""
    schemas = document(script_options=OPTIONS)["components"]["schemas"]
    fields = schemas["SwarmRequest"]["properties"]
    assert fields["my_level"]["type"] == "integer"
    assert fields["my_level"]["enum"] == [1, 2, 3, None]  # JSON's null: not given
    assert "my_argument" in fields and "my_flag" in fields
    assert "my_argument" in schemas["SwarmForm"]["properties"]


def test_the_dashboard_config_offers_the_options_with_secrets_masked() -> None:
    """/ui-config's extra_options: each option shown in the web UI, a secret without value."""
    from horde.master.config import MasterSettings
    from horde.master.coordinator import Coordinator
    from horde.master.dispatch import UserClassSpec
    from horde.master.http import create_app
    from horde.master.loops import MasterLoops
    from horde.master.transport import RouterTransport

    hidden = ScriptOption("internal", 1, 1, "int", include_in_web_ui=False)
    settings = MasterSettings(script_options=(*OPTIONS, hidden))
    coordinator = Coordinator(settings, [UserClassSpec("A", 1, 0)], lambda i, msg: None)
    loops = MasterLoops(coordinator, [RouterTransport("tcp://127.0.0.1:0", max_frame=1024)])
    extra = create_app(loops).test_client().get("/ui-config").json["extra_options"]
    assert sorted(extra) == ["my_argument", "my_flag", "my_level", "my_secret"]
    assert extra["my_argument"]["value"] == "hello" and extra["my_level"]["choices"] == [1, 2, 3]
    assert extra["my_secret"] == {
        "value": None, "help": "", "choices": None, "kind": "str", "is_secret": True,
    }  # fmt: skip


def test_locusts_option_keywords_are_accepted() -> None:
    """is_multiple, is_required, is_secret, include_in_web_ui and a boolean default, as in
    Locust's own example: every option lands, none stops the others."""
    import argparse

    from horde.scriptargs import ScriptArguments

    parser = argparse.ArgumentParser()
    arguments = ScriptArguments(parser, {"LOCUST_MY_ARGUMENT": "from-env"})
    arguments.add_argument("--my-argument", type=str, env_var="LOCUST_MY_ARGUMENT", default="")
    arguments.add_argument("--endpoints", choices=["a", "b"], is_multiple=True, default=["a"])
    arguments.add_argument("--hidden", include_in_web_ui=False, default="x")
    arguments.add_argument("--box", default=True)
    arguments.add_argument("--needed", is_required=True, default="y")
    options = {o.name: o for o in arguments.options(parser.parse_args([]))}
    assert options["my_argument"].value == "from-env"
    assert options["box"].kind == "bool" and not options["hidden"].include_in_web_ui
    assert sorted(options) == ["box", "endpoints", "hidden", "my_argument", "needed"]
