"""What the master shows: the ``/stats/requests`` document and the workers table.

Pure functions of a :class:`~horde.master.snapshot.MasterSnapshot`; the HTTP shim caches
and serves them, the CLI prints them.

Imports: the standard library and horde.master.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from horde.master.registry import WorkerRecord
from horde.master.report import stats_report
from horde.master.snapshot import MasterSnapshot


def workers_table(snapshot: MasterSnapshot) -> list[dict[str, Any]]:
    """One row per known worker, missing ones included, in Locust's keys plus horde's."""
    return worker_rows(snapshot.workers, snapshot.worker_requests)


def worker_rows(
    records: Iterable[WorkerRecord], requests: Mapping[str, int]
) -> list[dict[str, Any]]:
    """The :func:`workers_table` rows of ``records``, with their ``requests`` counts.

    On a CURVE master each row also has ``key``: the fingerprint of the worker's key.
    """
    return [
        _with_key(
            r.key,
            {
                "id": r.worker_id,
                "state": r.state.value,
                "user_count": r.user_count,
                "cpu_usage": r.cpu_usage,
                "memory_usage": r.memory_usage,
                "index": r.index,
                "loop_lag": r.loop_lag,
                "horde": r.is_horde,
                "requests": requests.get(r.worker_id, 0),
            },
        )
        for r in records
    ]


def _with_key(key: str | None, row: dict[str, Any]) -> dict[str, Any]:
    if key is not None:
        row["key"] = key
    return row


_ROW_JSON = (
    '{"id":%s,"state":"%s","user_count":%d,"cpu_usage":%r,"memory_usage":%d,'
    '"index":%d,"loop_lag":%s,"horde":%s,"requests":%d%s}'
)
"""A :func:`worker_rows` row as compact JSON (numbers are validated: ints, finite floats)."""


def _json_str(text: str) -> str:
    """``text`` as ``json.dumps`` writes it (a plain ASCII text needs no escapes)."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return json.dumps(text)


def worker_rows_json(records: Iterable[WorkerRecord], requests: Mapping[str, int]) -> str:
    """:func:`worker_rows` as compact JSON objects joined by commas, without brackets.

    The text ``json.dumps(rows, separators=(",", ":"))[1:-1]`` gives, at half its cost:
    with thousands of workers it is the bulk of ``/stats/requests``.
    """
    get = requests.get
    return ",".join(
        [
            _ROW_JSON
            % (
                _json_str(r.worker_id),
                r.state.value,
                r.user_count,
                r.cpu_usage,
                r.memory_usage,
                r.index,
                "null" if r.loop_lag is None else repr(r.loop_lag),
                "true" if r.is_horde else "false",
                get(r.worker_id, 0),
                "" if r.key is None else f',"key":{_json_str(r.key)}',
            )
            for r in records
        ]
    )


def requests_report(
    snapshot: MasterSnapshot,
    *,
    workers: bool = True,
    pause: Callable[[], object] | None = None,
) -> dict[str, Any]:
    """Locust's ``GET /stats/requests`` document, at the snapshot's moment.

    ``workers=False`` leaves out the ``workers`` rows (the caller renders them in slices);
    ``pause`` is :func:`~horde.master.report.stats_report`'s.
    """
    run = snapshot.run
    report = stats_report(snapshot.stats, run.now, pause=pause)
    if workers:
        report["workers"] = workers_table(snapshot)
    report["worker_count"] = run.worker_count  # as Locust and /worker-count
    report["state"] = run.state.value
    report["user_count"] = run.user_count
    return report


def workers_text(snapshot: MasterSnapshot) -> str:
    """The workers as a console table: state, users, CPU, memory and requests each."""
    header = (
        f"{'Worker':<48} {'State':<9} {'Users':>7} {'CPU %':>7} {'RSS MiB':>8} {'Requests':>10}"
    )
    keyed = any(r.key is not None for r in snapshot.workers)
    if keyed:
        header += f" {'Key':<8}"
    lines = [header, "-" * len(header)]
    for row in workers_table(snapshot):
        lines.append(
            f"{row['id'][:48]:<48} {row['state']:<9} {row['user_count']:>7} "
            f"{row['cpu_usage']:>7.1f} {row['memory_usage'] / 2**20:>8.1f} {row['requests']:>10}"
            + (f" {row.get('key') or '-':<8}" if keyed else "")
        )
    return "\n".join(lines)
