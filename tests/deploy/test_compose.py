"""The compose files validate with the static compose binary (no Docker engine needed) and wire the stack.

docker-compose.yml alone (CPU), with docker-compose.gpu.yml (``make up GPU=1``), and with the overlays in
deploy/compose/ (replicas, an external LLM server); plus the Makefile's Docker targets.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

SERVICES = {"stt": 8001, "llm": 8002, "tts": 8003}
REALTIME_PORT = 8004
GPU_SETTINGS = {
    "stt": {"STT_DEVICE": "cuda", "STT_COMPUTE_TYPE": "float16"},
    "llm": {"LLM_N_GPU_LAYERS": "-1"},
    "tts": {"TTS_ENGINE": "parler", "TTS_PARLER_DEVICE": "cuda"},
}
GPU_DOCKERFILES = {
    "stt": "services/stt/Dockerfile.cuda",
    "llm": "services/llm/Dockerfile.cuda",
    "tts": "services/tts/Dockerfile.parler",
}


def seconds(duration: str) -> float:
    """Compose's normalised durations ("5m0s", "15m0s", "10s") in seconds."""
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([hms])", duration))


def test_compose_file_is_valid(compose: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    result = compose("docker-compose.yml", args=("--quiet",))
    assert result.returncode == 0, result.stderr


def test_compose_file_with_the_gpu_overlay_is_valid(compose: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    result = compose("docker-compose.yml", "docker-compose.gpu.yml", args=("--quiet",))
    assert result.returncode == 0, result.stderr


def test_a_broken_compose_file_is_rejected(compose_binary: Path, tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  stt:\n    depends_on:\n      nowhere:\n        condition: service_healthy\n")
    result = subprocess.run([compose_binary, "-f", broken, "config", "--quiet"], capture_output=True, text=True)
    assert result.returncode != 0


def test_every_service_has_a_ready_healthcheck_and_the_page_waits_for_them(base_config: dict[str, Any]) -> None:
    services = base_config["services"]
    assert set(services) == {*SERVICES, "realtime", "frontend"}
    for name, port in SERVICES.items():
        check = " ".join(services[name]["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/ready" in check
        assert services[name]["environment"][f"{name.upper()}_PORT"] == str(port)
        assert any(volume["target"] == "/models" for volume in services[name]["volumes"])
        assert services[name]["environment"]["VOICE_AGENT_CACHE"] == "/models"
    depends = services["frontend"]["depends_on"]
    assert {name: spec["condition"] for name, spec in depends.items()} == dict.fromkeys(SERVICES, "service_healthy")
    assert services["frontend"]["environment"]["FRONTEND_LLM_URL"] == "http://llm:8002"
    assert "models" in base_config["volumes"]


def test_the_realtime_service_drives_the_three_services_once_they_are_healthy(base_config: dict[str, Any]) -> None:
    realtime = base_config["services"]["realtime"]
    assert realtime["build"]["dockerfile"] == "services/realtime/Dockerfile"
    assert f"http://127.0.0.1:{REALTIME_PORT}/ready" in " ".join(realtime["healthcheck"]["test"])
    environment = realtime["environment"]
    assert environment["REALTIME_PORT"] == str(REALTIME_PORT)
    for name, port in SERVICES.items():
        assert environment[f"REALTIME_{name.upper()}_URL"] == f"http://{name}:{port}"
    depends = realtime["depends_on"]
    assert {name: spec["condition"] for name, spec in depends.items()} == dict.fromkeys(SERVICES, "service_healthy")
    # its VAD and turn models are inside the image: nothing to download, no models volume
    assert not realtime.get("volumes")
    assert (realtime["ports"][0]["target"], realtime["ports"][0]["published"]) == (REALTIME_PORT, str(REALTIME_PORT))


@pytest.mark.parametrize(("overlay", "least_s"), [((), 300), (("docker-compose.gpu.yml",), 900)])
def test_first_start_may_download_a_model_before_a_healthcheck_counts(
    compose_config: Callable[..., dict[str, Any]], overlay: tuple[str, ...], least_s: int
) -> None:
    """The start period covers a first download (GPU-sized models are bigger) before failed checks count."""
    services = compose_config("docker-compose.yml", *overlay)["services"]
    for name in SERVICES:
        assert seconds(services[name]["healthcheck"]["start_period"]) >= least_s, name


def test_host_ports_follow_the_env_file_variables(compose_config: Callable[..., dict[str, Any]]) -> None:
    env = {"STT_PORT": "9101", "REALTIME_PORT": "9104", "FRONTEND_PORT": "9501"}
    services = compose_config("docker-compose.yml", env=env)["services"]
    assert services["stt"]["ports"][0]["published"] == "9101"
    assert services["realtime"]["ports"][0]["published"] == "9104"
    assert services["frontend"]["ports"][0]["published"] == "9501"
    assert all(port["host_ip"] == "127.0.0.1" for svc in services.values() for port in svc["ports"])


def test_every_container_gets_every_setting_of_the_env_file(
    compose: Callable[..., subprocess.CompletedProcess[str]],
    compose_project_with_env: Callable[[str], Path],
    repo_root: Path,
) -> None:
    """.env reaches each container whole; compose fixes only what a container needs (0.0.0.0, ports, URLs)."""
    env_file = (repo_root / ".env.example").read_text() + (
        "STT_BEAM_SIZE=3\nLLM_N_CTX=4096\nFRONTEND_VOICE=nova\nREALTIME_STT_URL=http://127.0.0.1:9\n"
    )
    project = compose_project_with_env(env_file)
    for files in (("docker-compose.yml",), ("docker-compose.yml", "docker-compose.gpu.yml")):
        result = compose(*files, cwd=project)
        assert result.returncode == 0, result.stderr
        services = json.loads(result.stdout)["services"]
        for name, service in services.items():
            environment = service["environment"]
            assert environment["STT_BEAM_SIZE"] == "3", name
            assert environment["LLM_N_CTX"] == "4096", name
            assert environment["FRONTEND_VOICE"] == "nova", name
            # .env.example says 127.0.0.1 for `make run`; a container must listen on all its interfaces
            assert environment[f"{name.upper()}_HOST"] == "0.0.0.0", name
        assert services["frontend"]["environment"]["FRONTEND_TTS_URL"] == "http://tts:8003"
        assert services["realtime"]["environment"]["REALTIME_STT_URL"] == "http://stt:8001"


def test_gpu_overlay_reserves_an_nvidia_gpu_for_each_model_service(gpu_config: dict[str, Any]) -> None:
    services = gpu_config["services"]
    for name in SERVICES:
        devices = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert len(devices) == 1, name
        assert devices[0]["driver"] == "nvidia", name
        assert devices[0]["capabilities"] == ["gpu"], name
        assert devices[0].get("count") in (1, -1, "all") or devices[0].get("device_ids"), name
    for name in ("realtime", "frontend"):
        assert "deploy" not in services[name] or not services[name]["deploy"].get("resources"), name


def test_gpu_overlay_builds_the_cuda_images_with_gpu_settings(
    base_config: dict[str, Any], gpu_config: dict[str, Any], repo_root: Path
) -> None:
    for name, dockerfile in GPU_DOCKERFILES.items():
        service = gpu_config["services"][name]
        assert service["build"]["dockerfile"] == dockerfile
        assert (repo_root / dockerfile).is_file(), f"{dockerfile} (referenced by docker-compose.gpu.yml) is missing"
        for key, value in GPU_SETTINGS[name].items():
            assert service["environment"][key] == value, (name, key)
        # a GPU build gets its own tag, so `make up` and `make up GPU=1` never overwrite each other's image
        assert service["image"] != base_config["services"][name]["image"]
        # the healthcheck itself is the base file's, only its start period changes
        assert service["healthcheck"]["test"] == base_config["services"][name]["healthcheck"]["test"]
    for name in ("realtime", "frontend"):
        assert gpu_config["services"][name] == base_config["services"][name], name


def test_gpu_settings_win_over_the_env_file(
    compose: Callable[..., subprocess.CompletedProcess[str]], compose_project_with_env: Callable[[str], Path]
) -> None:
    project = compose_project_with_env("STT_DEVICE=cpu\nTTS_ENGINE=piper\nLLM_N_GPU_LAYERS=0\n")
    result = compose("docker-compose.yml", "docker-compose.gpu.yml", cwd=project)
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    for name, settings in GPU_SETTINGS.items():
        for key, value in settings.items():
            assert services[name]["environment"][key] == value


def test_every_image_is_built_from_the_repository_root(
    base_config: dict[str, Any], gpu_config: dict[str, Any], repo_root: Path, compose_project: Path
) -> None:
    for config in (base_config, gpu_config):
        for name, service in config["services"].items():
            # the context is the project's folder (here a copy of the compose files): the repository root
            assert Path(service["build"]["context"]) == compose_project, name
            assert (repo_root / service["build"]["dockerfile"]).is_file(), name


def test_replicas_overlay_runs_several_stt_and_tts_behind_their_names(
    compose_config: Callable[..., dict[str, Any]],
) -> None:
    services = compose_config("docker-compose.yml", "deploy/compose/replicas.yml", env={"STT_REPLICAS": "3"})[
        "services"
    ]
    assert services["stt"]["deploy"]["replicas"] == 3
    assert services["tts"]["deploy"]["replicas"] == 2
    # replicas cannot share a host port; the page reaches them by service name on the compose network
    assert not services["stt"].get("ports") and not services["tts"].get("ports")
    assert services["frontend"]["environment"]["FRONTEND_STT_URL"] == "http://stt:8001"
    assert services["realtime"]["environment"]["REALTIME_STT_URL"] == "http://stt:8001"
    gpu = compose_config("docker-compose.yml", "docker-compose.gpu.yml", "deploy/compose/replicas.yml")["services"]
    assert gpu["tts"]["deploy"]["replicas"] == 2
    assert gpu["tts"]["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"


def test_external_llm_overlay_points_the_page_at_another_server(
    compose: Callable[..., subprocess.CompletedProcess[str]], compose_config: Callable[..., dict[str, Any]]
) -> None:
    files = ("docker-compose.yml", "deploy/compose/external-llm.yml")
    env = {"FRONTEND_LLM_URL": "http://vllm.internal:8000", "FRONTEND_LLM_MODEL": "Qwen/Qwen2.5-1.5B-Instruct"}
    services = compose_config(*files, env=env)["services"]
    assert "llm" not in services, "the local llm container should not start"
    frontend = services["frontend"]
    assert frontend["environment"]["FRONTEND_LLM_URL"] == "http://vllm.internal:8000"
    assert set(frontend["depends_on"]) == {"stt", "tts"}
    # the Realtime service talks to the same server with the same model id
    realtime = services["realtime"]
    assert realtime["environment"]["REALTIME_LLM_URL"] == "http://vllm.internal:8000"
    assert realtime["environment"]["REALTIME_LLM_MODEL"] == "Qwen/Qwen2.5-1.5B-Instruct"
    assert set(realtime["depends_on"]) == {"stt", "tts"}
    # without a URL the overlay refuses, rather than starting a page with no LLM
    missing = compose(*files, args=("--quiet",))
    assert missing.returncode != 0
    assert "FRONTEND_LLM_URL" in missing.stderr


@pytest.mark.parametrize("target", ["up", "down", "logs", "ps", "build"])
def test_make_docker_targets_add_the_gpu_overlay_with_gpu_1(repo_root: Path, target: str) -> None:
    def commands(*variables: str) -> str:
        result = subprocess.run(
            ["make", "-n", target, *variables], capture_output=True, text=True, cwd=repo_root, check=False
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    plain, gpu = commands("GPU="), commands("GPU=1")
    assert "-f docker-compose.yml" in plain and "docker-compose.gpu.yml" not in plain
    assert "-f docker-compose.yml -f docker-compose.gpu.yml" in gpu
    if target == "up":
        assert "up -d --build" in gpu
