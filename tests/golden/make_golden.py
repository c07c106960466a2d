"""Writes the golden master run: a fixed timeline of worker frames and commands, and its outputs.

Run once on a known-good tree (``.venv/bin/python tests/golden/make_golden.py``): it writes
``timeline.msgpack`` (the input: frames from two horde workers, made by horde's own worker
stats recorder, and one Locust worker, made by Locust 2.47's ``RequestStats``, with its
clock fields fixed) and then, replaying it through :mod:`tests.test_golden`, the outputs
``*.golden``. The test replays the same timeline and compares byte for byte. Regenerate
the outputs only for an intended change of an answer, and say so in the commit.

Imports: msgpack, locust (a test dependency), horde.protocol, horde.worker, tests.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import msgpack

HERE = Path(__file__).resolve().parent
T0 = 1_700_000_000.0
RUN_ID = "run0000golden"


def _horde_frames() -> list[Any]:
    """The horde workers' frames, each ``[t, identity, bytes]``."""
    from horde.protocol import messages as m
    from horde.protocol.codec import encode
    from horde.worker.stats import RequestRecorder

    out: list[Any] = []
    recorders = {"h_1": RequestRecorder(), "h_2": RequestRecorder(exact_locust_buckets=True)}
    for worker in recorders:
        out.append([T0, worker, encode(m.ClientReady(worker))])
    seq = dict.fromkeys(recorders, 0)
    for sec in range(3, 9):
        for n, (worker, rec) in enumerate(recorders.items()):
            now = T0 + sec + 0.25 * n
            for i in range(40 + 7 * sec + n):
                t = now - 0.9 + i * 0.01
                rec.record("GET", "/", 1.0 + (i * 37 % 250) / 7.0, 512 + i, None, t)
                if i % 3 == 0:
                    rec.record("GET", "/items/[id]", 12.5 + i * 1.3, 2048, None, t)
                if i % 11 == 0:
                    rec.record("POST", "/login", 230.0 + i, 0, "HTTPError 500: boom", t)
                if i % 17 == 0:
                    rec.record("GET", "/slow", None, None, ConnectionError("reset"), t)
            seq[worker] += 1
            delta = rec.take_horde_delta(
                run_id=RUN_ID,
                epoch=0,
                seq=seq[worker],
                now=now,
                user_classes_count={"Reader": 2, "Writer": 1},
                user_count=3,
            )
            out.append([now, worker, encode(m.HordeStats(worker, delta))])
        if sec == 5:
            report = m.ExceptionReport("h_1", "ValueError: bad item", "Traceback...\nValueError")
            out.append([T0 + sec + 0.5, "h_1", encode(report)])
            out.append([T0 + sec + 0.6, "h_2", encode(m.Logs("h_2", ("line one", "line two")))])
    return out


def _locust_frames() -> list[Any]:
    """The Locust worker's frames, encoded by Locust's own message class."""
    from locust.rpc.protocol import Message
    from locust.stats import RequestStats

    stats = RequestStats()
    out: list[Any] = [[T0, "l_1", Message("client_ready", "2.47.0", "l_1").serialize()]]
    for sec in range(3, 9):
        now = T0 + sec + 0.6
        for i in range(30 + sec):
            stats.log_request("GET", "/", 3 + i * 7 % 90, 700)
            if i % 4 == 0:
                stats.log_request("GET", "/locust-only", 1500 + i, 10)
            if i % 9 == 0:
                stats.log_error("POST", "/login", "HTTPError 500: boom")
                stats.log_request("POST", "/login", 240, 0)
        data = {
            "stats": stats.serialize_stats(),
            "stats_total": stats.total.get_stripped_report(),
            "errors": stats.serialize_errors(),
            "user_classes_count": {"Reader": 1, "Writer": 1},
            "user_count": 2,
        }
        stats.errors = {}
        for error in data["errors"].values():
            error["first_seen"], error["last_seen"] = now - 0.8, now - 0.2
        for entry in [*data["stats"], data["stats_total"]]:  # the wall clock, fixed
            entry["start_time"] = now - 1.0
            entry["last_request_timestamp"] = now - 0.1 if entry["num_requests"] else None
            for key in ("num_reqs_per_sec", "num_fail_per_sec"):
                total = sum(entry[key].values())
                entry[key] = {int(now) - 1: total // 2, int(now): total - total // 2}
        out.append([now, "l_1", Message("stats", data, "l_1").serialize()])
    return out


def _heartbeats() -> list[Any]:
    """Every worker's heartbeat once a second (ready before the swarm, running after)."""
    from locust.rpc.protocol import Message

    from horde.protocol import messages as m
    from horde.protocol.codec import encode

    out: list[Any] = []
    for sec in range(12):
        state = "ready" if sec < 2 else "running"
        for n, worker in enumerate(("h_1", "h_2")):
            beat = m.WorkerHeartbeat(worker, state, 12.5 + n, 50_000_000, 3, 0.002, sec + 1)
            out.append([T0 + sec + 0.02, worker, encode(beat)])
        data = {"state": state, "current_cpu_usage": 40.0, "current_memory_usage": 1_000}
        out.append([T0 + sec + 0.03, "l_1", Message("heartbeat", data, "l_1").serialize()])
    return out


def timeline() -> list[Any]:
    """Frames and commands in time order: ``[t, kind, ...]``."""
    steps: list[Any] = [
        [t, "frame", w, raw] for t, w, raw in _horde_frames() + _locust_frames() + _heartbeats()
    ]
    steps.append([T0 + 1.0, "post", "/swarm", {"user_count": "8", "spawn_rate": "4"}])
    steps += [[T0 + s + 0.05, "tick"] for s in range(1, 12)]
    steps.append([T0 + 8.9, "capture", "running"])
    steps.append([T0 + 9.0, "post", "/stop", {}])
    steps.append([T0 + 9.5, "capture", "stopped"])
    steps.sort(key=lambda s: s[0])
    return steps


def main() -> int:
    """Write the timeline and, replaying it, the golden outputs."""
    sys.path.insert(0, str(HERE.parent.parent))
    from tests.test_golden import replay

    raw = msgpack.packb(timeline(), use_bin_type=True)
    (HERE / "timeline.msgpack").write_bytes(raw)
    for name, body in replay(msgpack.unpackb(raw, raw=False, strict_map_key=False)).items():
        (HERE / f"{name}.golden").write_bytes(body)
        print(f"wrote {name}.golden ({len(body)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
