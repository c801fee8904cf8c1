"""WAV files from the PCM16 mono bytes the TTS service streams (the standard library's ``wave`` writes them)."""

from __future__ import annotations

import io
import wave


def pcm_to_wav(pcm: bytes, sample_rate_hz: int) -> bytes:
    """Signed 16-bit little-endian mono PCM at ``sample_rate_hz`` -> a complete WAV file (44-byte header)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate_hz)
        wav.writeframes(pcm)
    return buffer.getvalue()
