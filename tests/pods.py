"""A pod engine for the deploy/ tests: podman 4.3 playing rendered manifests.

:func:`images` makes the images once per run of the suite and reuses what podman still
has: the Dockerfile's base (its ``FROM`` name) built from Debian's packages with
debootstrap when podman lacks it, and horde's image, tagged with a hash of the build
context, so an unchanged tree is never rebuilt. :class:`Cluster` is one test's pods: a
per-run name prefix and a podman network of its own; it renders a test layer over an
overlay (``kubectl kustomize``), plays documents passed through
:func:`tests.podkube.for_podman`, reads logs, addresses and exit codes, and removes every
pod, volume and the network in :meth:`Cluster.close`.

Imports: the standard library, PyYAML, tests.kustomize and tests.podkube.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from tests.kustomize import DEPLOY, deploy_copy, load, render
from tests.podkube import for_podman

__all__ = ["Cluster", "images", "podman", "unavailable"]

Doc = dict[str, Any]
ROOT = DEPLOY.parent
CONF = DEPLOY / "podman" / "containers.conf"
IMAGE = "localhost/horde"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
DEBIAN_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = "python3,python3-venv,python3-pip,python-is-python3,ca-certificates"
CONTEXT = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md")
SOURCES = ("horde", "master", "worker", "protocol")
FIGURES: dict[str, Any] = {}
"""Timings the pod tests measured, printed at the end of the module and saved to build/."""


def podman(*args: str, timeout: float = 120, check: bool = True) -> str:
    """Run ``podman ARGS`` with the project's containers.conf; its standard output."""
    env = os.environ | {"CONTAINERS_CONF": str(CONF)}
    done = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {done.returncode}\n{done.stderr}")
    return done.stdout


def unavailable() -> str | None:
    """Why pods cannot run here (not root, no podman), or None."""
    if os.geteuid() != 0:
        return "the pod tests run podman as root"
    if shutil.which("podman") is None:
        return "podman is missing (make pods installs it)"
    return None


def base_image() -> str:
    """The Dockerfile's ``FROM`` image (every stage uses the same one)."""
    names = {
        line.split()[1]
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("FROM ")
    }
    assert len(names) == 1, names
    return names.pop()


def context_hash() -> str:
    """A hash of everything the image's build reads (an unchanged tree reuses the image)."""
    digest = hashlib.sha256()
    paths = [ROOT / name for name in CONTEXT]
    for source in SOURCES:
        paths += sorted(p for p in (ROOT / source).rglob("*") if p.is_file())
    for path in paths:
        if "__pycache__" in path.parts:
            continue
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def images() -> str:
    """horde's image (built when podman lacks this tree's, replacing older trees' images),
    on the Debian-made base.

    The build reaches the package registries with the machine's CA bundle mounted and the
    host's network (a netavark bridge cannot reach this machine's resolver): both are this
    machine's needs, passed here so the Dockerfile has none of them."""
    base = base_image()
    if not has_image(base):
        started = time.monotonic()
        build_base(base)
        FIGURES["base image build s"] = round(time.monotonic() - started, 1)
    image = f"{IMAGE}:{context_hash()}"
    if not has_image(image):
        started = time.monotonic()
        podman(
            "build", "--pull=never", "--network=host", "-q", "-t", image,
            "-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro", str(ROOT), timeout=900,
        )  # fmt: skip
        FIGURES["horde image build s"] = round(time.monotonic() - started, 1)
        for old in podman("images", "--format", "{{.Repository}}:{{.Tag}}", IMAGE).split():
            if old != image:  # an older tree's image: this suite will not use it again
                podman("rmi", old, check=False)
    size = json.loads(podman("image", "inspect", image))[0]["Size"]
    FIGURES["horde image MB"] = round(size / 1e6)
    return image


