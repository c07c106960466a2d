"""The worker: the user API scripts import (:mod:`horde.worker.api`) and the runtime that runs it.

The runtime, the rest of this package, belongs to the worker process alone: the pure
agent (:mod:`~horde.worker.agent`) and the loops carrying out its decisions
(:mod:`~horde.worker.loops`), the link thread (:mod:`~horde.worker.transport`), the lease,
the user pool, the stats recorder and outbox, the script fetch, settings and the entry
point. The master may import the user API, never the runtime (``.ci/check_layout.py``).

Imports: nothing itself.
"""
