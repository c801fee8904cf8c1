"""Where the GGUF model comes from, decided from settings alone (no model library imported here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

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
