"""Locust ``stats`` frames decoded against a typed schema in one pass: the master's fast path.

Responsibility: :func:`typed_reports`, which decodes whole Locust ``stats`` frames with
msgspec against a schema made from the entry rules of
:mod:`horde.protocol.locust_columns` (:data:`~horde.protocol.locust_columns.ENTRY_FIELDS`):
strings, counts and numbers where the rules say, nothing negative, no NaN or infinity, no
boolean where a number belongs, and (this path's own limit) no integer beyond int64. The
checks run in C while the frame is read. The count maps (response times, requests and
failures per second) are kept undecoded and turned into arrays for the whole batch at
once (:func:`_flat_maps`), so no dict is built per entry; the batch's columns come from
:func:`~horde.protocol.locust_columns.typed_columns_many`. A frame the schema does not
take whole (an unknown key, a rule broken, a huge integer, a repeated key in a map) gives
None: the caller decodes it the general way, which keeps unknown keys and names the
problem, so a frame gets the same verdict and the same values whichever way it goes.

Imports: the standard library, msgspec, and :mod:`horde.protocol` (columns, fields,
locust_columns, stats); numpy on the first batch.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from itertools import pairwise
from typing import Annotated, Any, NamedTuple, Union

import msgspec

from horde.protocol.columns import numpy
from horde.protocol.fields import as_count, as_str
from horde.protocol.locust_columns import (
    ENTRY_FIELDS,
    ERROR_FIELDS,
    Flat,
    LocustColumns,
    int_counts,
    typed_columns_many,
)
from horde.protocol.stats import number, opt_number

__all__ = [
    "LocustErrorWire",
    "LocustReportWire",
    "TypedReport",
    "count_map",
    "typed_reports",
]

_INT64_MAX = 2**63 - 1
_COUNT = Annotated[int, msgspec.Meta(ge=0, le=_INT64_MAX)]
_NUMBER = Union[  # noqa: UP007 - a runtime type expression for msgspec
    _COUNT, Annotated[float, msgspec.Meta(ge=0, le=sys.float_info.max)]
]
_SCHEMA: dict[object, object] = {
    as_str: str,
    as_count: _COUNT,
    number: _NUMBER,
    opt_number: Union[_NUMBER, None],  # noqa: UP007 - as above
    int_counts: msgspec.Raw,  # checked and flattened for the whole batch: :func:`_flat_maps`
}
_COUNT_FIELDS = tuple(k for k, (_, check) in enumerate(ENTRY_FIELDS) if check is int_counts)

LocustEntryWire: Any = msgspec.defstruct(
    "LocustEntryWire",
    [(key, _SCHEMA[check]) for key, check in ENTRY_FIELDS],  # fields in ENTRY_NAMES order
    forbid_unknown_fields=True,
    gc=False,
)
"""One ``stats`` entry, typed by :data:`~horde.protocol.locust_columns.ENTRY_FIELDS`."""


LocustErrorWire: Any = msgspec.defstruct(
    "LocustErrorWire",
    [(key, _SCHEMA[check]) for key, check in ERROR_FIELDS]
    + [(key, _SCHEMA[opt_number], None) for key in ("first_seen", "last_seen")],
    forbid_unknown_fields=True,
    gc=False,
)
"""One value of a report's ``errors``, typed by ``ERROR_FIELDS``."""


