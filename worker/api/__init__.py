"""The user API: what a user script imports, and what the master may load.

Users, tasks and task sets, wait times, events, the environment, the HTTP client users
call (with its HTTP/1.1 connection and responses), pacing marks and script loading. The
master imports this package to load scripts and fire their events; it never imports the
worker's runtime (:mod:`horde.worker` outside ``api``), and nothing here imports it either
(``.ci/check_layout.py`` checks both in ``make lint``).

Imports: nothing itself; its modules import the standard library, gevent, structlog,
horde.protocol and each other.
"""
