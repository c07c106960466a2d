"""Suite-wide settings: keep Locust (a test peer) from monkey-patching the test process."""

from __future__ import annotations

import os

# Importing locust calls gevent.monkey.patch_all() unless told not to; horde's tests
# import it only to read its wire format and must keep the process unpatched.
os.environ.setdefault("LOCUST_SKIP_MONKEY_PATCH", "1")
