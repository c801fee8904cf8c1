"""The engine seam: what the routes need from a speech synthesiser, whatever library is behind it.

Backends, one module each (heavy imports stay there): ``piper_engine.PiperSynthesizer`` (CPU, ONNX Runtime) and
``parler_engine.ParlerSynthesizer`` (Parler-TTS on torch, GPU if there is one; the voice is a description, which
``instructions`` replace). A backend is one module and one entry in ``ENGINE_LOADERS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from service_common.health import Readiness

    from .config import Settings


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


def _load_piper(settings: Settings, readiness: Readiness | None = None) -> Synthesizer:
    from .piper_engine import PiperSynthesizer

    return PiperSynthesizer.from_settings(settings)  # embedded or local voices: nothing to download


def _load_parler(settings: Settings, readiness: Readiness | None = None) -> Synthesizer:
    from .parler_engine import ParlerSynthesizer

    return ParlerSynthesizer.from_settings(settings, readiness)


ENGINE_LOADERS: dict[str, Callable[[Settings, Readiness | None], Synthesizer]] = {
    "piper": _load_piper,
    "parler": _load_parler,
}
"""``TTS_ENGINE`` value -> loader. Loaders import their library lazily, so only the chosen one is needed."""


def load_synthesizer(settings: Settings, readiness: Readiness | None = None) -> Synthesizer:
    """Load the engine ``settings.engine`` names, with its voices (blocking: seconds; run it on the worker).

    A hub model (Parler) is downloaded once first, reporting its progress to ``readiness``. Raises
    FileNotFoundError / ValueError with a clear message when a configured voice is missing or invalid.
    """
    try:
        loader = ENGINE_LOADERS[settings.engine]
    except KeyError as err:
        raise ValueError(f"unknown TTS engine {settings.engine!r}; known: {sorted(ENGINE_LOADERS)}") from err
    return loader(settings, readiness)
