"""deploy/ rendered as a user renders it: a copy with fresh keys, then ``kubectl kustomize``.

Keys are never written into the repository: :func:`deploy_copy` copies deploy/ into a
temporary folder and runs ``horde keygen --kustomize`` there, into the folder the base
kustomization's ``secretGenerator`` reads. Small readers (:func:`containers`,
:func:`env_of`, :func:`by_kind`) keep the manifest tests short.

Imports: the standard library and PyYAML.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.support import VENV_BIN

__all__ = [
    "DEPLOY",
    "OVERLAYS",
    "by_kind",
    "containers",
    "deploy_copy",
    "env_of",
    "kubectl",
    "render",
    "workloads",
]

Doc = dict[str, Any]
DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
OVERLAYS = ("interactive", "job")
SECRETS = Path("kubernetes/base/secrets")
WORKLOADS = ("Pod", "Deployment", "Job")


def kubectl() -> str:
    """kubectl's path; a clear failure (never a skip) when it is missing."""
    found = shutil.which("kubectl")
    if found is None:
        raise AssertionError(
            "kubectl is missing: the deploy/ tests render the manifests with"
            " `kubectl kustomize` (install kubectl: https://kubernetes.io/docs/tasks/tools/)"
        )
    return found


def deploy_copy(folder: Path) -> Path:
    """deploy/ copied into ``folder`` with keys from ``horde keygen --kustomize``; the
    copy's path (its ``kubernetes/overlays/NAME`` are ready to render)."""
    copy = folder / "deploy"
    shutil.copytree(DEPLOY, copy, ignore=shutil.ignore_patterns("secrets"))
    subprocess.run(
        [str(VENV_BIN / "horde"), "keygen", "--kustomize", str(copy / SECRETS)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return copy


def render(kustomization: Path) -> str:
    """``kubectl kustomize`` of one folder: the YAML a cluster would get."""
    done = subprocess.run(
        [kubectl(), "kustomize", str(kustomization)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def load(text: str) -> list[Doc]:
    """The documents of rendered YAML."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def by_kind(docs: list[Doc], kind: str) -> list[Doc]:
    """The documents of one kind."""
    return [doc for doc in docs if doc.get("kind") == kind]


def workloads(docs: list[Doc]) -> list[Doc]:
    """Pods, Deployments and Jobs."""
    return [doc for doc in docs if doc.get("kind") in WORKLOADS]


def pod_template(doc: Doc) -> Doc:
    """A workload's pod (a Pod itself, or a Deployment's or Job's template)."""
    return doc if doc["kind"] == "Pod" else dict(doc["spec"]["template"])


def containers(docs: list[Doc]) -> Iterator[tuple[Doc, Doc]]:
    """Every ``(workload, container)`` pair, init containers included."""
    for doc in workloads(docs):
        spec = pod_template(doc)["spec"]
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            yield doc, container


def env_of(container: Doc) -> dict[str, str]:
    """A container's literal ``env`` values by name."""
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
