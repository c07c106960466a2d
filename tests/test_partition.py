"""A real network partition: a master host and two worker hosts in network namespaces.

The hosts are built by ``tests/netns.py`` (root only). Worker host A's link is cut for
10 s and restored; the test times lease expiry, missing detection, re-dispatch, return
and reconciliation, and then compares the master's request total with the sum of the
workers' own counts (``tests/scripts/counted.py`` prints them).

The master binds beyond loopback, so it runs twice: as a CURVE server with keys from
``horde keygen``, and plain with ``--insecure`` (which its workers need too). Its web API
listens on the master host's loopback only: the test reaches it from inside that host.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.fault_support import SECURITY, keys_for
from tests.netns import Network, network, unavailable
from tests.support import SCRIPTS, Keys, get_json, post, wait_for

pytestmark = pytest.mark.process

USERS = 20
SHARE = USERS // 2
CUT_SECONDS = 10.0
TARGET_PORT = 8080
MASTER_PORT = 5557
WEB_PORT = 8089
SCRIPT = str(SCRIPTS / "counted.py")

#: The worker's log line when its lease runs out (wording left to the worker).
LEASE_EXPIRED = re.compile(r"lease[^\n]*(expir|ran out|lapse|lost)", re.IGNORECASE)
LIVE_USERS = re.compile(r"^LIVE_USERS=(\d+) AT=([\d.]+) REQUESTS=(\d+)$", re.MULTILINE)
REQUESTS_MADE = re.compile(r"^REQUESTS_MADE=(\d+)$", re.MULTILINE)
NODE_ID = re.compile(r"node_id=(\S+)")
BACK_STATES = {"ready", "spawning", "running"}


@pytest.fixture
def net(request: pytest.FixtureRequest) -> Iterator[Network]:
    """A master host and worker hosts a and b on one switch; skipped without root.

    When the test fails, every process's output is printed before teardown.
    """
    reason = unavailable()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"network namespaces must work under CI: {reason}")
        pytest.skip(f"needs network namespaces: {reason}")
    failed_before = request.session.testsfailed
    with network("master", "a", "b") as built:
        yield built
        if request.session.testsfailed > failed_before:
            print(built.procs.dump())


class Live(NamedTuple):
    """One ``LIVE_USERS`` line: a worker's running users, when, and its requests so far."""

    users: int
    at: float
    requests: int


def live_users(output: str, since: float = 0.0) -> list[Live]:
    """The ``LIVE_USERS`` lines a worker printed at or after unix time ``since``."""
    lines = [Live(int(n), float(at), int(k)) for n, at, k in LIVE_USERS.findall(output)]
    return [line for line in lines if line.at >= since]


def aggregated(report: dict[str, Any]) -> int:
    """The master's total number of requests."""
    (row,) = [e for e in report["stats"] if e["name"] == "Aggregated"]
    return int(row["num_requests"])