def has_image(name: str) -> bool:
    """Whether podman has the image ``name``."""
    env = os.environ | {"CONTAINERS_CONF": str(CONF)}
    done = subprocess.run(["podman", "image", "exists", name], env=env, timeout=60, check=False)
    return done.returncode == 0


def build_base(name: str) -> None:
    """Debian 12 with Python 3.11 from Debian's packages, imported and tagged ``name``."""
    with tempfile.TemporaryDirectory(prefix="horde-rootfs-") as rootfs:
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", "bookworm",
             rootfs, DEBIAN_MIRROR],
            check=True, capture_output=True, timeout=900,
        )  # fmt: skip
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        env = os.environ | {"CONTAINERS_CONF": str(CONF)}
        subprocess.run(
            ["podman", "import", "--change", f"ENV={path}", "-", name],
            stdin=tar.stdout, check=True, capture_output=True, timeout=600, env=env,
        )  # fmt: skip
        tar.wait(timeout=60)


TARGET = """\
apiVersion: v1
kind: Pod
metadata:
  name: target
  labels:
    app.kubernetes.io/name: horde
    app.kubernetes.io/component: target
spec:
  restartPolicy: Never
  containers:
    - name: target
      image: horde
      imagePullPolicy: IfNotPresent
      args: ["target", "--host", "0.0.0.0", "--port", "8080"]
"""
"""The test's system under test: horde's demo target, which counts what it served."""

SCRIPT_MAP = {"name": "horde-script", "behavior": "replace", "files": ["locustfile.py=script.py"]}
"""The test's script in place of the user's (the one line a user changes)."""


def env_patch(kind: str, name: str, container: str, env: dict[str, str], **spec: Any) -> str:
    """A strategic-merge patch setting ``env`` (and top-level ``spec`` fields) on a workload."""
    patch: Doc = {
        "apiVersion": "batch/v1" if kind == "Job" else "apps/v1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec
        | {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": container,
                            "env": [{"name": k, "value": v} for k, v in env.items()],
                        }
                    ]
                }
            }
        },
    }
    return yaml.safe_dump(patch)


