"""The layout check (.ci/check_layout.py): the tree obeys it, and each kind of violation fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKER = ROOT / ".ci" / "check_layout.py"

DOC = '"""A module."""\n'


def run_checker(root: Path) -> subprocess.CompletedProcess[str]:
    """Run the checker on ``root`` as ``make lint`` does."""
    return subprocess.run(
        [sys.executable, str(CHECKER), str(root)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def clean_tree(root: Path) -> Path:
    """A minimal tree that obeys every rule (the master imports the user API only)."""
    files = {
        "horde/__init__.py": DOC,
        "protocol/__init__.py": DOC,
        "protocol/codec.py": DOC + "import msgpack\nfrom . import errors\n",
        "protocol/errors.py": DOC,
        "master/__init__.py": DOC,
        "master/runtime.py": DOC
        + "from horde.worker.api.environment import Environment\n"
        + "from horde.worker import api\nfrom ..worker.api import users\nimport horde.protocol\n",
        "worker/__init__.py": DOC,
        "worker/agent.py": DOC + "import gevent\nfrom horde.worker.api import users\n",
        "worker/api/__init__.py": DOC,
        "worker/api/users.py": DOC + "from . import events\nfrom horde.worker.api.tasks import t\n",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_tree_obeys_the_layout() -> None:
    """The checkout itself has no layout violation."""
    result = run_checker(ROOT)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    """A tree whose master imports only horde.worker.api passes with no output."""
    result = run_checker(clean_tree(tmp_path))
    assert (result.returncode, result.stderr) == (0, "")


VIOLATIONS = [
    # (file, text, what the message must name)
    ("master/a.py", "import horde.worker.agent\n", "master/a.py:2: imports the worker runtime"),
    ("master/a.py", "from horde.worker import pool\n", "horde.worker.pool (the master"),
    ("master/a.py", "from horde.worker.transport import L\n", "horde.worker.transport"),
    ("master/a.py", "def f():\n    from horde.worker.config import X\n", "master/a.py:3:"),
    ("master/a.py", "from ..worker import outbox\n", "horde.worker.outbox (the master"),
    ("master/sub/__init__.py", "from ...worker.lease import Lease\n", "horde.worker.lease"),
    ("worker/api/u.py", "from ..stats import Recorder\n", "horde.worker.stats (the user API"),
    ("worker/api/u.py", "import horde.worker.agent\n", "worker/api/u.py:2: imports the worker"),
    ("protocol/p.py", "import zmq\n", "protocol/p.py:2: imports zmq"),
    ("protocol/p.py", "import gevent.event\n", "imports gevent (protocol/ is pure"),
    ("protocol/p.py", "from horde.master import registry\n", "imports horde.master"),
    ("protocol/p.py", "from ..worker import agent\n", "imports horde.worker"),
    ("protocol/p.py", "if True:\n    import zmq.green\n", "protocol/p.py:3: imports zmq"),
    ("worker/big.py", "x = 1\n" * 500, "worker/big.py: 501 lines, over the limit of 500"),
    ("horde/big.py", "x = 1\n" * 500, "horde/big.py: 501 lines"),
    ("master/nodoc.py", None, "master/nodoc.py: no module docstring"),
    ("protocol/nodoc.py", None, "protocol/nodoc.py: no module docstring"),
]


@pytest.mark.parametrize(("name", "text", "expected"), VIOLATIONS)
def test_each_violation_fails_naming_it(
    tmp_path: Path, name: str, text: str | None, expected: str
) -> None:
    """One violation in an otherwise clean tree makes the check fail with a line naming it."""
    root = clean_tree(tmp_path)
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("import os\n" if text is None else DOC + text)
    result = run_checker(root)
    assert result.returncode == 1
    problems = result.stderr.splitlines()
    assert len(problems) == 2, problems  # the violation and the summary line
    assert expected in problems[0]
    assert problems[1] == "layout check: 1 problem(s)"
