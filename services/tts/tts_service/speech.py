"""What ``POST /v1/audio/speech`` does between validation and bytes: voice resolution and the encoded stream.

``encoded_speech`` is a blocking generator meant to run on the ModelWorker thread: synthesis and encoding both
happen there, so the event loop only moves bytes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator

from service_common.errors import EmptyInput, InputTooLarge, InvalidRequest

from .encoding import AudioEncoder
from .engine import Synthesizer, VoiceAliasing, VoiceInfo
from .metrics import TtsMetrics
from .schemas import OPENAI_VOICES

logger = logging.getLogger(__name__)


def check_input(text: str, max_chars: int) -> str:
    """Return ``text`` if it is speakable; EmptyInput (400) if blank, InputTooLarge (413) over ``max_chars``."""
    if not text.strip():
        raise EmptyInput("input is empty: give the text to speak", param="input")
    if len(text) > max_chars:
        raise InputTooLarge(f"input has {len(text)} characters; the limit is {max_chars}", param="input")
    return text


def voice_aliases(engine: Synthesizer) -> dict[str, str]:
    """OpenAI voice name -> the engine's voice id: its own mapping where it has one, else all to the default."""
    if isinstance(engine, VoiceAliasing):
        return engine.voice_aliases()
    return dict.fromkeys(OPENAI_VOICES, engine.default_voice)


def resolve_voice(requested: str, engine: Synthesizer) -> VoiceInfo:
    """The engine's voice named ``requested`` (exact id, else case-insensitive), or the voice an OpenAI name maps
    to (``voice_aliases``); else InvalidRequest (400)."""
    voices = {voice.id: voice for voice in engine.voices()}
    if requested in voices:
        return voices[requested]
    folded = {voice_id.lower(): voice for voice_id, voice in voices.items()}
    if requested.lower() in folded:
        return folded[requested.lower()]
    aliases = voice_aliases(engine)
    if requested.lower() in aliases:
        return voices[aliases[requested.lower()]]
    known = ", ".join([*voices, *OPENAI_VOICES])
    raise InvalidRequest(f"unknown voice {requested!r}; available: {known}", code="unknown_voice", param="voice")


def encoded_speech(
    engine: Synthesizer,
    text: str,
    *,
    voice: VoiceInfo,
    speed: float,
    instructions: str | None,
    encoder: AudioEncoder,
    response_format: str,
    started_at: float,
    client_gone: threading.Event | None = None,
    metrics: TtsMetrics | None = None,
) -> Iterator[bytes]:
    """Synthesise ``text`` and yield encoded bytes, the first item as soon as the first sentence is spoken.

    The first item carries the header too, so a failure in the first sentence surfaces before any byte
    is sent. ``started_at`` (``time.perf_counter()`` at request arrival) makes the logged time to first
    audio include queueing behind other requests. Logs one line per request: audio duration, time to first
    audio, synthesis time and real-time factor (synthesis time / audio duration). ``client_gone`` set
    (``service_common.disconnect.client_gone``): nothing more is synthesised, the client left while it waited.
    ``metrics``: the characters when synthesis starts, the audio seconds per chunk, the time to first audio.
    """
    pending = encoder.start()
    samples_out = chunk_count = 0
    synthesis_s = 0.0
    ttfa_ms: float | None = None
    chunks = engine.synthesize(text, voice=voice.id, speed=speed, instructions=instructions)
    if metrics is not None:
        metrics.characters.inc(len(text))
    try:
        while True:
            if client_gone is not None and client_gone.is_set():
                logger.info("speech: client went away while waiting; synthesis stopped after %d chunks", chunk_count)
                return
            tick = time.perf_counter()
            samples = next(chunks, None)
            synthesis_s += time.perf_counter() - tick
            if samples is None:
                break
            chunk_count += 1
            samples_out += samples.size
            if metrics is not None:
                metrics.audio_seconds.inc(samples.size / voice.sample_rate_hz)
            pending += encoder.encode(samples)
            if pending:
                if ttfa_ms is None:
                    ttfa_ms = _first_audio(started_at, metrics)
                yield pending
                pending = b""
        pending += encoder.finish()
        if ttfa_ms is None:
            ttfa_ms = _first_audio(started_at, metrics)
        if pending:
            yield pending
    except GeneratorExit:
        logger.info(
            "speech: client went away after %d chunks (%.2f s of audio)",
            chunk_count,
            samples_out / voice.sample_rate_hz,
        )
        raise
    finally:
        encoder.close()
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    duration_s = samples_out / voice.sample_rate_hz
    logger.info(
        "speech: voice=%s format=%s chars=%d chunks=%d audio=%.2f s ttfa=%.0f ms synthesis=%.3f s "
        "real-time factor=%.3f total=%.3f s",
        voice.id,
        response_format,
        len(text),
        chunk_count,
        duration_s,
        ttfa_ms,
        synthesis_s,
        synthesis_s / duration_s if duration_s else float("nan"),
        time.perf_counter() - started_at,
    )


def _first_audio(started_at: float, metrics: TtsMetrics | None) -> float:
    """Milliseconds from ``started_at`` to now, the time to first audio, observed in ``metrics`` (in seconds)."""
    ttfa_s = time.perf_counter() - started_at
    if metrics is not None:
        metrics.time_to_first_audio.observe(ttfa_s)
    return ttfa_s * 1000


async def prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Yield ``first`` then ``rest``; a failure mid-stream is logged and cuts the connection (status was sent)."""
    try:
        yield first
        async for chunk in rest:
            yield chunk
    except Exception:
        logger.exception("speech stream failed after the response started; the client gets truncated audio")
        raise
    finally:
        aclose = getattr(rest, "aclose", None)
        if aclose is not None:
            await aclose()
