"""Locust user-API pieces a ported script reaches for: MarkovTaskSet with @transition(s),
poisson waits, and run_single_user (a script run with plain python)."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest
from gevent.pool import Group

import horde
from horde.protocol.errors import ScriptError
from horde.worker.api.markov import (
    InvalidTransitionError,
    MarkovTaskTagError,
    NoMarkovTasksError,
    NonMarkovTaskTransitionError,
)
from horde.worker.api.users import User
from tests.fault_support import counting_target
from tests.test_users import make_env, wait_until


def test_a_markov_task_set_walks_its_chain_by_weight() -> None:
    """The first state starts; each step follows a transition, in proportion to weight."""
    walk: list[str] = []

    class Shop(horde.MarkovTaskSet):
        @horde.transition("browse", 3)
        @horde.transition("cart")
        def index(self) -> None:
            walk.append("index")

        @horde.transitions({"index": 1, "cart": 1})
        def browse(self) -> None:
            walk.append("browse")

        @horde.transitions(["index", ("browse", 1)])
        def cart(self) -> None:
            walk.append("cart")

    class Shopper(User):
        tasks = [Shop]

    random.seed(7)
    group = Group()
    Shopper(make_env()).start(group)
    wait_until(lambda: len(walk) >= 4000, timeout=20)
    group.kill()
    assert walk[0] == "index"
    after = Counter(b for a, b in pairwise(walk) if a == "index")
    assert set(after) == {"browse", "cart"}
    assert 2.5 < after["browse"] / after["cart"] < 3.5  # weights 3 : 1
    for a, b in pairwise(walk):
        assert b in {"index": {"browse", "cart"}, "browse": {"index", "cart"}}.get(
            a, {"index", "browse"}
        )


def test_a_markov_chain_that_cannot_run_is_refused_when_the_class_is_made() -> None:
    """No states, a transition to nothing or to a plain method, and tagged states fail."""
    with pytest.raises(NoMarkovTasksError):

        class Empty(horde.MarkovTaskSet):
            pass

    with pytest.raises(InvalidTransitionError, match="no such element"):

        class Nowhere(horde.MarkovTaskSet):
            @horde.transition("missing")
            def a(self) -> None: ...

    with pytest.raises(NonMarkovTaskTransitionError):

        class Plain(horde.MarkovTaskSet):
            @horde.transition("b")
            def a(self) -> None: ...

            def b(self) -> None: ...

    with pytest.raises(MarkovTaskTagError):

        class Tagged(horde.MarkovTaskSet):
            @horde.tag("x")
            @horde.transition("a")
            def a(self) -> None: ...

    assert issubclass(NoMarkovTasksError, ScriptError)

    class Base(horde.MarkovTaskSet):
        abstract = True  # a base class: never checked

    assert Base.abstract


def test_poisson_waits_average_the_inverse_rate() -> None:
    """poisson(rate) waits 1/rate on average, and varies."""
    random.seed(3)
    wait = horde.poisson(4.0)
    samples = [wait(None) for _ in range(20000)]
    assert 0.24 < sum(samples) / len(samples) < 0.26
    assert max(samples) > 3 * min(samples) * 100  # exponential, not constant
    with pytest.raises(ValueError, match="positive rate"):
        horde.poisson(0)


SINGLE_USER = textwrap.dedent(
    """
    from horde import HttpUser, StopUser, constant, run_single_user, task

    class Once(HttpUser):
        host = "{host}"
        wait_time = constant(0)
        count = 0

        @task
        def visit(self):
            Once.count += 1
            if Once.count > 3:
                raise StopUser()
            self.client.get("/item", name="/item/[id]")

    if __name__ == "__main__":
        run_single_user(Once, include_time=True)
    """
)


@pytest.mark.timeout(60)
def test_run_single_user_runs_one_user_with_plain_python_printing_each_request(
    tmp_path: Path,
) -> None:
    """`python script.py` with run_single_user makes the user's requests and prints them."""
    with counting_target() as target:
        script = tmp_path / "single.py"
        script.write_text(SINGLE_USER.format(host=target.url))
        done = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=45, check=False
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert target.total() == 3
    lines = [line for line in done.stdout.splitlines() if "/item/[id]" in line]
    assert len(lines) == 3 and all(line.startswith("GET") for line in lines)
    assert all(line.rstrip().endswith("200") for line in lines)


def test_log_lines_for_logs_name_their_level_as_locust_and_split_tracebacks() -> None:
    """/logs lines read `[time] process/WARNING/logger: message k=v`; a traceback follows
    as plain lines, so Locust's web UI flags the level and shows the trace."""
    from horde.logsetup import recent_lines

    try:
        raise ValueError("boom")
    except ValueError as exc:
        error = exc
    lines = recent_lines(
        {"event": "task failed", "level": "error", "timestamp": "12:00:00",
         "process": "worker", "logger": "horde.worker", "user": "A", "exc_info": error}
    )  # fmt: skip
    assert lines[0] == "[12:00:00] worker/ERROR/horde.worker: task failed user=A"
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: boom"
    warning = recent_lines({"event": "slow", "level": "warning", "timestamp": "t"})
    assert warning == ["[t] /WARNING/horde: slow"]