@dataclass
class Cluster:
    """A target and master on host ``master``, one worker on each other host."""

    net: Network
    master: subprocess.Popen[str] | None = None
    workers: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    web: str = f"http://127.0.0.1:{WEB_PORT}"
    keys: Keys | None = None

    def security(self, side: str) -> tuple[str, ...]:
        """The key flags for ``side`` (``"master"`` or ``"worker"``), or ``--insecure``."""
        if self.keys is None:
            return ("--insecure",)
        return self.keys.master_args() if side == "master" else self.keys.worker_args()

    def report(self) -> dict[str, Any]:
        """The master's ``/stats/requests`` (cached by the master up to 0.5 s)."""
        return self.net.call("master", get_json, f"{self.web}/stats/requests")

    def post(self, path: str, fields: dict[str, Any] | None = None) -> tuple[int, Any]:
        """POST a form to the master's web API."""
        return self.net.call("master", post, f"{self.web}{path}", fields)

    def row(self, report: dict[str, Any], host: str) -> dict[str, Any]:
        """Host ``host``'s worker in the master's workers table."""
        (found,) = [w for w in report["workers"] if w["id"] == self.ids[host]]
        return found

    def output(self, host: str) -> str:
        """What the worker on ``host`` (or the master, for ``"master"``) printed so far."""
        proc = self.master if host == "master" else self.workers[host]
        assert proc is not None
        return self.net.output(proc)

    def live(self, host: str, since: float = 0.0) -> list[Live]:
        """The worker's ``LIVE_USERS`` lines since unix time ``since``."""
        return live_users(self.output(host), since)

    def split_evenly(self, report: dict[str, Any]) -> bool:
        """Both workers report their share and the master counts every user."""
        counts = [self.row(report, h)["user_count"] for h in ("a", "b")]
        return counts == [SHARE, SHARE] and report["user_count"] == USERS

    def start_master(self) -> None:
        """Start the target and the master on host ``master``."""
        net = self.net
        target_url = f"http://{net.address('master')}:{TARGET_PORT}"
        target = net.horde("master", "target", "--host", "0.0.0.0", "--port", str(TARGET_PORT))
        wait_for(lambda: "listening" in net.output(target), 20, "the demo target")
        self.master = net.horde(
            "master",
            "master",
            "-f",
            SCRIPT,
            "--bind",
            f"tcp://0.0.0.0:{MASTER_PORT}",
            "--web-host",
            "127.0.0.1",
            "--web-port",
            str(WEB_PORT),
            "--heartbeat-interval",
            "1",
            "--host",
            target_url,
            *self.security("master"),
        )
        wait_for(self.report, 20, "the master's web API")

    def start_worker(self, host: str) -> None:
        """Start a worker on ``host`` and learn its node id from its log."""
        master = f"{self.net.address('master')}:{MASTER_PORT}"
        args = ["worker", "-f", SCRIPT, "--master", master, "--stats-interval", "1"]
        self.workers[host] = self.net.horde(host, *args, *self.security("worker"))
        node = wait_for(lambda: NODE_ID.search(self.output(host)), 20, f"worker {host} node id")
        self.ids[host] = node.group(1)


def start_cluster(net: Network, keys: Keys | None = None) -> Cluster:
    """Start the target and master on host ``master`` and a worker on hosts a and b (with
    CURVE when given ``keys``, else plain with ``--insecure``)."""
    cluster = Cluster(net, keys=keys)
    cluster.start_master()
    for host in ("a", "b"):
        cluster.start_worker(host)
    wait_for(
        lambda: [w["state"] for w in cluster.report()["workers"]] == ["ready", "ready"],
        20,
        "both workers ready",
    )
    return cluster


def watch(
    cluster: Cluster,
    checks: list[tuple[str, Callable[[dict[str, Any]], bool]]],
    since: float,
    timeout: float,
) -> dict[str, float]:
    """Poll until every check has held once; return seconds from ``since`` to each.

    Each round fetches the master's report first and then runs the checks in order, so a
    check on a process's output sees everything it printed before the report was made.
    """
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < len(checks):
        if time.monotonic() > deadline:
            missing = [name for name, _ in checks if name not in seen]
            raise AssertionError(f"timed out waiting for {missing}; seen so far {seen}")
        report = cluster.report()
        for name, check in checks:
            if name not in seen and check(report):
                seen[name] = time.monotonic() - since
        time.sleep(0.05)
    return seen


def logged_since(cluster: Cluster, host: str, offset: int, pattern: re.Pattern[str]) -> bool:
    """True when ``host`` printed a line matching ``pattern`` after character ``offset``."""
    return bool(pattern.search(cluster.output(host)[offset:]))


