"""The fast tier: the STT app with an injected fake engine never imports the model library."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    import tempfile

    from fastapi.testclient import TestClient

    from stt_service.config import Settings
    from stt_service.engine import Transcription
    from stt_service.main import create_app


    class Silent:
        model_id, owned_by, supported_languages = "silent", "tests", frozenset({"en"})

        def transcribe(self, samples, **_):
            return Transcription(text="", language="en", duration_s=samples.size / 16_000, segments=[])

        def warm_up(self):
            pass


    settings = Settings(cache_dir=tempfile.mkdtemp(), api_key=None, rate_limit=None)
    with TestClient(create_app(settings, engine=Silent())) as client:
        assert client.get("/ready").status_code == 200
    print(sorted(name for name in sys.modules if name.split(".")[0] in {"faster_whisper", "ctranslate2"}))
    """
)


def test_an_injected_engine_imports_neither_faster_whisper_nor_ctranslate2() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
