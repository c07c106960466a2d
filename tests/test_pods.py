"""deploy/kubernetes played on a real pod engine (podman 4.3), as ``kubectl kustomize``
renders it, through :func:`tests.podkube.for_podman` and nothing else.

Each test renders a layer over an overlay (its run's name prefix, the image just built,
its script, the demo target as the system under test) and plays it on a podman network
of its own; ``finally`` removes every pod, volume and the network. The images are built
once per run of the suite (tests/pods.py) and reused while podman has them.

- ``job``: a master Job, three worker pods and a target: the run completes, the master
  exits 0 and its CSV total equals the target's own count; a failing scenario makes the
  master exit non-zero.
- ``interactive``: a test started through the master's web port; a second worker
  Deployment joins and gets its share at the spawn rate; a killed worker pod's users move
  within the README's "When things fail" bounds; a killed master pod played again
  re-adopts its workers within 5 s of its /readyz; a worker with a wrong key is refused.

The figures (build times, image size, join, scale-up, pod-kill and master-restart
timings) are printed at the end and saved to build/pod-figures.json.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from horde.master.timers import LEASE_GRACE
from horde.protocol.defaults import DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_LIVENESS
from tests.podkube import for_podman
from tests.pods import FIGURES, ROOT, Cluster, env_patch, http, images, podman, status, unavailable
from tests.support import SCRIPTS, VENV_BIN, wait_for

pytestmark = [pytest.mark.process, pytest.mark.timeout(300)]

Doc = dict[str, Any]
WORKERS = 3
TARGET_PORT = 8080
HEALTH_PORT = 8090
WEB_PORT = 8089


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    """horde's image in podman (built at most once per run); skipped where podman cannot
    run, except under CI, where that is a failure."""
    reason = unavailable()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the pod tests must run under CI: {reason}")
        pytest.skip(reason)
    yield images()
    print("\npod test figures:", json.dumps(FIGURES, indent=1))
    out = ROOT / "build" / "pod-figures.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(FIGURES, indent=1) + "\n")


@pytest.fixture
def cluster(image: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """This test's pods on their own network, all removed at the end (logs printed on failure)."""
    failed_before = request.session.testsfailed
    started = time.monotonic()
    built = Cluster(image, tmp_path)
    try:
        yield built
    finally:
        if request.session.testsfailed > failed_before:
            names = podman("ps", "-a", "--format", "{{.Names}}", check=False).split()
            for name in names:
                if name.startswith(built.prefix):
                    print(f"=== {name}\n{built.logs(name)[-6000:]}")
        built.close()
        FIGURES[f"{request.node.name} s"] = round(time.monotonic() - started, 1)


def pods_named(docs: list[Doc], name: str) -> list[Doc]:
    """The played Pods called ``name``."""
    return [d for d in docs if d["kind"] == "Pod" and d["metadata"]["name"] == name]


def without(docs: list[Doc], removed: list[Doc]) -> list[Doc]:
    """``docs`` less ``removed``."""
    return [d for d in docs if d not in removed]


def start_target(cluster: Cluster, played: list[Doc]) -> tuple[list[Doc], str]:
    """Play the target pod alone and wait until it counts; the other documents and its URL."""
    target = pods_named(played, f"{cluster.prefix}target")
    cluster.play(target)
    url = f"http://{cluster.ip(cluster.prefix + 'target')}:{TARGET_PORT}"
    wait_for(lambda: http(f"{url}/count"), 60, "the target pod", interval=0.2)
    return without(played, target), url


def job_patches(cluster: Cluster, workers: int, run_time: str) -> list[str]:
    """The job overlay pointed at this run's target and master, with ``workers`` workers."""
    p = cluster.prefix
    master_env = {
        "HORDE_HOST": f"http://{p}target:{TARGET_PORT}",
        "HORDE_RUN_TIME": run_time,
        "HORDE_USERS": "6",
        "HORDE_SPAWN_RATE": "6",
        "HORDE_EXPECT_WORKERS": str(workers),
        "HORDE_EXPECT_WORKERS_MAX_WAIT": "90",
    }
    return [
        env_patch("Job", "horde-master", "master", master_env),
        env_patch(
            "Job",
            "horde-worker",
            "worker",
            {"HORDE_MASTER": f"{p}horde-master:5557"},
            parallelism=workers,
            completions=workers,
        ),
    ]


