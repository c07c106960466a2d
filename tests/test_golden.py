"""Golden outputs: one deterministic master run replayed, every answer compared byte for byte.

The input (``tests/golden/timeline.msgpack``, written by ``tests/golden/make_golden.py``)
is a fixed sequence of frames from two horde workers and a Locust worker, with the
commands and clock ticks between them. It is fed to a real coordinator through the
receive loop's own batch handler on an injected clock, and the HTTP answers a user reads
(``/stats/requests``, the CSV downloads, ``/metrics``, ``/exceptions``, ``/logs``,
``/stats/history``) are captured while the test runs and after it stopped. A refactor
that changes none of horde's behaviour leaves every byte as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgpack
import pytest

from horde.master.config import MasterSettings
from horde.master.coordinator import Coordinator
from horde.master.dispatch import UserClassSpec
from horde.master.http import create_app
from horde.master.loops import MasterLoops
from horde.master.transport import RouterTransport

GOLDEN = Path(__file__).resolve().parent / "golden"
RUN_ID = "run0000golden"
ROUTES = (
    ("stats_requests", "/stats/requests"),
    ("requests_csv", "/stats/requests/csv"),
    ("failures_csv", "/stats/failures/csv"),
    ("exceptions_csv", "/exceptions/csv"),
    ("metrics", "/metrics"),
    ("exceptions", "/exceptions"),
    ("logs", "/logs"),
    ("history", "/stats/history"),
)


def replay(steps: list[Any]) -> dict[str, bytes]:
    """Run ``steps`` through a fresh master; return each captured answer by name."""
    clock = [steps[0][0]]
    coordinator = Coordinator(
        MasterSettings(host="http://127.0.0.1:9", max_names=4),
        [UserClassSpec("Reader", 3, 0), UserClassSpec("Writer", 1, 0)],
        lambda worker, message: None,
        new_run_id=lambda: RUN_ID,
        started_at=clock[0],
    )
    transport = RouterTransport("tcp://127.0.0.1:0", max_frame=1 << 20)  # never opened
    loops = MasterLoops(coordinator, [transport], clock=lambda: clock[0])
    http = create_app(loops).test_client()
    captured: dict[str, bytes] = {}
    for step in steps:
        clock[0] = step[0]
        kind = step[1]
        if kind == "frame":
            loops.handle_batch([[step[2].encode(), step[3]]], transport)
        elif kind == "post":
            answer = http.post(step[2], data=step[3])
            assert answer.status_code == 200, answer.data
        elif kind == "tick":
            coordinator.sweep(clock[0])
            coordinator.tick(clock[0])
        else:
            for name, route in ROUTES:
                answer = http.get(route)
                assert answer.status_code == 200, (route, answer.data)
                captured[f"{step[2]}_{name}"] = answer.data
    return captured


def _timeline() -> list[Any]:
    raw = (GOLDEN / "timeline.msgpack").read_bytes()
    return msgpack.unpackb(raw, raw=False, strict_map_key=False)


def _names() -> list[str]:
    return sorted(p.stem for p in GOLDEN.glob("*.golden"))


@pytest.fixture(scope="module")
def outputs() -> dict[str, bytes]:
    """The answers of one replay of the golden timeline."""
    return replay(_timeline())


def test_golden_set_is_complete(outputs: dict[str, bytes]) -> None:
    """The replay captures exactly the answers that have golden files, and they are many."""
    assert sorted(outputs) == _names()
    assert len(outputs) == 2 * len(ROUTES)


@pytest.mark.parametrize("name", _names())
def test_answer_is_byte_identical(outputs: dict[str, bytes], name: str) -> None:
    """Each captured answer is byte for byte the recorded one."""
    expected = (GOLDEN / f"{name}.golden").read_bytes()
    assert outputs[name] == expected
