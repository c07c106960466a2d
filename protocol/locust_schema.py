"""Locust ``stats`` frames decoded against a typed schema in one pass: the master's fast path.

Responsibility: :func:`decode_report_frames`, which decodes whole Locust ``stats`` frames
with msgspec against a schema made from the entry rules of
:mod:`horde.protocol.locust_columns` (:data:`~horde.protocol.locust_columns.ENTRY_FIELDS`):
strings, counts and numbers where the rules say, nothing negative, no NaN or infinity, no
boolean where a number belongs, and (this path's own limit) no integer beyond int64. The
checks run in C while the frame is read, and no dict is built per entry. A frame the
schema does not take whole (an unknown key, a rule broken, a huge integer) gives None: the
caller decodes it the general way, which keeps unknown keys and names the problem, so a
frame gets the same verdict and the same values whichever way it is decoded.

Imports: the standard library, msgspec, and :mod:`horde.protocol` (fields, locust_columns,
stats).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any, NamedTuple, Union

import msgspec

from horde.protocol.fields import as_count, as_str
from horde.protocol.locust_columns import ENTRY_FIELDS, int_counts
from horde.protocol.stats import number, opt_number

__all__ = ["LocustErrorWire", "LocustReportWire", "TypedReport", "decode_report_frames"]

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
    int_counts: dict[_COUNT, _COUNT],
}

LocustEntryWire: Any = msgspec.defstruct(
    "LocustEntryWire",
    [(key, _SCHEMA[check]) for key, check in ENTRY_FIELDS],  # fields in ENTRY_NAMES order
    forbid_unknown_fields=True,
    gc=False,
)
"""One ``stats`` entry, typed by :data:`~horde.protocol.locust_columns.ENTRY_FIELDS`."""


class LocustErrorWire(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One value of a report's ``errors`` (the rules of :class:`LocustError`)."""

    name: str
    method: str
    error: str
    occurrences: _COUNT
    first_seen: _NUMBER | None = None
    last_seen: _NUMBER | None = None


class LocustReportWire(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A report's data, with exactly the keys Locust's workers send."""

    stats: list[LocustEntryWire]  # made by defstruct above
    stats_total: LocustEntryWire
    errors: dict[str, LocustErrorWire]
    user_classes_count: dict[str, _COUNT] | None
    user_count: _COUNT


class TypedReport(NamedTuple):
    """A frame the schema took whole: its sender, its report data and its entries' values."""

    node_id: str
    data: LocustReportWire
    rows: list[tuple[Any, ...]]
    """Each ``stats`` entry's values, in ``ENTRY_NAMES`` order."""
    total: tuple[Any, ...]
    """The ``stats_total`` entry's values, in the same order."""


_FRAME = msgspec.msgpack.Decoder(tuple[str, LocustReportWire, str])


def decode_report_frames(raws: Sequence[bytes]) -> list[TypedReport | None]:
    """Each ``stats`` frame's node id and report as the schema reads it, or None.

    None means only that this path does not take the frame; the general decoder gives it
    its verdict (see the module docstring).
    """
    out: list[TypedReport | None] = []
    decode, values = _FRAME.decode, msgspec.structs.astuple
    for raw in raws:
        try:
            message_type, data, node_id = decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError):
            out.append(None)
            continue
        if message_type != "stats":
            out.append(None)
            continue
        rows = list(map(values, data.stats))
        out.append(TypedReport(node_id, data, rows, values(data.stats_total)))
    return out
