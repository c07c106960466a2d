"""deploy/kubernetes rendered by ``kubectl kustomize`` and checked offline.

Each overlay is rendered from a copy of deploy/ holding fresh keys (``horde keygen
--kustomize``), validated against Kubernetes' schemas (``kubernetes-validate --strict``,
1.30 and the newest version it bundles), then checked for what schemas cannot see:
selectors that match, ports that line up, ``HORDE_*`` variables horde's own parser takes,
probes on served paths, resources and the restricted security context on every
container, and the NetworkPolicy, HPA and PDB selecting what they should (podman ignores
those three, so these checks are their only test). The conversion the pod tests play
(``tests/podkube.py``) is checked here too: it changes only the fields it lists.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from horde.cli import apply_env, build_parser, env_name, subparser
from horde.health import LIVE_PATH, READY_PATH, answer
from tests.kustomize import (
    DEPLOY,
    OVERLAYS,
    by_kind,
    containers,
    deploy_copy,
    env_of,
    load,
    pod_template,
    render,
    workloads,
)
from tests.podkube import CHANGED_POD_FIELDS, for_podman, pod_specs, selects
from tests.support import VENV_BIN

Doc = dict[str, Any]
VERSIONS = ("1.30", kubernetes_validate.latest_version())
STOP_FLUSH = 10
"""Seconds a master needs beyond its stop timeout to flush stats and write reports."""
COMMANDS = ("master", "worker", "target")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each overlay's rendered YAML, in a file of a temporary folder."""
    folder = tmp_path_factory.mktemp("deploy")
    copy = deploy_copy(folder)
    files = {}
    for overlay in OVERLAYS:
        files[overlay] = folder / f"{overlay}.yaml"
        files[overlay].write_text(render(copy / "kubernetes" / "overlays" / overlay))
    return files


def docs_of(rendered: dict[str, Path], overlay: str) -> list[Doc]:
    """One overlay's rendered documents."""
    return load(rendered[overlay].read_text())


def component(doc: Doc) -> str:
    """A workload's pod-template component label (master, worker ...)."""
    return str(pod_template(doc)["metadata"]["labels"]["app.kubernetes.io/component"])


def one(docs: list[Doc], kind: str) -> Doc:
    """The only document of a kind."""
    found = by_kind(docs, kind)
    assert len(found) == 1, f"{len(found)} {kind} documents"
    return found[0]


