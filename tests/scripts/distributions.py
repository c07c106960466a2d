"""Seeded latency distributions recorded through the public ``events.request`` API.

Each user records every sample of :func:`samples` for its worker's seed
(``HORDE_TEST_SEED``) once, then idles. The accuracy test imports :func:`samples` too, to
compute the exact nearest-rank percentiles of what both workers recorded.
"""

from __future__ import annotations

import math
import os
import random

from horde import User, constant, task

SAMPLES = 20_000
"""Samples per distribution and worker."""


def samples(seed: int, count: int = SAMPLES) -> dict[str, list[float]]:
    """Response times in ms by entry name: lognormal, bimodal, sub-ms and multi-second."""
    rng = random.Random(seed)
    lognormal = [rng.lognormvariate(math.log(20.0), 1.0) for _ in range(count)]
    bimodal = [
        max(0.05, rng.gauss(5.0, 0.5) if rng.random() < 0.7 else rng.gauss(120.0, 10.0))
        for _ in range(count)
    ]
    sub_ms = [max(0.05, rng.lognormvariate(math.log(0.3), 0.35)) for _ in range(count)]
    multi_s = [rng.lognormvariate(math.log(3000.0), 0.5) for _ in range(count)]
    return {
        "lognormal": lognormal,
        "bimodal": bimodal,
        "submillisecond": sub_ms,
        "multisecond": multi_s,
    }


class Recorder(User):
    """Records its worker's samples once, then waits out the test."""

    wait_time = constant(3600)

    @task
    def record(self) -> None:
        fire = self.environment.events.request.fire
        for name, values in samples(int(os.environ["HORDE_TEST_SEED"])).items():
            for ms in values:
                fire(
                    request_type="SAMPLE",
                    name=name,
                    response_time=ms,
                    response_length=0,
                    response=None,
                    context={},
                    exception=None,
                    start_time=0.0,
                    url=None,
                )
