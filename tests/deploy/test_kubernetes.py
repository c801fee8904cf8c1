"""deploy/k8s renders with kustomize (kubectl's own, offline), validates against the Kubernetes API schemas that
kubernetes-validate bundles, and agrees with the images, ports, settings and GPU choices of the compose files.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE = "deploy/k8s/base"
GPU = "deploy/k8s/gpu"
PORTS = {"stt": 8001, "llm": 8002, "tts": 8003, "realtime": 8004, "frontend": 8501}
MODEL_SERVICES = ("stt", "llm", "tts")
# the oldest Kubernetes release still common in managed clusters, and the newest the package knows
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
APP_UID = 10001  # USER of every image (tests/deploy/test_dockerfiles.py)
Render = Callable[[str], list[dict[str, Any]]]


def by_kind(resources: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def quantity(value: str | int) -> float:
    """A Kubernetes quantity ("500m", "2", "512Mi", "3Gi") as a number of cores or bytes."""
    suffixes = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([a-zA-Z]*)", str(value))
    assert match, value
    return float(match.group(1)) * suffixes.get(match.group(2), 1)


@pytest.fixture(scope="module")
def base(kustomize: Render) -> list[dict[str, Any]]:
    return kustomize(BASE)


@pytest.fixture(scope="module")
def gpu(kustomize: Render) -> list[dict[str, Any]]:
    return kustomize(GPU)


@pytest.fixture(scope="module")
def config_map(base: list[dict[str, Any]]) -> dict[str, str]:
    return by_kind(base, "ConfigMap")["voice-agent"]["data"]


def test_every_manifest_is_listed_in_the_kustomization() -> None:
    kustomization = yaml.safe_load((REPO_ROOT / BASE / "kustomization.yaml").read_text())
    files = {p.name for p in (REPO_ROOT / BASE).glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("directory", [BASE, GPU])
def test_rendered_manifests_validate_against_the_kubernetes_schemas(
    kustomize: Render, directory: str, version: str
) -> None:
    """Strict: a misspelt or misplaced field fails too, not only a wrong type."""
    resources = kustomize(directory)
    assert resources
    for resource in resources:
        kubernetes_validate.validate(resource, version, strict=True)


def test_each_plain_file_validates_on_its_own() -> None:
    """`kubectl apply -f <file>` works without kustomize: every file is complete, valid resources."""
    for path in sorted((REPO_ROOT / BASE).glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for resource in yaml.safe_load_all(path.read_text()):
            kubernetes_validate.validate(resource, KUBERNETES_VERSIONS[-1], strict=True)


def test_validation_rejects_a_misspelt_field(base: list[dict[str, Any]]) -> None:
    deployment = yaml.safe_load(yaml.safe_dump(by_kind(base, "Deployment")["stt"]))
    deployment["spec"]["replica"] = deployment["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_each_part_has_a_deployment_and_a_service_that_selects_it(base: list[dict[str, Any]]) -> None:
    deployments, services = by_kind(base, "Deployment"), by_kind(base, "Service")
    assert set(deployments) == set(services) == set(PORTS)
    for name, port in PORTS.items():
        pod = deployments[name]["spec"]["template"]
        assert deployments[name]["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        assert services[name]["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
        container_ports = {p["name"]: p["containerPort"] for p in container(deployments[name])["ports"]}
        (service_port,) = services[name]["spec"]["ports"]
        assert service_port["port"] == port
        assert container_ports[service_port["targetPort"]] == port


def test_probes_liveness_on_health_readiness_on_ready_and_time_for_first_downloads(
    base: list[dict[str, Any]],
) -> None:
    deployments = by_kind(base, "Deployment")
    for name in MODEL_SERVICES:
        spec = container(deployments[name])
        assert spec["livenessProbe"]["httpGet"]["path"] == "/health"
        assert spec["readinessProbe"]["httpGet"]["path"] == "/ready"
        startup = spec["startupProbe"]
        assert startup["httpGet"]["path"] == "/ready"
        # as long as compose's start_period at least: a first start may download a model
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 600, name
    realtime = container(deployments["realtime"])
    assert realtime["livenessProbe"]["httpGet"]["path"] == "/health"
    assert realtime["readinessProbe"]["httpGet"]["path"] == realtime["startupProbe"]["httpGet"]["path"] == "/ready"
    page = container(deployments["frontend"])
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert page[probe]["httpGet"]["path"] == "/_stcore/health"


def test_every_container_has_requests_and_limits(base: list[dict[str, Any]], gpu: list[dict[str, Any]]) -> None:
    for resources in (base, gpu):
        for name, deployment in by_kind(resources, "Deployment").items():
            limits = container(deployment)["resources"]["limits"]
            requests = container(deployment)["resources"]["requests"]
            for resource in ("cpu", "memory"):
                assert quantity(requests[resource]) <= quantity(limits[resource]), (name, resource)


def test_model_threads_match_the_cpu_limits(base: list[dict[str, Any]], config_map: dict[str, str]) -> None:
    """More threads than the CPU quota slows CTranslate2 and llama.cpp (OpenMP) down badly."""
    deployments = by_kind(base, "Deployment")
    for name, threads in (("stt", "STT_CPU_THREADS"), ("llm", "LLM_N_THREADS")):
        cpu_limit = container(deployments[name])["resources"]["limits"]["cpu"]
        assert quantity(config_map[threads]) == quantity(cpu_limit), name


def test_pods_run_as_the_images_non_root_user(base: list[dict[str, Any]]) -> None:
    for name, deployment in by_kind(base, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == APP_UID
        # else Kubernetes sets <SERVICE>_PORT=tcp://... for each Service, which our settings read as a port number
        assert pod["enableServiceLinks"] is False, name
        security = container(deployment)["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"]["drop"] == ["ALL"]
        writable = {mount["mountPath"] for mount in container(deployment)["volumeMounts"]}
        assert {"/tmp", "/home/app"} <= writable, name


def test_the_models_volume_is_mounted_where_voice_agent_cache_points(
    base: list[dict[str, Any]], config_map: dict[str, str]
) -> None:
    claims = by_kind(base, "PersistentVolumeClaim")
    cache = config_map["VOICE_AGENT_CACHE"]
    assert config_map["HF_HOME"].startswith(cache + "/"), "hub downloads go to the volume too"
    for name in MODEL_SERVICES:
        deployment = by_kind(base, "Deployment")[name]
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in container(deployment)["volumeMounts"]}
        claim = volumes[mounts[cache]]["persistentVolumeClaim"]["claimName"]
        assert claim in claims, name
        # the volume is writable for the app user
        assert deployment["spec"]["template"]["spec"]["securityContext"]["fsGroup"] == APP_UID


def test_settings_come_from_the_config_map_and_are_documented_in_env_example(
    base: list[dict[str, Any]], config_map: dict[str, str]
) -> None:
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (REPO_ROOT / ".env.example").read_text(), re.M))
    assert set(config_map) - documented <= {"HF_HOME"}, "a ConfigMap key that .env.example does not document"
    for name, port in PORTS.items():
        prefix = name.upper()
        assert config_map[f"{prefix}_HOST"] == "0.0.0.0"
        assert config_map[f"{prefix}_PORT"] == str(port)
        env_from = container(by_kind(base, "Deployment")[name])["envFrom"]
        assert env_from[0] == {"configMapRef": {"name": "voice-agent"}}
        # secrets (HF_TOKEN) only from an optional Secret: the pods start without one
        assert all(source["secretRef"]["optional"] is True for source in env_from[1:]), name
    for name in MODEL_SERVICES:
        assert config_map[f"FRONTEND_{name.upper()}_URL"] == f"http://{name}:{PORTS[name]}"
        assert config_map[f"REALTIME_{name.upper()}_URL"] == f"http://{name}:{PORTS[name]}"


def test_images_are_the_ones_compose_builds(
    base: list[dict[str, Any]], gpu: list[dict[str, Any]], base_config: dict[str, Any], gpu_config: dict[str, Any]
) -> None:
    for resources, config in ((base, base_config), (gpu, gpu_config)):
        for name, deployment in by_kind(resources, "Deployment").items():
            assert container(deployment)["image"] == config["services"][name]["image"], name


def test_gpu_overlay_puts_each_model_service_on_a_gpu_node_with_compose_gpu_settings(
    gpu: list[dict[str, Any]], base: list[dict[str, Any]], base_config: dict[str, Any], gpu_config: dict[str, Any]
) -> None:
    deployments = by_kind(gpu, "Deployment")
    for name in MODEL_SERVICES:
        pod = deployments[name]["spec"]["template"]["spec"]
        spec = container(deployments[name])
        assert spec["resources"]["limits"]["nvidia.com/gpu"] == 1, name
        assert pod["nodeSelector"], name
        assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"]), name
        # the same GPU settings as docker-compose.gpu.yml, set over the ConfigMap
        env = {item["name"]: item["value"] for item in spec["env"]}
        cpu_env = base_config["services"][name]["environment"]
        gpu_settings = {k: v for k, v in gpu_config["services"][name]["environment"].items() if cpu_env.get(k) != v}
        assert env == gpu_settings, name
        # everything else of the base survives the patch: probes, volumes, security
        base_spec = container(by_kind(base, "Deployment")[name])
        assert spec["livenessProbe"] == base_spec["livenessProbe"]
        assert spec["volumeMounts"] == base_spec["volumeMounts"]
        assert spec["securityContext"] == base_spec["securityContext"]
        # an update never needs a second GPU for the old and the new pod at once
        assert deployments[name]["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0
    for name in ("realtime", "frontend"):
        assert deployments[name] == by_kind(base, "Deployment")[name], name