def aggregated(stats_csv: Path) -> dict[str, str]:
    """The ``Aggregated`` row of a ``_stats.csv``."""
    with stats_csv.open() as handle:
        (row,) = [r for r in csv.DictReader(handle) if r["Name"] == "Aggregated"]
    return row


def test_job_overlay_completes_with_the_targets_count(cluster: Cluster) -> None:
    """The job overlay's master waits for three worker pods, runs, exits 0 (the workers
    too), logs one JSON summary, and its CSV total equals the target's own count."""
    p = cluster.prefix
    docs = cluster.render("job", SCRIPTS / "pod_home.py", job_patches(cluster, WORKERS, "8s"))
    rest, target = start_target(cluster, for_podman(docs))
    started = time.time()
    FIGURES["job play s"] = round(cluster.play(rest), 1)
    master = f"{p}horde-master-master"
    code = cluster.exit_code(master, timeout=180)
    assert code == 0, cluster.logs(master)[-3000:]
    for i in range(1, WORKERS + 1):
        assert cluster.exit_code(f"{p}horde-worker-{i}-worker", timeout=60) == 0
    joined = [e for e in cluster.events(master, "worker ready") if e["workers"] == WORKERS]
    FIGURES["job: three workers joined, s after play"] = round(joined[0]["at"] - started, 2)
    (summary,) = cluster.events(master, "summary")
    reports = cluster.volume_path(f"{p}horde-reports")
    total = int(aggregated(reports / "horde_stats.csv")["Request Count"])
    served = http(f"{target}/count")["served"]
    FIGURES["job: verdict, CSV total, target count"] = [code, total, served]
    assert total == served == summary["total"]["num_requests"] > 0
    assert summary["total"]["num_failures"] == 0
    assert (reports / "report.html").stat().st_size > 0
    (info,) = json.loads(podman("container", "inspect", master))
    assert info["HostConfig"]["ReadonlyRootfs"] is True  # the reports went to the claim
    assert info["Config"]["User"].startswith("10001")


def test_job_overlay_fails_when_requests_fail(cluster: Cluster) -> None:
    """A scenario whose requests all fail makes the master Job's pod exit non-zero."""
    p = cluster.prefix
    docs = cluster.render("job", SCRIPTS / "pod_failing.py", job_patches(cluster, 1, "3s"))
    rest, _ = start_target(cluster, for_podman(docs))
    cluster.play(rest)
    master = f"{p}horde-master-master"
    code = cluster.exit_code(master, timeout=120)
    (summary,) = cluster.events(master, "summary")
    FIGURES["job failing: verdict, failures"] = [code, summary["total"]["num_failures"]]
    assert code != 0
    assert summary["total"]["num_failures"] == summary["total"]["num_requests"] > 0
    assert status(f"http://{cluster.ip(p + 'target')}:{TARGET_PORT}/count") == 200


def rows(web: str, auth: str) -> dict[str, Doc]:
    """The master's worker rows (``/stats/requests``) by worker id."""
    report = http(f"{web}/stats/requests", auth)
    return {row["id"]: row for row in report["workers"]}


def users_of(table: dict[str, Doc], pod: str) -> int:
    """The users the master has on ``pod``'s live workers."""
    return sum(
        row["user_count"]
        for worker, row in table.items()
        if worker.startswith(f"{pod}_") and row["state"] != "missing"
    )


def another_deployment(docs: list[Doc], source: str, name: str, **changes: Any) -> list[Doc]:
    """The rendered Deployment ``source`` under another name (``changes`` to its spec and its
    keys volume's Secret), with the ConfigMaps and Secrets a play needs beside it."""
    (deployment,) = [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == source
    ]
    copy = json.loads(json.dumps(deployment))
    copy["metadata"]["name"] = name
    copy["spec"]["replicas"] = 1
    if "keys" in changes:
        (volume,) = [v for v in copy["spec"]["template"]["spec"]["volumes"] if v["name"] == "keys"]
        volume["secret"]["secretName"] = changes["keys"]
    return [d for d in docs if d["kind"] in ("ConfigMap", "Secret")] + [copy]