def workload(docs: list[Doc], name: str) -> Doc:
    """The workload whose pods are the ``name`` component."""
    (found,) = [doc for doc in workloads(docs) if component(doc) == name]
    return found


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_passes_strict_schema_validation(
    rendered: dict[str, Path], overlay: str, version: str
) -> None:
    """Every rendered object is valid, unknown fields rejected, for 1.30 and the newest version."""
    done = subprocess.run(
        [str(VENV_BIN / "kubernetes-validate"), "--strict", "--quiet", "-k", version],
        input=rendered[overlay].read_text(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "error" not in (done.stdout + done.stderr).lower()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_selectors_and_services_match_their_pods(rendered: dict[str, Path], overlay: str) -> None:
    """Deployment selectors match their pod labels; the Service selects exactly the master
    pods, and each Service port reaches a container port of the same number."""
    docs = docs_of(rendered, overlay)
    for doc in by_kind(docs, "Deployment"):
        labels = pod_template(doc)["metadata"]["labels"]
        assert selects(doc["spec"]["selector"]["matchLabels"], labels), doc["metadata"]["name"]
    service = one(docs, "Service")
    chosen = [d for d in workloads(docs) if selects(service["spec"]["selector"], labels_of(d))]
    assert [component(d) for d in chosen] == ["master"]
    ports = {
        p.get("name", p["containerPort"]): p["containerPort"]
        for c in pod_template(chosen[0])["spec"]["containers"]
        for p in c.get("ports", [])
    }
    served = [p for p in service["spec"]["ports"] if p["targetPort"] in ports]
    assert served == service["spec"]["ports"], f"{service['spec']['ports']} vs {ports}"
    assert all(ports[p["targetPort"]] == p["port"] for p in served)


def labels_of(doc: Doc) -> dict[str, str]:
    """A workload's pod labels."""
    return dict(pod_template(doc)["metadata"]["labels"])


def accepted_variables(command: str) -> set[str]:
    """The ``HORDE_*`` variables ``horde COMMAND`` accepts, from horde's own parser."""
    parser = subparser(build_parser(), command)
    return {env_name(a) for a in parser._actions if a.option_strings and a.dest != "help"}


def secret_keys(docs: list[Doc], name: str) -> dict[str, str]:
    """A rendered Secret's decoded values (or a ConfigMap's)."""
    (doc,) = [d for d in docs if d["metadata"]["name"] == name]
    if doc["kind"] == "Secret":
        return {k: base64.b64decode(v).decode() for k, v in doc.get("data", {}).items()}
    return dict(doc.get("data", {}))


def container_env(docs: list[Doc], container: Doc) -> dict[str, str]:
    """A container's environment: its ``envFrom`` sources, then its literal ``env``."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ref = source.get("secretRef") or source.get("configMapRef")
        env.update(secret_keys(docs, ref["name"]))
    return env | env_of(container)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_horde_variable_is_one_the_command_accepts(
    rendered: dict[str, Path], overlay: str
) -> None:
    """Each ``HORDE_*`` variable a container gets (literal or from a Secret) is a flag of its
    ``horde`` command, and horde's parser takes its value."""
    docs = docs_of(rendered, overlay)
    checked = 0
    for _, container in containers(docs):
        command = container["args"][0]
        assert command in COMMANDS, container["args"]
        env = {k: v for k, v in container_env(docs, container).items() if k.startswith("HORDE_")}
        unknown = set(env) - accepted_variables(command)
        assert not unknown, f"horde {command} does not take {sorted(unknown)}"
        parser = build_parser()
        try:
            apply_env(parser, env)
        except SystemExit:
            pytest.fail(f"horde {command} refuses a value in {env}")
        checked += len(env)
    assert checked >= 10


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_ask_the_health_port_for_served_paths(
    rendered: dict[str, Path], overlay: str
) -> None:
    """Liveness probes ask /healthz and readiness probes /readyz, on the container port
    that HORDE_HEALTH_PORT opens; horde answers those paths as the probe expects."""
    probes = 0
    for _, container in containers(docs_of(rendered, overlay)):
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        health_port = int(env_of(container).get("HORDE_HEALTH_PORT", 0))
        for kind, path, when_unready in (
            ("livenessProbe", LIVE_PATH, 200),
            ("readinessProbe", READY_PATH, 503),
        ):
            if kind not in container:
                continue
            probe = container[kind]["httpGet"]
            assert probe["path"] == path
            assert ports.get(probe["port"], probe["port"]) == health_port != 0
            status, _ = answer(f"GET {path} HTTP/1.1", lambda: None, lambda: "unregistered")
            assert status == when_unready
            probes += 1
        assert "livenessProbe" in container or container["args"][0] == "target"
    assert probes >= 3


def test_probe_paths_are_the_only_ones_served() -> None:
    """horde's health server answers 404 for any path but the two the probes use."""
    assert answer("GET /metrics HTTP/1.1", lambda: None, lambda: None)[0] == 404
    assert answer(f"GET {READY_PATH} HTTP/1.1", lambda: None, lambda: None)[0] == 200


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_restricted(rendered: dict[str, Path], overlay: str) -> None:
    """Every container has requests and limits and the restricted security context; every
    pod runs as non-root with RuntimeDefault seccomp and no service-account token, and
    every path horde writes is a writable volume."""
    docs = docs_of(rendered, overlay)
    for doc in workloads(docs):
        spec = pod_template(doc)["spec"]
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] > 0
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for doc, container in containers(docs):
        resources = container["resources"]
        for side in ("requests", "limits"):
            assert set(resources[side]) >= {"cpu", "memory"}, container["name"]
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"]["drop"] == ["ALL"]
        assert security["runAsNonRoot"] is True
        writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
        env = env_of(container)
        written = {"/tmp"} | {
            str(Path(env[k]).parent) for k in ("HORDE_CSV_PREFIX", "HORDE_HTML") if k in env
        }
        assert written <= writable, f"{doc['metadata']['name']}: {written - writable} read-only"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_grace_period_covers_the_stop_timeout_and_flush(
    rendered: dict[str, Path], overlay: str
) -> None:
    """Each pod's terminationGracePeriodSeconds exceeds its stop timeout plus the flush."""
    for doc, container in containers(docs_of(rendered, overlay)):
        stop = float(env_of(container).get("HORDE_STOP_TIMEOUT", 0))
        grace = pod_template(doc)["spec"]["terminationGracePeriodSeconds"]
        assert grace > stop + STOP_FLUSH, doc["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policy_and_budget_select_the_master(
    rendered: dict[str, Path], overlay: str
) -> None:
    """The NetworkPolicy guards the master pods and opens the ZeroMQ port to worker pods
    only; the PodDisruptionBudget covers the master pods and allows no eviction."""
    docs = docs_of(rendered, overlay)
    master, worker = labels_of(workload(docs, "master")), labels_of(workload(docs, "worker"))
    policy = one(docs, "NetworkPolicy")["spec"]
    assert selects(policy["podSelector"]["matchLabels"], master)
    zmq_port = 5557
    zmq_rules = [r for r in policy["ingress"] if any(p["port"] == zmq_port for p in r["ports"])]
    assert len(zmq_rules) == 1
    (source,) = zmq_rules[0]["from"]
    assert selects(source["podSelector"]["matchLabels"], worker)
    assert not selects(source["podSelector"]["matchLabels"], master)
    budget = one(docs, "PodDisruptionBudget")["spec"]
    assert selects(budget["selector"]["matchLabels"], master)
    assert not selects(budget["selector"]["matchLabels"], worker)
    assert budget["maxUnavailable"] == 0


def test_interactive_autoscaler_scales_the_worker_deployment(rendered: dict[str, Path]) -> None:
    """The HPA (autoscaling/v2) scales the worker Deployment on CPU, which has a CPU request."""
    docs = docs_of(rendered, "interactive")
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    (scaled,) = [
        d for d in by_kind(docs, target["kind"]) if d["metadata"]["name"] == target["name"]
    ]
    assert component(scaled) == "worker"
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert pod_template(scaled)["spec"]["containers"][0]["resources"]["requests"]["cpu"]
    master = workload(docs, "master")
    assert master["kind"] == "Deployment"
    assert master["spec"]["replicas"] == 1
    assert master["spec"]["strategy"] == {"type": "Recreate"}


def test_job_overlay_gives_a_verdict_and_keeps_the_reports(rendered: dict[str, Path]) -> None:
    """The job overlay's master Job runs headless, is never retried, waits for as many
    workers as the worker Job runs, and writes its reports to a claimed volume."""
    docs = docs_of(rendered, "job")
    assert not by_kind(docs, "Deployment")
    master, worker = workload(docs, "master"), workload(docs, "worker")
    assert master["kind"] == worker["kind"] == "Job"
    assert master["spec"]["backoffLimit"] == 0
    assert master["spec"]["ttlSecondsAfterFinished"] > 0
    assert worker["spec"]["activeDeadlineSeconds"] > 0
    env = env_of(pod_template(master)["spec"]["containers"][0])
    assert env["HORDE_HEADLESS"] == "true"
    assert int(env["HORDE_EXPECT_WORKERS"]) == worker["spec"]["parallelism"]
    assert worker["spec"]["completions"] == worker["spec"]["parallelism"]
    assert env["HORDE_EXPECT_WORKERS_MAX_WAIT"] and env["HORDE_RUN_TIME"]
    for spec in (pod_template(master)["spec"], pod_template(worker)["spec"]):
        assert spec["restartPolicy"] == "Never"
    mounts = {
        m["mountPath"]: m["name"]
        for m in pod_template(master)["spec"]["containers"][0]["volumeMounts"]
    }
    reports = mounts[str(Path(env["HORDE_CSV_PREFIX"]).parent)]
    (volume,) = [v for v in pod_template(master)["spec"]["volumes"] if v["name"] == reports]
    claim = volume["persistentVolumeClaim"]["claimName"]
    assert [d["metadata"]["name"] for d in by_kind(docs, "PersistentVolumeClaim")] == [claim]


def test_keys_and_script_come_from_generators(rendered: dict[str, Path]) -> None:
    """The script is one ConfigMap key and each side's keys are a Secret holding only its
    own secret key and the other side's public key; the web credentials are one variable."""
    docs = docs_of(rendered, "interactive")
    names = {d["metadata"]["name"].rsplit("-", 1)[0]: d for d in docs if d["kind"] != "Service"}
    assert list(names["horde-script"]["data"]) == ["locustfile.py"]
    assert sorted(names["horde-master-keys"]["data"]) == ["master.key_secret", "worker.key"]
    assert sorted(names["horde-worker-keys"]["data"]) == ["master.key", "worker.key_secret"]
    web = secret_keys(docs, names["horde-web"]["metadata"]["name"])
    assert list(web) == ["HORDE_WEB_AUTH"]
    assert web["HORDE_WEB_AUTH"].startswith("horde:")


def test_no_keys_in_the_repository() -> None:
    """No key or credential file under deploy/ is tracked by git."""
    tracked = subprocess.run(
        ["git", "ls-files", str(DEPLOY)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert not [f for f in tracked if f.endswith((".key", ".key_secret", "web.env"))]


def field_paths(before: Any, after: Any, path: str = "") -> set[str]:
    """The fields (``containers[].ports``) that differ between two pod specs."""
    if isinstance(before, dict) and isinstance(after, dict):
        changed = set()
        for key in before.keys() | after.keys():
            if key not in before or key not in after:
                changed.add(f"{path}{key}")
            else:
                changed |= field_paths(before[key], after[key], f"{path}{key}.")
        return changed
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        list_path = path[:-1] + "[]."
        return set().union(
            *(field_paths(b, a, list_path) for b, a in zip(before, after, strict=True))
        )
    return set() if before == after else {path.rstrip(".")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_podman_conversion_changes_only_the_fields_it_lists(
    rendered: dict[str, Path], overlay: str
) -> None:
    """for_podman turns Jobs and the Service's workload into Pods, Secrets into ConfigMaps
    with the same values, and changes no pod-spec field beyond CHANGED_POD_FIELDS."""
    docs = docs_of(rendered, overlay)
    played = for_podman(docs)
    before, after = pod_specs(docs), pod_specs(played)
    assert before.keys() == after.keys()
    for name in before:
        changed = field_paths(before[name], after[name])
        assert changed <= CHANGED_POD_FIELDS, f"{name}: {changed - CHANGED_POD_FIELDS}"
    (master,) = [
        d
        for d in by_kind(played, "Pod")
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == "master"
    ]
    assert master["kind"] == "Pod"
    assert master["metadata"]["name"] == one(docs, "Service")["metadata"]["name"]
    assert not [d for d in played if d["kind"] in ("Job", "Secret")]
    for secret in by_kind(docs, "Secret"):
        name = secret["metadata"]["name"]
        assert secret_keys(played, name) == secret_keys(docs, name)
    untouched = [d for d in docs if d["kind"] not in ("Secret", "Deployment", "Job")]
    assert all(d in played for d in untouched)
    assert len(by_kind(played, "Pod")) == sum(
        d["spec"].get("parallelism", 1) for d in by_kind(docs, "Job")
    ) + (overlay == "interactive")  # the master Deployment
    assert len(by_kind(played, "Deployment")) == (overlay == "interactive")
