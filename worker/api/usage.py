"""The process's CPU and memory, reported to the script as Locust reports them.

Every :data:`CPU_MONITOR_INTERVAL` seconds, on the master and on each worker,
``usage_monitor(environment, cpu_usage, memory_usage)`` fires; while the process's CPU is
above :data:`CPU_WARNING_THRESHOLD` percent, ``cpu_warning(environment, cpu_usage,
message, timestamp)`` fires too, and the first time a warning is logged (a load generator
short of CPU measures itself, not the target).

Imports: the standard library, gevent, psutil and structlog.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gevent
import psutil
import structlog

__all__ = ["CPU_MONITOR_INTERVAL", "CPU_WARNING_THRESHOLD", "monitor_usage"]

log = structlog.get_logger("horde")

CPU_MONITOR_INTERVAL = 10.0
"""Seconds between two ``usage_monitor`` events (Locust's value)."""
CPU_WARNING_THRESHOLD = 90.0
"""CPU percent above which ``cpu_warning`` fires (Locust's value)."""


def usage_now(process: Any) -> tuple[float, int]:
    """The process's CPU percent since the last call, and its resident memory in bytes."""
    try:
        return float(process.cpu_percent(None)), int(process.memory_info().rss)
    except psutil.Error:
        return 0.0, 0


def report_usage(environment: Any, cpu: float, memory: int, warned: bool, now: float) -> bool:
    """Fire the events for one measurement; return whether a warning was ever logged."""
    events = environment.events
    events.usage_monitor.fire(environment=environment, cpu_usage=cpu, memory_usage=memory)
    if cpu > CPU_WARNING_THRESHOLD:
        message = (
            f"CPU usage above {CPU_WARNING_THRESHOLD:g}%! This may constrain your throughput"
            " and may even give inconsistent response time measurements!"
        )
        events.cpu_warning.fire(
            environment=environment, cpu_usage=cpu, message=message, timestamp=now
        )
        if not warned:
            log.warning("cpu usage high", cpu_usage=round(cpu, 1), threshold=CPU_WARNING_THRESHOLD)
        return True
    return warned


def monitor_usage(
    environment: Any,
    interval: float = CPU_MONITOR_INTERVAL,
    clock: Callable[[], float] = time.time,
) -> None:
    """Measure and report forever (run it in a greenlet)."""
    process = psutil.Process()
    usage_now(process)
    warned = False
    while True:
        gevent.sleep(interval)
        cpu, memory = usage_now(process)
        warned = report_usage(environment, cpu, memory, warned, clock())
