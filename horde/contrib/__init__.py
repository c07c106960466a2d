"""Locust's ``locust.contrib`` path for scripts ported by the one rule: ``horde.contrib.fasthttp``.

Imports: nothing itself.
"""
