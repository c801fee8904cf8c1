"""Where the GGUF model comes from, decided from settings alone (no model library imported here)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Literal

from service_common.health import Readiness
from service_common.hub import fetch_snapshot, hub_cache_dir

from .config import Settings
from .embedded import EMBEDDED_MODEL_ID, EMBEDDED_PACKAGE, embedded_model_path


@dataclass(frozen=True)
class ModelSource:
    """A resolved model: a file on disk (embedded or local) or a Hugging Face repo plus a file name/glob."""

    kind: Literal["embedded", "file", "hub"]
    model_id: str
    """Identifier reported by ``/v1/models`` and in every completion's ``model`` field."""
    owned_by: str
    path: Path | None = None
    repo_id: str | None = None
    filename: str | None = None


def resolve_model_source(settings: Settings) -> ModelSource:
    """Map ``LLM_MODEL`` (+ ``LLM_MODEL_FILE``) to a model source.

    ``smollm2-135m`` -> the embedded GGUF; an existing path or a name ending in ``.gguf`` -> that file;
    ``owner/repo`` -> a Hugging Face repo, which needs ``LLM_MODEL_FILE`` (a file name or glob such as
    ``*Q4_K_M.gguf``). Raises FileNotFoundError for a missing file and ValueError for a repo without a file.
    """
    model = settings.model.strip()
    if model == EMBEDDED_MODEL_ID:
        return ModelSource("embedded", EMBEDDED_MODEL_ID, EMBEDDED_PACKAGE, path=embedded_model_path())
    path = Path(model).expanduser()
    if path.is_file():
        return ModelSource("file", path.name, "local", path=path)
    if model.endswith(".gguf") or path.is_absolute() or model.startswith("."):
        raise FileNotFoundError(f"LLM_MODEL={model!r}: no such GGUF file")
    if model.count("/") == 1:
        if not settings.model_file:
            raise ValueError(
                f"LLM_MODEL={model!r} looks like a Hugging Face repo: set LLM_MODEL_FILE to the GGUF file name or "
                "a glob such as '*Q4_K_M.gguf'"
            )
        return ModelSource(
            "hub", f"{model}/{settings.model_file}", model.split("/")[0], repo_id=model, filename=settings.model_file
        )
    raise ValueError(
        f"LLM_MODEL={model!r} is neither {EMBEDDED_MODEL_ID!r}, a .gguf file nor a Hugging Face repo id (owner/name)"
    )


_SHARD = re.compile(r"^(?P<stem>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$")
"""A split GGUF: ``<stem>-00001-of-00003.gguf`` ...; llama.cpp opens the first shard and finds the others beside it."""


def fetch_hub_gguf(source: ModelSource, cache_dir: Path, readiness: Readiness | None = None) -> Path:
    """Download (once) the GGUF that ``source.filename`` (a name or glob) selects in ``source.repo_id``; its path.

    ``snapshot_download`` with the glob as its filter fetches every shard of a split model; llama.cpp opens the first
    shard (the path returned) and finds the others beside it. Not ``Llama.from_pretrained``: it lists the repo over
    the network on every start (no offline start) and has no progress hook. Files go to the hub cache under
    ``cache_dir``. Raises ValueError, before any download, for a glob matching several models or only some shards
    of one, and HubDownloadError when the model is neither cached nor downloadable.
    """
    assert source.repo_id is not None and source.filename is not None, "a hub source names a repo and a file"
    pattern = source.filename

    def matching(snapshot: Path) -> list[Path]:
        found = (path for path in snapshot.rglob("*") if path.is_file())
        return sorted(path for path in found if fnmatch(path.relative_to(snapshot).as_posix(), pattern))

    def complete(snapshot: Path) -> bool:  # every shard: an interrupted download may have left some out
        names = [path.name for path in matching(snapshot)]
        return len(names) == (_shards_of_one_model(names) or 1)

    def one_model(names: list[str]) -> None:
        shards = _shards_of_one_model(names)
        if len(names) > 1 and shards is None:
            raise ValueError(
                f"LLM_MODEL_FILE={pattern!r} matches {len(names)} files in {source.repo_id}: {', '.join(names)}; "
                "name one of them"
            )
        if shards is not None and shards != len(names):
            raise ValueError(
                f"LLM_MODEL_FILE={pattern!r} selects {len(names)} of the {shards} shards of a split GGUF in "
                f"{source.repo_id}: use a glob that matches all of them, e.g. '*-of-{shards:05d}.gguf'"
            )

    snapshot = fetch_snapshot(
        source.repo_id,
        cache_dir=hub_cache_dir(cache_dir),
        what="LLM_MODEL",
        allow_patterns=[pattern],
        complete=complete,
        check_files=one_model,
        readiness=readiness,
    )
    files = matching(snapshot)
    one_model([path.relative_to(snapshot).as_posix() for path in files])
    return files[0]


def _shards_of_one_model(names: list[str]) -> int | None:
    """The shard count when ``names`` are shards of one split GGUF (same stem and count), else None."""
    models = set()
    for name in names:
        match = _SHARD.match(Path(name).name)
        if match is None:
            return None
        models.add((str(Path(name).parent), match["stem"], int(match["count"])))
    return models.pop()[2] if len(models) == 1 else None
