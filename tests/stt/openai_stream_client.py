"""Stream one transcription with the official ``openai`` client and print each event as it arrives, one JSON line.

Run by ``test_streaming.py`` with the frontend venv's Python (the STT venv does not install ``openai``):
``.venvs/frontend/bin/python tests/stt/openai_stream_client.py <base url> <audio file>``. Each line:
``{"at_s": <seconds since the request started>, "class": <the openai type it was parsed as>, "event": <its dump>}``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from openai import OpenAI


def main(base_url: str, audio_path: str) -> None:
    client = OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=300.0)
    started = time.perf_counter()
    with Path(audio_path).open("rb") as audio:
        stream = client.audio.transcriptions.create(model="whisper-1", file=audio, stream=True)
        for event in stream:
            line = {
                "at_s": time.perf_counter() - started,
                "class": type(event).__name__,
                "event": event.model_dump(mode="json"),
            }
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
