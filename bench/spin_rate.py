"""Iterations a second of a user that never waits, on one horde worker and under Locust.

The user (``@task def t(self): pass``, no ``wait_time``) is the one issue 17 is about: it
spins its worker's event loop. The same script, with ``locust`` or ``horde`` in its import,
counts its iterations and prints the count and the seconds since the first at
``test_stop``. Each round runs ``horde run -f ... --headless -u 2 -r 2 -t 8s --workers 1``
and ``locust -f ... --headless -u 2 -r 2 -t 8s``, alternating, and the script prints every
run, the medians and their ratio, and whether any horde run logged a lease expiry (it
must not). horde's figure includes its stop, so it errs low.

Run ``.venv/bin/python bench/spin_rate.py`` (``--rounds``, ``--seconds``); wrap it in
``flock /tmp/horde-bench.lock`` on shared machines.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent
SCRIPT = """import time
from {module} import User, events, task

N = [0]
T0 = []


class U(User):
    @task
    def t(self):
        if not T0:
            T0.append(time.monotonic())
        N[0] += 1


@events.test_stop.add_listener
def _report(environment, **kw):
    if T0:
        secs = time.monotonic() - T0[0]
        print(f"ITERATIONS {{N[0]}} {{secs:.3f}}", flush=True)
"""
COUNT = re.compile(r"ITERATIONS (\d+) ([0-9.]+)")


def one(cmd: list[str], timeout: float) -> tuple[float | None, str]:
    """Run ``cmd``; return the iterations a second it printed (None: none) and its output."""
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    text = out.stdout + out.stderr
    found = COUNT.findall(text)
    rate = sum(int(n) for n, _ in found) / max(float(s) for _, s in found) if found else None
    return rate, text


def main(argv: list[str] | None = None) -> int:
    """Run the rounds; print the figures; exit 1 if a horde run lost its lease or failed."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=int, default=8, help="run time of each run")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="horde-spin-"))
    (tmp / "spin_horde.py").write_text(SCRIPT.format(module="horde"))
    (tmp / "spin_locust.py").write_text(SCRIPT.format(module="locust"))
    common = ["--headless", "-u", "2", "-r", "2", "-t", f"{args.seconds}s"]
    horde_cmd = [str(BIN / "horde"), "run", "-f", str(tmp / "spin_horde.py"), *common]
    horde_cmd += ["--workers", "1", "--web-port", "0"]
    locust_cmd = [str(BIN / "locust"), "-f", str(tmp / "spin_locust.py"), *common]
    locust_cmd += ["--only-summary"]
    rates: dict[str, list[float]] = {"horde": [], "locust": []}
    bad = 0
    limit = args.seconds + 60
    for k in range(args.rounds):
        for name, cmd in (("horde", horde_cmd), ("locust", locust_cmd)):
            rate, text = one(cmd, limit)
            expired = name == "horde" and "lease expired" in text
            bad += rate is None or expired
            print(f"round {k + 1} {name}: {rate or 0:,.0f} iterations/s, lease expired: {expired}")
            if rate is not None:
                rates[name].append(rate)
    if rates["horde"] and rates["locust"]:
        h, lo = statistics.median(rates["horde"]), statistics.median(rates["locust"])
        print(f"median: horde {h:,.0f}/s, Locust {lo:,.0f}/s, ratio {h / lo:.2f}x")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
