"""environment.web_ui on a horde master: routes and blueprints a script adds answer, and
sit behind horde's own authentication."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request

import pytest

from tests.support import get_json, processes, start_master, wait_for

pytestmark = [pytest.mark.timeout(90), pytest.mark.process]


def status(url: str, auth: str | None = None) -> int:
    """The HTTP status of GET ``url`` (with Basic ``user:password`` when given)."""
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_script_extends_the_web_ui_and_its_routes_sit_behind_horde_auth() -> None:
    """/added and the blueprint's /extra/ping answer; with --web-auth they refuse without
    credentials (401) and answer with them."""
    with processes() as procs:
        master = start_master(procs, "web_extended.py")
        assert get_json(f"{master.web}/added") == {"added": True, "state": "ready"}
        assert status(f"{master.web}/extra/ping") == 200
        guarded = start_master(procs, "web_extended.py", "--web-auth", "u:p", wait=False)
        wait_for(lambda: status(f"{guarded.web}/added", "u:p") == 200, 30, "the guarded master")
        assert status(f"{guarded.web}/added") == 401
        assert status(f"{guarded.web}/extra/ping") == 401
        assert status(f"{guarded.web}/extra/ping", "u:p") == 200
