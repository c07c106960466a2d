"""``horde.user.wait_time``: the wait-time functions, as in ``locust.user.wait_time``.

Imports: the user API.
"""

from __future__ import annotations

from horde.worker.api.wait import between, constant, constant_pacing, constant_throughput, poisson

__all__ = ["between", "constant", "constant_pacing", "constant_throughput", "poisson"]