@dataclass
class Cluster:
    """One test's pods: a prefix, a network, a copy of deploy/ with keys; :meth:`close` ends all."""

    image: str
    folder: Path
    prefix: str = field(default_factory=lambda: f"hk{secrets.token_hex(3)}-")
    played: list[Doc] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.deploy = deploy_copy(self.folder)
        self.network = f"{self.prefix}net"
        podman("network", "create", self.network)

    def keys(self) -> Path:
        """The folder ``horde keygen --kustomize`` filled."""
        return self.deploy / "kubernetes" / "base" / "secrets"

    def web_auth(self) -> str:
        """``user:password`` from web.env."""
        return (self.keys() / "web.env").read_text().strip().partition("=")[2]

    def render(
        self,
        overlay: str,
        script: Path,
        patches: list[str],
        files: dict[str, Path] | None = None,
        extra: Doc | None = None,
    ) -> list[Doc]:
        """``kubectl kustomize`` of a test layer over ``overlay``: this run's prefix, the
        image just built, ``script`` as the user's script, the target pod and ``patches``
        (``files`` are copied into the layer, ``extra`` joins its kustomization)."""
        layer = self.deploy / "kubernetes" / f"test-{overlay}-{secrets.token_hex(2)}"
        layer.mkdir()
        shutil.copy(script, layer / "script.py")
        for name, source in (files or {}).items():
            shutil.copy(source, layer / name)
        (layer / "target.yaml").write_text(TARGET)
        name, _, tag = self.image.partition(":")
        kustomization: Doc = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "namePrefix": self.prefix,
            "resources": [f"../overlays/{overlay}", "target.yaml"],
            "images": [{"name": "horde", "newName": name, "newTag": tag}],
            "configMapGenerator": [SCRIPT_MAP],
            "patches": [{"patch": text} for text in patches],
        }
        (layer / "kustomization.yaml").write_text(yaml.safe_dump(kustomization | (extra or {})))
        return load(render(layer))

    def play(self, docs: list[Doc]) -> float:
        """Play ``docs`` (already through for_podman) on this run's network; the time it took."""
        self.played += docs
        path = self.folder / f"play-{secrets.token_hex(3)}.yaml"
        path.write_text(yaml.safe_dump_all(docs))
        started = time.monotonic()
        podman("kube", "play", "--network", self.network, str(path), timeout=300)
        return time.monotonic() - started

    def convert_and_play(self, docs: list[Doc]) -> float:
        """Play ``docs`` as podman 4.3 can (:func:`tests.podkube.for_podman`)."""
        return self.play(for_podman(docs))

    def ip(self, pod: str) -> str:
        """A pod's address on this run's network."""
        info = json.loads(podman("pod", "inspect", pod))
        infra = info["InfraContainerID"]
        networks = json.loads(podman("inspect", infra))[0]["NetworkSettings"]["Networks"]
        return str(networks[self.network]["IPAddress"])

    def logs(self, container: str) -> str:
        """A container's output so far (stdout and stderr)."""
        env = os.environ | {"CONTAINERS_CONF": str(CONF)}
        done = subprocess.run(
            ["podman", "logs", container],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        return done.stdout + done.stderr

    def events(self, container: str, event: str) -> list[Doc]:
        """The JSON log lines of ``container`` whose event is ``event``, each with ``at``
        (its timestamp in unix seconds)."""
        found = []
        for line in self.logs(container).splitlines():
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == event:
                stamp = datetime.fromisoformat(record["timestamp"])
                record["at"] = stamp.timestamp() if stamp.tzinfo else utc_seconds(stamp)
                found.append(record)
        return found

    def exit_code(self, container: str, timeout: float) -> int:
        """Wait for ``container`` to exit; its exit code."""
        out = podman("wait", container, timeout=timeout)
        return int(out.strip().splitlines()[-1])

    def volume_path(self, claim: str) -> Path:
        """Where a played PersistentVolumeClaim's files are on this machine."""
        return Path(podman("volume", "inspect", claim, "--format", "{{.Mountpoint}}").strip())

    def close(self) -> None:
        """Remove this run's pods, their volumes and the network."""
        pods = podman("pod", "ls", "--format", "{{.Name}}", check=False).split()
        ours = [pod for pod in pods if pod.startswith(self.prefix)]
        if ours:
            # Stopped first, all at once and with no grace (the test is over): removing a
            # running pod waits about 3 s for its cgroup, one pod after another.
            podman("pod", "stop", "-t", "0", *ours, check=False, timeout=120)
            podman("pod", "rm", "-f", *ours, check=False, timeout=120)
        volumes = set(podman("volume", "ls", "-q", check=False).split())
        for volume in volumes & self.volume_names():
            podman("volume", "rm", "-f", volume, check=False)
        podman("network", "rm", "-f", self.network, check=False)

    def volume_names(self) -> set[str]:
        """The podman volumes the played documents made: claims, ConfigMaps, emptyDirs."""
        names = {d["metadata"]["name"] for d in self.played if d["kind"] != "Pod"}
        for doc in self.played:
            if doc["kind"] == "Pod":
                names |= {v["name"] for v in doc["spec"].get("volumes", []) if "emptyDir" in v}
        return names


def utc_seconds(stamp: datetime) -> float:
    """Unix seconds of a naive UTC timestamp (horde's JSON logs)."""
    return (stamp - datetime(1970, 1, 1)).total_seconds()


def http(url: str, auth: str | None = None, data: dict[str, str] | None = None) -> Any:
    """GET (or POST a form to) ``url`` with optional Basic auth; the decoded JSON body."""
    headers = {}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    body = None
    if data is not None:
        body = "&".join(f"{k}={v}" for k, v in data.items()).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def status(url: str) -> int:
    """The HTTP status of GET ``url`` (0 when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0