def test_harness_cut_drops_packets_silently_and_restore_reconnects(net: Network) -> None:
    """A cut host's packets vanish without any error while other hosts still connect, and
    restoring the link lets it connect again; processes run inside their host as themselves."""
    sleeper = net.start("a", sys.executable, "-c", "import time; time.sleep(60)")
    # Until ip has entered the namespace and exec'd, the PID is ip's, in our namespace.
    wait_for(
        lambda: Path(f"/proc/{sleeper.pid}/cmdline").read_text().split("\0")[0] == sys.executable,
        10,
        "the started PID to become the program itself",
    )
    assert os.readlink(f"/proc/{sleeper.pid}/ns/net") != os.readlink("/proc/self/ns/net")

    def listen() -> socket.socket:
        server = socket.socket()
        server.bind(("0.0.0.0", 9000))
        server.listen(16)
        return server

    def connect(timeout: float) -> socket.socket:
        return socket.create_connection((net.address("master"), 9000), timeout=timeout)

    server = net.call("master", listen)
    try:
        held = net.call("a", connect, 5.0)
        net.cut("a")
        held.sendall(b"sent during the cut")  # the socket neither errors nor resets
        with pytest.raises(TimeoutError):
            net.call("a", connect, 1.0)
        net.call("b", connect, 5.0).close()
        net.restore("a")
        wait_for(lambda: net.call("a", connect, 1.0), 10, "host a connecting again").close()
        held.close()
    finally:
        server.close()


def cut_a(cluster: Cluster) -> dict[str, float]:
    """Cut host a and time what follows until its users run on b; return the figures (s).

    The times of users stopping and starting come from the workers' own lines (exact,
    one clock); lease expiry and missing detection from polling the logs (within 0.05 s).
    """
    a_id = re.escape(cluster.ids["a"])
    missing_line = re.compile(rf"missing[^\n]*{a_id}")
    offsets = {h: len(cluster.output(h)) for h in ("master", "a")}
    cut_wall, cut_at = time.time(), time.monotonic()
    cluster.net.cut("a")
    seen = watch(
        cluster,
        [
            ("shown missing", lambda r: cluster.row(r, "a")["state"] == "missing"),
            ("shown moved", lambda r: cluster.row(r, "b")["user_count"] == USERS),
            ("missing", lambda r: logged_since(cluster, "master", offsets["master"], missing_line)),
            ("lease expired", lambda r: logged_since(cluster, "a", offsets["a"], LEASE_EXPIRED)),
            ("users stopped", lambda r: any(x.users == 0 for x in cluster.live("a", cut_wall))),
        ],
        since=cut_at,
        timeout=CUT_SECONDS - 0.5,
    )
    a_stopped = next(x for x in cluster.live("a", cut_wall) if x.users == 0)
    b_grew = next(x for x in cluster.live("b", cut_wall) if x.users > SHARE)
    b_full = next(x for x in cluster.live("b", cut_wall) if x.users == USERS)
    # What a made before it stopped but the master has not merged is stranded by the cut.
    master_saw = cluster.row(cluster.report(), "a")["requests"]
    figures = {
        "lease expired": seen["lease expired"],
        "users stopped": a_stopped.at - cut_wall,
        "missing": seen["missing"],
        "moved": b_full.at - cut_wall,
        "handover": b_grew.at - a_stopped.at,
        "stranded": a_stopped.requests - master_saw,
    }
    print(f"\nafter the cut of a (s): {figures}")
    assert figures["lease expired"] <= 4.0, figures
    # The lease runs from the send time of the last answered heartbeat (at most 1 s old).
    assert 1.5 <= figures["users stopped"] <= 4.0, figures
    assert figures["missing"] <= 5.0, figures
    assert figures["moved"] - figures["missing"] <= 2.0, figures
    assert figures["handover"] >= 0, (
        f"a's users ran on both workers at once for {-figures['handover']:.3f} s"
    )
    assert figures["stranded"] >= 0, (master_saw, a_stopped)
    wait_for(lambda: time.monotonic() - cut_at >= CUT_SECONDS, CUT_SECONDS + 1, "the cut")
    return figures


