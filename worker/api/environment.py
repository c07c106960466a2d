"""The environment a user runs in: its event hooks, target host, options and tag filters.

Every user instance holds one (``self.environment``), as in Locust. It is plain data: the
constructor does no I/O, and the worker updates ``host`` and ``stop_timeout`` from each spawn
request.

Imports: the standard library and ``horde.worker.api`` (events, iterations).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from horde.worker.api.events import Events
from horde.worker.api.events import events as default_events
from horde.worker.api.iterations import IterationCount


class Options(dict[str, Any]):
    """A dict of custom options that also reads as attributes (``options.my_flag``),
    so scripts written against Locust's ``parsed_options`` namespace keep working."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"no option named {key!r}") from None


def _tag_set(tags: Iterable[str] | None) -> frozenset[str] | None:
    """An empty or missing tag list means "no filter" (``None``)."""
    if tags is None:
        return None
    if isinstance(tags, str):
        tags = [tags]
    result = frozenset(tags)
    return result or None


class Environment:
    """What the users of one worker share.

    - ``events``: the hooks to fire; defaults to the process-wide ``horde.events``.
    - ``host``: the spawn's target host; when set it overrides each class's ``host``.
    - ``parsed_options``: custom options from the master, readable as keys or attributes.
    - ``stop_timeout``: seconds a stopping user may finish its task; ``None`` or 0 kills.
    - ``tags`` / ``exclude_tags``: task filters, ``None`` when not filtering.
    - ``user_classes``: the classes the script defines.
    - ``runner``: whatever the worker wants scripts to reach (``None`` by default).
    - ``process_exit_code``: the exit code a script chose (None: horde's own).
    - ``web_ui``: on the master, the web server scripts extend
      (``horde.master.webui.WebUI``); ``None`` on workers, as in Locust.
    """

    def __init__(
        self,
        *,
        events: Events | None = None,
        host: str | None = None,
        parsed_options: Mapping[str, Any] | None = None,
        stop_timeout: float | None = None,
        tags: Iterable[str] | None = None,
        exclude_tags: Iterable[str] | None = None,
        user_classes: Iterable[type] = (),
        runner: Any = None,
    ) -> None:
        self.events = events if events is not None else default_events
        self.host = host or None
        self.parsed_options = Options(parsed_options or {})
        self.stop_timeout = stop_timeout
        self.tags = _tag_set(tags)
        self.exclude_tags = _tag_set(exclude_tags)
        self.user_classes = list(user_classes)
        self.runner = runner
        self.web_ui: Any = None
        self.process_exit_code: int | None = None
        """Set by a script (say in ``quitting``) to choose the process's exit code."""
        self.iterations = IterationCount()
        """Task iterations started in this test, for ``-i`` (``horde.worker.api.iterations``)."""

    def set_tags(self, tags: Iterable[str] | None, exclude_tags: Iterable[str] | None) -> None:
        """Replace the task filters (an empty list means no filter)."""
        self.tags = _tag_set(tags)
        self.exclude_tags = _tag_set(exclude_tags)

    def __repr__(self) -> str:
        return (
            f"Environment(host={self.host!r}, stop_timeout={self.stop_timeout!r}, "
            f"tags={self.tags!r}, exclude_tags={self.exclude_tags!r})"
        )
