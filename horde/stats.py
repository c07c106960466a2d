"""``horde.stats``: the statistics settings Locust scripts assign on ``locust.stats``.

A locustfile ported by the one rule assigns them as before (``import horde.stats``, then
``horde.stats.PERCENTILES_TO_REPORT = [0.5, 0.9, 0.99]``, or mutates the lists in place).
The master reads them when it makes an output (:mod:`horde.master.statsconf`), so values
set while the script loads or in an ``init`` listener take effect:

- ``PERCENTILES_TO_REPORT``: the console percentile tables, the CSV files' (and
  downloads') percentile columns, ``--json``'s corrected series and the HTML report's
  percentile table;
- ``PERCENTILES_TO_STATISTICS``: the ``response_time_percentile_<p>`` keys of each
  ``/stats/requests`` row;
- ``PERCENTILES_TO_CHART``: ``current_response_time_percentiles`` of ``/stats/requests``
  (at most six, each strictly between 0 and 1, checked before the run as Locust does);
- ``CSV_STATS_INTERVAL_SEC``: how often the ``--csv`` files are written;
- ``CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW``: the seconds behind the current percentiles
  (``/stats/requests`` and the history).

The other names exist with Locust 2.47's values, for scripts that read them; they change
nothing in horde (``CSV_STATS_FLUSH_INTERVAL_SEC``: every write is a whole file;
``CONSOLE_STATS_INTERVAL_SEC``: ``--print-stats``; ``HISTORY_STATS_INTERVAL_SEC``: the
history samples every second; the ``STATS_*`` widths: horde's tables have fixed columns).

Imports: :mod:`horde.master.statsconf` (the defaults).
"""

from __future__ import annotations

from horde.master.statsconf import (
    DEFAULT_CSV_STATS_INTERVAL_SEC,
    DEFAULT_CURRENT_WINDOW,
    DEFAULT_PERCENTILES_TO_CHART,
    DEFAULT_PERCENTILES_TO_REPORT,
    DEFAULT_PERCENTILES_TO_STATISTICS,
)

__all__ = [
    "CONSOLE_STATS_INTERVAL_SEC",
    "CSV_STATS_FLUSH_INTERVAL_SEC",
    "CSV_STATS_INTERVAL_SEC",
    "CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW",
    "HISTORY_STATS_INTERVAL_SEC",
    "PERCENTILES_TO_CHART",
    "PERCENTILES_TO_REPORT",
    "PERCENTILES_TO_STATISTICS",
    "STATS_AUTORESIZE",
    "STATS_NAME_WIDTH",
    "STATS_TYPE_WIDTH",
]

PERCENTILES_TO_REPORT = list(DEFAULT_PERCENTILES_TO_REPORT)
PERCENTILES_TO_STATISTICS = list(DEFAULT_PERCENTILES_TO_STATISTICS)
PERCENTILES_TO_CHART = list(DEFAULT_PERCENTILES_TO_CHART)
CSV_STATS_INTERVAL_SEC = int(DEFAULT_CSV_STATS_INTERVAL_SEC)
CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW = DEFAULT_CURRENT_WINDOW
CSV_STATS_FLUSH_INTERVAL_SEC = 5
CONSOLE_STATS_INTERVAL_SEC = 2
HISTORY_STATS_INTERVAL_SEC = 5
STATS_NAME_WIDTH = 80
STATS_TYPE_WIDTH = 8
STATS_AUTORESIZE = True
