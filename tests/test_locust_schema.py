"""The typed schema that decodes Locust reports fast gives what the general decoder gives."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import msgpack
import pytest

from horde.protocol import codec
from horde.protocol import messages as m
from horde.protocol.codec import decode_upstream, decode_upstream_many, encode, encode_raw
from horde.protocol.errors import ProtocolError
from horde.protocol.locust_schema import typed_reports
from tests.test_locust_ingest import reports

GOLDEN = Path(__file__).resolve().parent / "golden" / "timeline.msgpack"

_ODD: list[Any] = [None, True, False, -1, 0, 7, 2**63 - 1, 2**63, 2**64 - 1, -(2**63)]
_ODD += [0.0, -0.0, 1.5, -1.5, float("nan"), float("inf"), 1e300, "x", "", b"y", [], [1], {}]
_ODD += [{1: 2}, {"a": 1}, {"5": 1}, {-1: 1}, {1: -1}, {True: 1}, {1: True}, {1: 1.0}]
_ODD += [{2**63: 1}, {1: 2**63}, {1.5: 1}, {"name": "x"}]


def _real_locust_frames() -> list[bytes]:
    """The stats frames a real Locust 2.47 worker sent while the golden timeline was made."""
    steps = msgpack.unpackb(GOLDEN.read_bytes(), raw=False, strict_map_key=False)
    return [s[3] for s in steps if s[1] == "frame" and s[3][1:7] == b"\xa5stats"]


def test_every_frame_of_a_real_locust_worker_takes_the_typed_path() -> None:
    """Real Locust reports all decode by the schema, to the general decoder's messages."""
    raw = _real_locust_frames()
    assert len(raw) >= 5
    assert all(t is not None for t in typed_reports(raw))
    for frame, fast in zip(raw, decode_upstream_many(raw), strict=True):
        slow = decode_upstream(frame)
        assert isinstance(fast, m.LocustStats) and isinstance(slow, m.LocustStats)
        assert fast == slow
        assert encode(fast) == encode(slow) == frame


def _verdict(frame: bytes) -> tuple[str, Any]:
    """The general decoder's verdict on ``frame``: its message re-encoded, or its error."""
    try:
        return "ok", encode(decode_upstream(frame))
    except ProtocolError as exc:
        return "error", (exc.reason, str(exc))


def _places(wire: dict[str, Any]) -> list[tuple[dict[Any, Any], Any]]:
    """Every (map, key) of a report where one value can be made odd, new keys included."""
    places: list[tuple[dict[Any, Any], Any]] = [(wire, k) for k in [*wire, "extra"]]
    for entry in [*wire["stats"], wire["stats_total"]]:
        places += [(entry, k) for k in [*entry, "extra"]]
        for key in ("response_times", "num_reqs_per_sec", "num_fail_per_sec"):
            if entry[key]:
                places.append((entry[key], next(iter(entry[key]))))
    for error in wire["errors"].values():
        places += [(error, k) for k in [*error, "extra"]]
    return places


def test_odd_values_get_the_general_decoders_verdict() -> None:
    """Anywhere in a report, an odd value is refused or taken exactly as the general path does."""
    rng = random.Random(5)
    base = [r.to_wire() for _, r, _ in reports(3, workers=2, rounds=1)]
    taken = refused = 0
    for k in range(600):
        wire = copy.deepcopy(rng.choice(base))
        target, key = rng.choice(_places(wire))
        target[key] = copy.deepcopy(rng.choice(_ODD))
        frame = encode_raw("stats", wire, f"w{k}")
        (typed,) = typed_reports([frame])
        verdict = _verdict(frame)
        if typed is None:
            refused += 1
        else:  # the schema may take only what the general path takes
            taken += 1
            assert verdict[0] == "ok", (key, target[key], verdict)
        (batch,) = decode_upstream_many([frame, frame])[:1]
        got = ("error", (batch.reason, str(batch))) if isinstance(batch, ProtocolError) else None
        assert (got or ("ok", encode(batch))) == verdict
    assert taken > 50 and refused > 200


def test_what_the_schema_leaves_to_the_general_path() -> None:
    """Unknown keys, huge integers and other message types are not taken, and still decode."""
    wire = reports(4, workers=1, rounds=1)[0][1].to_wire()
    extra = copy.deepcopy(wire) | {"custom": 1}
    huge = copy.deepcopy(wire)
    huge["stats_total"]["total_content_length"] = 2**64 - 1
    frames = [encode_raw("stats", extra, "w"), encode_raw("stats", huge, "w")]
    frames.append(encode_raw("client_ready", "2.47.0", "w"))
    assert typed_reports(frames) == [None, None, None]
    decoded = decode_upstream_many(frames)
    assert isinstance(decoded[0], m.LocustStats) and decoded[0].report.extra == {"custom": 1}
    assert isinstance(decoded[1], m.LocustStats)
    assert decoded[1].report.stats_total.total_content_length == 2**64 - 1


def test_a_failure_of_the_typed_path_fails_no_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should the typed path raise, every report is decoded by the general path instead."""
    raw = _real_locust_frames()

    def broken(reports: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(codec, "typed_reports", broken)
    decoded = decode_upstream_many(raw)
    assert decoded == [decode_upstream(frame) for frame in raw]


def test_long_count_maps_and_repeated_keys() -> None:
    """Maps of 16 and of 65,536 keys or more take the typed path; a repeated key does not."""
    wire = reports(6, workers=1, rounds=1)[0][1].to_wire()
    wire["stats"][0]["response_times"] = {k: k % 5 + 1 for k in range(1, 40)}
    wire["stats"][1]["num_fail_per_sec"] = dict.fromkeys(range(70000), 1)
    long = encode_raw("stats", wire, "w")
    wire["stats"][0]["response_times"] = {7: 1, 8: 2}
    repeated = encode_raw("stats", wire, "w").replace(
        b"\x82\x07\x01\x08\x02", b"\x82\x07\x01\x07\x02"
    )
    typed = typed_reports([long, repeated, long])  # the bad one alone leaves the batch
    assert typed[0] is not None and typed[1] is None and typed[2] is not None
    for frame, got in zip([long, repeated], decode_upstream_many([long, repeated]), strict=True):
        assert isinstance(got, m.LocustStats)
        assert encode(got) == encode(decode_upstream(frame))
    (last_wins,) = decode_upstream_many([repeated])
    assert isinstance(last_wins, m.LocustStats)
    assert last_wins.report.stats[0].response_times == {7: 2}
