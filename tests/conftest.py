"""Suite-wide settings: keep Locust (a test peer) from monkey-patching the test process,
and make any skipped test fail the run under CI (CI can install everything); the
``shared_dir`` fixture (a folder other users may enter)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Importing locust calls gevent.monkey.patch_all() unless told not to; horde's tests
# import it only to read its wire format and must keep the process unpatched.
os.environ.setdefault("LOCUST_SKIP_MONKEY_PATCH", "1")

_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember skipped tests."""
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI=true a skip is a failure: CI has everything a test needs."""
    if os.environ.get("CI") == "true" and _skipped:
        print(f"\nskipped under CI (not allowed): {', '.join(_skipped)}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder every user may enter (pytest's tmp_path is private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="horde-shared-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)
