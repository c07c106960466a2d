"""Kubernetes YAML as podman 4.3 can play it: :func:`for_podman`, the one conversion.

``kubectl kustomize`` renders deploy/kubernetes; ``podman kube play`` (4.3.1, Debian 12)
runs Pods, Deployments, ConfigMaps and PersistentVolumeClaims, and skips or mishandles
the rest. :func:`for_podman` changes only what 4.3 lacks, and nothing else:

1. A **Job** becomes ``parallelism`` **Pods** (``NAME-1`` ... ``NAME-N``; one, ``NAME``,
   without it): the Job's pod template (labels and spec, with its ``restartPolicy: Never``).
   Job-level fields (backoffLimit, deadlines, TTL) have no Pod equivalent and are dropped.
2. A workload whose pod template a **Service** selects is played as one Pod **named after
   that Service**: podman resolves pods by pod name, not by Service name, and in a cluster
   the workers reach the master through the Service. (A Deployment with ``replicas: 1``.)
3. **Secrets** become ConfigMaps holding the decoded values (4.3 shows a Secret volume's
   base64 text, and crashes on one without ``optional``), and each ``secret`` volume and
   ``secretRef`` in the pod specs points at that ConfigMap instead.
4. Containers lose ``ports`` and their probes: 4.3 publishes every ``containerPort`` on
   the host (two pods with the same port collide) and runs probes through systemd timers
   (absent on these machines). The tests reach pods by their address on the podman network
   and ask ``/healthz`` and ``/readyz`` themselves.

:data:`CHANGED_POD_FIELDS` lists the pod-spec fields (3., 4.) may change; a test checks
that the conversion changes no other field of any pod spec.

Services, NetworkPolicies, PodDisruptionBudgets and HorizontalPodAutoscalers are left as
rendered: podman skips them (tests/test_deploy_manifests.py checks them instead).

Imports: the standard library only.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

__all__ = ["CHANGED_POD_FIELDS", "for_podman", "pod_specs", "selects"]

Doc = dict[str, Any]

CHANGED_POD_FIELDS = frozenset(
    {
        "volumes[].secret",
        "volumes[].configMap",
        "containers[].envFrom[].secretRef",
        "containers[].envFrom[].configMapRef",
        "containers[].ports",
        "containers[].livenessProbe",
        "containers[].readinessProbe",
    }
)
"""The pod-spec fields :func:`for_podman` may change (added, removed or rewritten)."""

UNPLAYED_CONTAINER_FIELDS = ("ports", "livenessProbe", "readinessProbe")

WORKLOADS = ("Deployment", "Job")


def for_podman(docs: list[Doc]) -> list[Doc]:
    """The rendered documents ``docs`` as podman 4.3's ``kube play`` can run them."""
    services = [d for d in docs if d.get("kind") == "Service"]
    converted = []
    for doc in docs:
        new = [copy.deepcopy(doc)]
        if doc.get("kind") == "Secret":
            new = [_secret_as_configmap(new[0])]
        elif doc.get("kind") in WORKLOADS:
            new = _workload(new[0], services)
        for one in new:
            if one.get("kind") in ("Pod", *WORKLOADS):
                _playable(_pod_spec(one))
        converted.extend(new)
    return converted


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Whether a ``matchLabels``-style selector matches ``labels``."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def pod_specs(docs: list[Doc]) -> dict[str, Doc]:
    """Each workload's pod spec by its pod-template labels' component (or its name)."""
    specs = {}
    for doc in docs:
        if doc.get("kind") in ("Pod", *WORKLOADS):
            labels = _pod_labels(doc)
            specs[labels.get("app.kubernetes.io/component", doc["metadata"]["name"])] = _pod_spec(
                doc
            )
    return specs


def _workload(doc: Doc, services: list[Doc]) -> list[Doc]:
    """A Job as its Pods; a workload a Service selects as one Pod named after the Service."""
    labels = _pod_labels(doc)
    service = next((s for s in services if selects(s["spec"].get("selector", {}), labels)), None)
    if service is not None:
        names = [service["metadata"]["name"]]
    elif doc["kind"] == "Job" and doc["spec"].get("parallelism", 1) > 1:
        names = [f"{doc['metadata']['name']}-{i}" for i in range(1, doc["spec"]["parallelism"] + 1)]
    elif doc["kind"] == "Job":
        names = [doc["metadata"]["name"]]
    else:
        return [doc]
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": labels},
            "spec": copy.deepcopy(_pod_spec(doc)),
        }
        for name in names
    ]


def _pod_labels(doc: Doc) -> dict[str, str]:
    """A Pod's labels, or a workload's pod-template labels."""
    if doc["kind"] == "Pod":
        return dict(doc["metadata"].get("labels", {}))
    return dict(doc["spec"]["template"]["metadata"].get("labels", {}))


def _pod_spec(doc: Doc) -> Doc:
    """A Pod's spec, or a workload's pod-template spec (the same object, not a copy)."""
    spec: Doc = doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]
    return spec


def _secret_as_configmap(secret: Doc) -> Doc:
    """A Secret's decoded values as a ConfigMap of the same name."""
    data = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
    data.update(secret.get("stringData", {}))
    metadata = {"name": secret["metadata"]["name"]}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def _playable(spec: Doc) -> None:
    """Point ``spec``'s secret volumes and ``secretRef`` environments at ConfigMaps; drop
    its containers' ports and probes."""
    for volume in spec.get("volumes", []):
        if "secret" in volume:
            secret = volume.pop("secret")
            volume["configMap"] = {"name": secret["secretName"]} | {
                k: v for k, v in secret.items() if k != "secretName"
            }
    for container in spec.get("containers", []):
        for field in UNPLAYED_CONTAINER_FIELDS:
            container.pop(field, None)
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                source["configMapRef"] = source.pop("secretRef")