class LocustReportWire(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A report's data, with exactly the keys Locust's workers send."""

    stats: list[LocustEntryWire]  # made by defstruct above
    stats_total: LocustEntryWire
    errors: dict[str, LocustErrorWire]
    user_classes_count: dict[str, _COUNT] | None
    user_count: _COUNT


class TypedReport(NamedTuple):
    """A frame the schema took whole: its sender, its report data and its entries' columns."""

    node_id: str
    data: LocustReportWire
    columns: LocustColumns


_FRAME = msgspec.msgpack.Decoder(tuple[str, LocustReportWire, str])
_INTS = msgspec.msgpack.Decoder(list[_COUNT])
_COUNT_MAP = msgspec.msgpack.Decoder(dict[_COUNT, _COUNT])
_KEY_BITS = 40
"""Keys below ``2**40`` are checked for repeats within their map in one sort; bigger ones
(never a Locust key: ms and epoch seconds) send the report the general way."""


def count_map(raw: Any) -> dict[int, int]:
    """A count map the schema kept undecoded (``msgspec.Raw``) as a dict; dicts pass."""
    return raw if type(raw) is dict else _COUNT_MAP.decode(raw)


def typed_reports(raws: Sequence[bytes]) -> list[TypedReport | None]:
    """Each ``stats`` frame's node id, report and columns, as the schema reads them, or None.

    None means only that this path does not take the frame; the general decoder gives it
    its verdict (see the module docstring).
    """
    decoded: list[tuple[int, str, Any, list[tuple[Any, ...]], tuple[Any, ...]]] = []
    decode, values = _FRAME.decode, msgspec.structs.astuple
    for k, raw in enumerate(raws):
        try:
            message_type, data, node_id = decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError):
            continue
        if message_type == "stats":
            rows = list(map(values, data.stats))
            decoded.append((k, node_id, data, rows, values(data.stats_total)))
    flats = _flats([(rows, total) for *_, rows, total in decoded])
    if flats is None:  # a count map the schema cannot take: find its reports
        alone = [_flats([(rows, total)]) for *_, rows, total in decoded]
        decoded = [d for d, f in zip(decoded, alone, strict=True) if f is not None]
        flats = _flats([(rows, total) for *_, rows, total in decoded])
    out: list[TypedReport | None] = [None] * len(raws)
    if decoded and flats is not None:
        columns = typed_columns_many([(rows, total) for *_, rows, total in decoded], flats)
        for (k, node_id, data, _, _), cols in zip(decoded, columns, strict=True):
            out[k] = TypedReport(node_id, data, cols)
    return out


def _flats(reports: Sequence[tuple[list[tuple[Any, ...]], tuple[Any, ...]]]) -> list[Flat] | None:
    """The three count fields of all the reports' entries, flattened; None unless every
    map holds only distinct non-negative int64 keys and non-negative int64 values.

    The maps of all three fields go through :func:`_flat_maps` together and are cut
    apart afterwards: its cost is mostly per call, and a report alone (the common case
    at a thousand workers) would pay it three times.
    """
    entries = [e for rows, total in reports for e in (*rows, total)]
    flat = _flat_maps([e[field] for field in _COUNT_FIELDS for e in entries])
    if flat is None:
        return None
    sizes, keys, values = flat
    n = len(entries)
    ends = [0, *(int(sizes[: n * (k + 1)].sum()) for k in range(len(_COUNT_FIELDS)))]
    return [
        (sizes[n * k : n * (k + 1)], keys[lo:hi], values[lo:hi])
        for k, (lo, hi) in enumerate(pairwise(ends))
    ]


def _flat_maps(maps: list[Any]) -> Flat | None:
    """Undecoded msgpack maps of ints, flattened at once: sizes, keys, values; or None.

    The maps' headers are cut out and their items decoded together as one list of
    counts, so no dict is built; keys must not repeat within a map (a dict keeps the
    last of repeated keys, and so does the general path).
    """
    np = numpy()
    if not maps:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    buf = np.frombuffer(b"".join(maps), dtype=np.uint8)
    lens = np.fromiter(map(len, maps), dtype=np.int64, count=len(maps))
    starts = np.cumsum(lens) - lens
    first = buf[starts]
    fix, m16, m32 = (first & 0xF0) == 0x80, first == 0xDE, first == 0xDF
    if not (fix | m16 | m32).all():
        return None
    sizes = np.where(fix, first & 0x0F, 0).astype(np.int64)
    head = np.where(fix, 1, np.where(m16, 3, 5))
    for is_long, width in ((m16, 2), (m32, 4)):
        if is_long.any():
            at = starts[is_long]
            big = np.zeros(len(at), dtype=np.int64)
            for byte in range(1, width + 1):
                big = (big << 8) | buf[at + byte]
            sizes[is_long] = big
    keep = np.ones(len(buf), dtype=bool)
    for byte in range(5):
        keep[starts[head > byte] + byte] = False
    total = 2 * int(sizes.sum())
    try:
        items = _INTS.decode(b"\xdd" + total.to_bytes(4, "big") + buf[keep].tobytes())
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    pairs = np.fromiter(items, dtype=np.int64, count=total)
    keys, values = pairs[0::2], pairs[1::2]
    if len(keys):
        if keys.max() >= 1 << _KEY_BITS:
            return None
        owner = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
        cells = np.sort((owner << _KEY_BITS) | keys, kind="stable")
        if (cells[1:] == cells[:-1]).any():
            return None
    return sizes, keys, values
