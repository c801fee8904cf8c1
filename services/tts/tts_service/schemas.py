"""Wire schemas of the TTS routes (OpenAI's ``/v1/audio/speech`` request, plus a voice list)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .encoding import ResponseFormat

OPENAI_VOICES = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "onyx",
    "nova",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
)
"""OpenAI's voice names; each is accepted: Piper speaks them with its default voice, Parler maps each to a speaker."""


class SpeechRequest(BaseModel):
    """Body of ``POST /v1/audio/speech`` (OpenAI-compatible)."""

    # values must have their JSON type, as OpenAI's API requires: "speed": "2" is a 400, not read as 2.0
    model_config = ConfigDict(strict=True)

    input: str = Field(
        description="Text to speak: 1 to TTS_MAX_INPUT_CHARS characters (default 4096). Longer -> 413; "
        "empty or only whitespace -> 400. Spoken sentence by sentence; Markdown markers are not read aloud.",
        examples=["Hello! This is the voice agent speaking. How can I help you today?"],
    )
    model: str = Field(
        default="tts-1",
        description="Any value (tts-1, gpt-4o-mini-tts, ...) is accepted: the service serves the one engine it "
        "loaded (see GET /v1/models).",
    )
    voice: str = Field(
        default="alloy",
        description="A voice id from GET /v1/audio/voices (Piper: e.g. en_US-joe-medium; Parler: jon, lea, gary, "
        f"jenna, mike, laura), or one of OpenAI's names ({', '.join(OPENAI_VOICES)}): Piper speaks them with its "
        "default voice, Parler with the speaker listed under 'aliases' in GET /v1/audio/voices. Unknown -> 400. "
        "With Parler, 'instructions' (when given) replace this voice's description.",
    )
    instructions: str | None = Field(
        default=None,
        max_length=4096,
        description="How to speak (tone, pace, speaker description), up to 4096 characters. Piper ignores it. "
        "Parler-TTS uses it as the whole description prompt and it wins over 'voice' (e.g. 'A female speaker "
        "delivers a slightly expressive speech at a moderate speed, in a very clear, close recording.'; naming "
        "one of Parler's speakers, 'Jon's voice is ...', keeps the voice consistent).",
    )
    response_format: ResponseFormat = Field(
        default="wav",
        description="Audio format. Default wav (OpenAI's default is mp3; wav needs no decoder and streams with "
        "no delay). wav: PCM16 mono with a streaming header; pcm: raw PCM16 little-endian mono, no header; "
        "mp3 (64 kbit/s) and opus (Ogg, 48 kHz): streamed too; flac: sent in one piece once all text is "
        "synthesised. The rate is in the X-Sample-Rate response header (22050 Hz for en_US-joe-medium, "
        "44100 Hz for Parler-TTS; 48000 Hz for opus).",
    )
    speed: float = Field(
        default=1.0,
        ge=0.25,
        le=4.0,
        description="Speaking rate, 0.25 to 4.0 (1.0 = the voice's natural pace, 2.0 = twice as fast). Parler has "
        "no rate control: it adds 'talks (very) fast/slowly' to the description instead, a hint, not a factor.",
    )
    stream_format: Literal["audio"] = Field(
        default="audio",
        description="Only 'audio' (raw audio bytes, chunked as they are synthesised); OpenAI's 'sse' is not offered.",
    )


class VoiceCard(BaseModel):
    """One voice the service can speak with."""

    id: str = Field(description="Value to send as 'voice'.")
    name: str = Field(description="Human-readable name (speaker, language, quality).")
    language: str = Field(description="Language code of the voice, e.g. en_US.")
    sample_rate_hz: int = Field(description="Sample rate (Hz) of wav/pcm/mp3 output with this voice.")
    engine: str = Field(description="Engine that speaks it, e.g. piper.")


class VoiceList(BaseModel):
    """The voices of ``GET /v1/audio/voices``."""

    object: Literal["list"] = "list"
    data: list[VoiceCard] = Field(description="Loaded voices, the default first.")
    default_voice: str = Field(description="Voice used when none is named (OpenAI's default name 'alloy').")
    aliases: dict[str, str] = Field(description="OpenAI voice name -> the voice id it speaks with.")