def restore_a(cluster: Cluster) -> dict[str, float]:
    """Restore host a and time its return and reconciliation; return the figures (s)."""
    back_line = re.compile(rf"(ready|back)[^\n]*{re.escape(cluster.ids['a'])}")
    offset = len(cluster.output("master"))
    restored_wall, restored_at = time.time(), time.monotonic()
    cluster.net.restore("a")

    def reconciled(report: dict[str, Any]) -> bool:
        own = {h: cluster.live(h) for h in ("a", "b")}
        return (
            cluster.split_evenly(report)
            and all(own[h] and own[h][-1].users == SHARE for h in ("a", "b"))
            and all(cluster.row(report, h)["state"] == "running" for h in ("a", "b"))
        )

    seen = watch(
        cluster,
        [
            ("back", lambda r: logged_since(cluster, "master", offset, back_line)),
            ("shown back", lambda r: cluster.row(r, "a")["state"] in BACK_STATES),
            ("shown reconciled", reconciled),
        ],
        since=restored_at,
        timeout=30,
    )
    a_full = next(x for x in cluster.live("a", restored_wall) if x.users == SHARE)
    figures = {"back": seen["back"], "reconciled": a_full.at - restored_wall}
    print(f"after the restore of a (s): {figures}")
    a_requests = cluster.row(cluster.report(), "a")["requests"]
    wait_for(
        lambda: cluster.row(cluster.report(), "a")["requests"] > a_requests + 300,
        20,
        "requests from the returned worker",
    )
    b_live = [x.users for x in cluster.live("b")]
    assert min(b_live[b_live.index(SHARE) :]) >= SHARE, f"b was cut back: {b_live}"
    a_live = [x.users for x in cluster.live("a")]
    assert max(a_live) == SHARE, f"a ran more than its share: {a_live}"
    return figures


def stop_and_count(cluster: Cluster) -> tuple[int, dict[str, int], dict[str, int]]:
    """Stop the test; return the master's total, the workers' own counts and the master's
    count per worker."""
    printed = {h: len(REQUESTS_MADE.findall(cluster.output(h))) for h in ("a", "b")}
    status, body = cluster.post("/stop")
    assert status == 200 and body["success"] is True, body
    wait_for(lambda: cluster.report()["state"] == "stopped", 20, "the test stopped")

    def final_counts() -> dict[str, int] | None:
        made = {h: REQUESTS_MADE.findall(cluster.output(h)) for h in ("a", "b")}
        if any(len(made[h]) <= printed[h] for h in made):
            return None
        return {h: int(lines[-1]) for h, lines in made.items()}

    own = wait_for(final_counts, 10, "each worker's own request count")
    # The web API caches its report for up to 0.5 s; a stopped run's total must not change.
    deadline = time.monotonic() + 2.0
    while True:
        report = cluster.report()
        total = aggregated(report)
        if total == sum(own.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert report["state"] == "stopped"
    return total, own, {h: cluster.row(report, h)["requests"] for h in ("a", "b")}


@pytest.mark.timeout(150)
@SECURITY
def test_partitioned_worker_stops_is_replaced_returns_and_no_request_is_lost(
    net: Network, curve: bool, tmp_path: Path
) -> None:
    """A worker cut off for 10 s stops its users at lease expiry, goes missing, its users move
    to the other worker, it returns (with CURVE, through a new handshake) and is reconciled,
    and the master's request total equals the sum of the workers' own counts."""
    cluster = start_cluster(net, keys_for(curve, tmp_path))
    status, body = cluster.post("/swarm", {"user_count": USERS, "spawn_rate": USERS})
    assert status == 200 and body["success"] is True, body
    wait_for(lambda: cluster.split_evenly(cluster.report()), 30, f"{USERS} users split evenly")
    wait_for(
        lambda: all(cluster.row(r, h)["requests"] > 50 for r in [cluster.report()] for h in "ab"),
        30,
        "requests from both workers",
    )
    cut = cut_a(cluster)
    restored = restore_a(cluster)
    total, own, per_worker = stop_and_count(cluster)
    print(
        f"lease expired {cut['lease expired']:.2f} s, users stopped {cut['users stopped']:.2f} s,"
        f" missing {cut['missing']:.2f} s, users moved {cut['moved']:.2f} s after the cut"
        f" (handover gap {cut['handover']:+.3f} s, {cut['stranded']:.0f} requests stranded);"
        f" back {restored['back']:.2f} s, reconciled {restored['reconciled']:.2f} s after the"
        f" restore; master total {total}, workers' own {own} (sum {sum(own.values())}),"
        f" master per worker {per_worker}"
    )
    assert total == sum(own.values()), f"master {total} != workers {own} (master: {per_worker})"
    assert per_worker == own