def rendered_name(docs: list[Doc], generated: str) -> str:
    """The hashed name kustomize gave a generated ConfigMap or Secret."""
    (found,) = [
        d["metadata"]["name"]
        for d in docs
        if d["kind"] in ("ConfigMap", "Secret") and d["metadata"]["name"].startswith(generated)
    ]
    return str(found)


WRONG_KEYS = {
    "name": "horde-wrong-keys",
    "files": ["worker.key_secret=wrong.key_secret", "master.key=master.key"],
}
"""A worker key pair the master does not know (with the master's real public key)."""
REFUSED = "worker handshake refused: key not on the allow-list"
USERS = 12
SPAWN_RATE = 3
MOVE_BOUND = DEFAULT_HEARTBEAT_INTERVAL * (DEFAULT_HEARTBEAT_LIVENESS + 1) + LEASE_GRACE + 1.5
"""Seconds for a killed worker's users to move: its lease (liveness intervals) after its last
heartbeat (up to one interval before the kill), the grace, and 1.5 s for the web
snapshot's cache and this test's polling."""
READOPT_BOUND = 5.0


@dataclass
class Fleet:
    """The interactive overlay played: its rendered documents, the master's web and health
    URLs, the web credentials and the worker pods expected to hold users."""

    cluster: Cluster
    docs: list[Doc]
    auth: str
    pods: list[str]
    web: str = ""
    health: str = ""

    def find_master(self) -> None:
        """Point at the master pod's present address (it changes when the pod is played again)."""
        ip = self.cluster.ip(f"{self.cluster.prefix}horde-master")
        self.web, self.health = f"http://{ip}:{WEB_PORT}", f"http://{ip}:{HEALTH_PORT}"

    def rows(self) -> dict[str, Doc]:
        """The master's worker rows."""
        return rows(self.web, self.auth)

    def users(self, pod: str) -> int:
        """The users the master has on ``pod``."""
        return users_of(self.rows(), pod)


