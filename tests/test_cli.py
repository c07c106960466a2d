"""The command line: flags, HORDE_* environment variables and address parsing (no processes)."""

from __future__ import annotations

import pytest

from horde.cli import apply_env, attach_key_values, build_parser
from horde.protocol.errors import ConfigError
from horde.worker.config import parse_master_address


def parse(argv: list[str], environ: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    parser = build_parser()
    apply_env(parser, environ or {})
    return parser.parse_args(argv)


def test_flags_have_locust_like_defaults() -> None:
    """`horde run -f x` gets 1 user/s, web port 8089 and one worker per core by default."""
    args = parse(["run", "-f", "x.py"])
    assert (args.spawn_rate, args.web_port, args.headless) == (1.0, 8089, False)
    assert args.workers >= 1


def test_environment_variables_set_defaults_and_flags_win() -> None:
    """HORDE_* variables set defaults with the flag's type; an explicit flag still wins."""
    env = {
        "HORDE_USERS": "50",
        "HORDE_SPAWN_RATE": "2.5",
        "HORDE_HEADLESS": "true",
        "HORDE_LOCUSTFILE": "s.py",
        "HORDE_LOG_FORMAT": "json",
    }
    args = parse(["run"], env)
    assert (args.users, args.spawn_rate, args.headless, args.locustfile) == (50, 2.5, True, "s.py")
    assert args.log_format == "json"
    assert parse(["run", "-u", "7"], env).users == 7


def test_environment_lists_and_worker_flags() -> None:
    """List flags split on commas; the worker's master address comes from HORDE_MASTER."""
    args = parse(["worker"], {"HORDE_TAGS": "a,b", "HORDE_MASTER": "10.0.0.5:6000"})
    assert args.tags == ["a", "b"]
    assert args.master == "10.0.0.5:6000"


def test_bad_environment_value_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A variable that does not convert stops with a message naming it."""
    with pytest.raises(SystemExit):
        parse(["run", "-f", "x"], {"HORDE_USERS": "lots"})
    assert "HORDE_USERS='lots'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("host", ("host", 5557)),
        ("host:6000", ("host", 6000)),
        ("tcp://1.2.3.4:7", ("1.2.3.4", 7)),
        ("[::1]:5000", ("::1", 5000)),
        ("[::1]", ("::1", 5557)),
    ],
)
def test_master_addresses(text: str, expected: tuple[str, int]) -> None:
    """--master accepts HOST, HOST:PORT, [IPv6]:PORT and tcp:// forms."""
    assert parse_master_address(text) == expected


@pytest.mark.parametrize("text", ["", ":5557", "host:port", "host:0", "host:70000"])
def test_bad_master_addresses(text: str) -> None:
    """Unusable --master values raise ConfigError quoting them."""
    with pytest.raises(ConfigError):
        parse_master_address(text)


def test_a_z85_key_that_begins_with_a_dash_is_read_as_the_flag_value() -> None:
    """One Z85 key in 85 begins with ``-``; argparse alone takes it for an option and fails
    with "expected one argument". Both key flags accept it, spaced or with ``=``."""
    import zmq

    public = next(p for p, _ in iter(zmq.curve_keypair, None) if p.startswith(b"-")).decode()
    secret = next(s for _, s in iter(zmq.curve_keypair, None) if s.startswith(b"-")).decode()
    argv = ["worker", "--master-key", public, "--secret-key", secret, "-f", "x.py"]
    args = build_parser().parse_args(attach_key_values(argv))
    assert (args.master_key, args.secret_key, args.locustfile) == (public, secret, "x.py")
    master = ["master", "-f", "x.py", "--secret-key", secret, "--allow-keys", public]
    args = build_parser().parse_args(attach_key_values(master))
    assert (args.secret_key, args.allow_keys) == (secret, public)
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)  # what the join is for
    assert attach_key_values(["worker", f"--master-key={public}"]) == [
        "worker",
        f"--master-key={public}",
    ]
    # only a 40-character value is joined: a missing value still reads as one
    assert attach_key_values(["worker", "--master-key", "--insecure"]) == [
        "worker",
        "--master-key",
        "--insecure",
    ]
    assert attach_key_values(["worker", "--master-key"]) == ["worker", "--master-key"]
