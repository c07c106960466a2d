"""The highest arrival rate one horde worker (one core) sustains within 1%.

Each trial runs ``horde run -f SCRIPT --headless --workers 1 --arrival-rate R -t Ns
--csv PREFIX`` and reads ``PREFIX_arrivals.csv``: the rate is sustained when the
iterations started are within 1% of those scheduled (the rest were dropped: no free user
within ``--max-start-delay`` of their due time). The iteration is an empty task, so the
figure is the cost of the arrival-rate machinery itself (grants, the scheduler, handing
an iteration to a pooled user and timing it), not of an HTTP client or a target. The
rate doubles from ``--start`` until a trial fails, then is bisected ``--steps`` times.

Run ``.venv/bin/python bench/arrival_rate.py`` (``--seconds``, ``--pool``); wrap it in
``flock /tmp/horde-bench.lock`` on shared machines.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPT = """from horde import User, task


class Empty(User):
    @task
    def nothing(self):
        pass
"""


def trial(rate: float, seconds: int, pool: int, folder: Path) -> tuple[int, int, int]:
    """One run at ``rate``: (scheduled, started, dropped) from its arrivals CSV."""
    script = folder / "empty.py"
    script.write_text(SCRIPT)
    prefix = folder / f"r{int(rate)}"
    command = [sys.executable, "-m", "horde", "run", "-f", str(script), "--headless"]
    command += ["--workers", "1", "--web-port", "0", "--only-summary", "--arrival-pool"]
    command += [str(pool), "--arrival-rate", str(rate), "-t", f"{seconds}s"]
    command += ["--csv", str(prefix)]
    subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    with open(f"{prefix}_arrivals.csv", encoding="utf-8") as fh:
        row = next(r for r in csv.DictReader(fh) if r["User class"] == "Total")
    return int(row["Scheduled"]), int(row["Started"]), int(row["Dropped"])


def sustained(rate: float, seconds: int, pool: int, folder: Path) -> bool:
    """Whether one worker starts ``rate`` iterations a second within 1%; prints the trial."""
    scheduled, started, dropped = trial(rate, seconds, pool, folder)
    ok = scheduled > 0 and started >= 0.99 * scheduled
    ratio = started / scheduled if scheduled else 0.0
    print(
        f"{rate:>9.0f}/s: scheduled {scheduled}, started {started} ({ratio:.2%}),"
        f" dropped {dropped}: {'sustained' if ok else 'not sustained'}",
        flush=True,
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    """Search for the highest sustained rate and print it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=float, default=2000.0)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--pool", type=int, default=100)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        low, high = 0.0, args.start
        while sustained(high, args.seconds, args.pool, folder):
            low, high = high, high * 2
        for _ in range(args.steps):
            middle = (low + high) / 2
            if sustained(middle, args.seconds, args.pool, folder):
                low = middle
            else:
                high = middle
    print(f"highest rate one worker sustains within 1%: {low:.0f} iterations/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
