"""``python -m horde``: the same as the ``horde`` command."""

from horde.cli import main

raise SystemExit(main())
