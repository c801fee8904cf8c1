"""The engine seam: what the routes need from a speech synthesiser, whatever library is behind it.

Backends, one module each (heavy imports stay there): ``piper_engine.PiperSynthesizer`` (CPU, ONNX Runtime) and
``parler_engine.ParlerSynthesizer`` (Parler-TTS on torch, GPU if there is one; the voice is a description, which
``instructions`` replace). ``main.load_engine`` picks one by ``TTS_ENGINE``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class VoiceInfo:
    """One voice a synthesiser can speak with."""

    id: str
    """Identifier clients send as ``voice`` (for Piper: the model file stem, e.g. ``en_US-joe-medium``)."""
    name: str
    """Human-readable name."""
    language: str
    """Language code of the voice, e.g. ``en_US``."""
    sample_rate_hz: int
    """Rate (Hz) of the samples ``synthesize`` yields for this voice."""
    engine: str
    """Engine that speaks it, e.g. ``piper``."""


@runtime_checkable
class Synthesizer(Protocol):
    """A loaded text-to-speech model. Not thread-safe: call it from one thread (the service's ModelWorker)."""

    model_id: str
    """Model identifier shown by ``GET /v1/models`` (for Piper: the default voice id)."""
    owned_by: str
    """Where the model comes from: a PyPI package, a hub organisation or ``local``."""
    default_voice: str
    """Id of the voice used when a client names none or an OpenAI voice (alloy, nova, ...)."""

    @property
    def sample_rate_hz(self) -> int:
        """Output rate (Hz) of the default voice."""
        ...

    def voices(self) -> list[VoiceInfo]:
        """The voices this synthesiser can use, default first."""
        ...

    def synthesize(
        self, text: str, *, voice: str, speed: float = 1.0, instructions: str | None = None
    ) -> Iterator[np.ndarray]:
        """Speak ``text`` lazily, one chunk per sentence, in order.

        Yields 1-D float32 mono arrays in [-1, 1] at the voice's ``sample_rate_hz``; the first chunk exists
        before later sentences are synthesised. ``voice`` is an id from ``voices()`` (ValueError otherwise);
        ``speed`` 0.25..4.0 (2.0 = twice as fast); ``instructions`` describe the delivery (engines that cannot
        use them ignore them). Empty or unpronounceable text yields nothing.
        """
        ...

    def warm_up(self) -> None:
        """Run one short synthesis per voice so the first request does not pay for lazy initialisation."""
        ...


@runtime_checkable
class VoiceAliasing(Protocol):
    """Optional: a synthesiser that gives OpenAI's voice names voices of its own (Parler: a speaker each).

    Synthesisers without it (Piper) speak every OpenAI name with their default voice.
    """

    def voice_aliases(self) -> dict[str, str]:
        """OpenAI voice name (lower case) -> id of one of ``voices()``."""
        ...