def start_interactive(cluster: Cluster) -> Fleet:
    """The interactive overlay with two worker pods, a run started through the web port
    (with web.env's credentials), its users split over both pods."""
    p = cluster.prefix
    wrong = cluster.folder / "wrong-keys"
    subprocess.run(
        [str(VENV_BIN / "horde"), "keygen", "--kustomize", str(wrong)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    master_env = {"HORDE_HOST": f"http://{p}target:{TARGET_PORT}"}
    worker_env = {"HORDE_MASTER": f"{p}horde-master:5557"}
    docs = cluster.render(
        "interactive",
        SCRIPTS / "pod_home.py",
        [
            env_patch("Deployment", "horde-master", "master", master_env),
            env_patch("Deployment", "horde-worker", "worker", worker_env, replicas=2),
        ],
        files={
            "wrong.key_secret": wrong / "worker.key_secret",
            "master.key": cluster.keys() / "master.key",
        },
        extra={"secretGenerator": [WRONG_KEYS]},
    )
    rest, _ = start_target(cluster, for_podman(docs))
    cluster.play(rest)
    fleet = Fleet(cluster, docs, cluster.web_auth(), [f"{p}horde-worker-pod-{i}" for i in range(2)])
    fleet.find_master()
    wait_for(lambda: status(f"{fleet.health}/readyz") == 200, 60, "the master's /readyz")
    wait_for(lambda: len(fleet.rows()) == 2, 60, "two worker pods", interval=0.2)
    form = {"user_count": str(USERS), "spawn_rate": str(SPAWN_RATE)}
    http(f"{fleet.web}/swarm", fleet.auth, form)
    wait_for(
        lambda: all(fleet.users(pod) == USERS // 2 for pod in fleet.pods),
        30,
        "the users split over two worker pods",
        interval=0.2,
    )
    return fleet


def scale_up(fleet: Fleet) -> None:
    """A second worker Deployment (same template, another name): its pod gets its share at
    the spawn rate."""
    p = fleet.cluster.prefix
    joiner = f"{p}horde-worker-b-pod-0"
    second = another_deployment(fleet.docs, f"{p}horde-worker", f"{p}horde-worker-b")
    fleet.cluster.convert_and_play(second)
    joined = wait_for(
        lambda: any(w.startswith(f"{joiner}_") for w in fleet.rows()) and time.monotonic(),
        60,
        "the second Deployment's pod",
        interval=0.1,
    )
    share = USERS // 3
    wait_for(lambda: fleet.users(joiner) >= share, 30, "its share", interval=0.1)
    took = time.monotonic() - joined
    FIGURES["interactive: joiner's share (users), s after it joined"] = [share, round(took, 2)]
    assert took <= share / SPAWN_RATE + 2.0
    fleet.pods.append(joiner)


def kill_worker(fleet: Fleet) -> None:
    """A killed worker pod: its users move to the others within the README's bounds."""
    killed = time.monotonic()
    podman("pod", "kill", fleet.pods[0])
    wait_for(
        lambda: sum(fleet.users(pod) for pod in fleet.pods[1:]) == USERS,
        MOVE_BOUND + 10,
        "the killed pod's users on the others",
        interval=0.1,
    )
    moved = time.monotonic() - killed
    FIGURES["interactive: killed worker pod's users moved, s"] = round(moved, 2)
    assert moved <= MOVE_BOUND


def restart_master(fleet: Fleet) -> None:
    """A killed master pod played again: the workers are back within 5 s of its /readyz."""
    master = f"{fleet.cluster.prefix}horde-master"
    again = [
        d
        for d in for_podman(fleet.docs)
        if d["kind"] == "ConfigMap" or d["metadata"]["name"] == master
    ]
    killed = time.monotonic()
    podman("pod", "kill", master)
    podman("pod", "rm", "-f", master)
    fleet.cluster.play(again)
    fleet.find_master()
    ready = wait_for(
        lambda: status(f"{fleet.health}/readyz") == 200 and time.monotonic(),
        60,
        "the new master's /readyz",
        interval=0.05,
    )
    survivors = set(fleet.pods[1:])
    wait_for(
        lambda: {w.rpartition("_")[0] for w in fleet.rows()} >= survivors,
        READOPT_BOUND + 10,
        "the workers re-adopted",
        interval=0.1,
    )
    adopted = time.monotonic()
    FIGURES["interactive: master restart, s from /readyz to re-adoption, from kill"] = [
        round(adopted - ready, 2),
        round(adopted - killed, 2),
    ]
    assert adopted - ready <= READOPT_BOUND


def refuse_wrong_key(fleet: Fleet) -> None:
    """A worker pod whose key the master does not allow is refused and never ready."""
    p = fleet.cluster.prefix
    intruder = f"{p}horde-worker-wrong-pod-0"
    keys = rendered_name(fleet.docs, f"{p}horde-wrong-keys")
    wrong = another_deployment(fleet.docs, f"{p}horde-worker", f"{p}horde-worker-wrong", keys=keys)
    fleet.cluster.convert_and_play(wrong)
    master = f"{p}horde-master-master"
    wait_for(
        lambda: fleet.cluster.events(master, REFUSED), 60, "the master's refusal", interval=0.2
    )
    assert status(f"http://{fleet.cluster.ip(intruder)}:{HEALTH_PORT}/readyz") == 503
    assert not [w for w in fleet.rows() if w.startswith(f"{intruder}_")]


def test_interactive_overlay_scales_recovers_and_refuses(cluster: Cluster) -> None:
    """Through the web port: a run on two worker pods; a second worker Deployment joins at
    the spawn rate; a killed worker pod's users move within the README's bounds; a killed
    master pod played again re-adopts the workers within 5 s of its /readyz; a worker with a
    wrong key is refused."""
    fleet = start_interactive(cluster)
    scale_up(fleet)
    kill_worker(fleet)
    restart_master(fleet)
    refuse_wrong_key(fleet)
