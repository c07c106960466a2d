"""``-i/--iterations N`` on the master: the test ends once every worker's users stopped.

Responsibility: with ``-i``, each worker stops its users after N task iterations and, when
its last user has stopped, sends :data:`~horde.worker.api.iterations.DONE_MESSAGE`; this
module registers the master's handler for it, which stops the test once every worker
taking part has sent it (a headless run then ends as after ``-t``, its exit code by its
failures). The workers that sent it are forgotten when a test starts.

Imports: structlog and :mod:`horde.worker.api` (iterations, the environment's runner).
"""

from __future__ import annotations

from typing import Any

import structlog

from horde.worker.api.iterations import DONE_MESSAGE

__all__ = ["end_after_iterations"]

log = structlog.get_logger("horde.master")


def end_after_iterations(environment: Any, limit: int) -> None:
    """Stop each test once every worker reported its ``limit`` iterations done."""
    runner = environment.runner
    done: set[str] = set()

    def test_start(**_: Any) -> None:
        done.clear()

    def worker_done(msg: Any, **_: Any) -> None:
        done.add(msg.node_id)
        waiting = set(runner.clients) - done
        log.info("a worker ran its iterations", worker=msg.node_id, waiting=len(waiting))
        if not waiting:
            log.info("every worker ran its iterations; stopping the test", iterations=limit)
            runner.stop()

    environment.events.test_start.add_listener(test_start)
    runner.register_message(DONE_MESSAGE, worker_done)
