"""Piper backend: espeak-ng phonemes -> VITS voice in ONNX Runtime, on CPU.

Voices: the embedded en_US-joe-medium (``embedded.py``), any ``.onnx`` voice given by path in ``TTS_VOICE``,
and every voice found in ``TTS_VOICES_DIR``. Each voice is an ONNX session of its own (~60 MB for medium).

Threading: espeak-ng keeps global C state; Piper serialises it with a module-level lock, and this service
calls every method from its single ModelWorker thread anyway. Multi-speaker voices speak with their
default speaker.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from piper import PiperVoice, SynthesisConfig

from .embedded import EMBEDDED_VOICE_ID, EMBEDDED_VOICE_PACKAGE, embedded_voice_paths
from .engine import VoiceInfo
from .sentences import split_for_speech

if TYPE_CHECKING:
    from .config import Settings

logger = logging.getLogger(__name__)

ENGINE_NAME = "piper"
WARM_UP_TEXT = "Hello, this is a warm-up."
DEFAULT_MAX_SENTENCE_CHARS = 300


@dataclass(frozen=True)
class VoiceFiles:
    """A Piper voice on disk: the ONNX model and its JSON config."""

    id: str
    model_path: Path
    config_path: Path


def voice_files(model_path: Path) -> VoiceFiles:
    """The voice whose model is ``model_path`` (``<id>.onnx``); FileNotFoundError if it or its config is missing."""
    config_path = model_path.with_name(model_path.name + ".json")
    if not model_path.is_file():
        raise FileNotFoundError(f"Piper voice model {model_path} does not exist")
    if not config_path.is_file():
        raise FileNotFoundError(f"Piper voice {model_path} has no config {config_path.name} beside it")
    return VoiceFiles(model_path.stem, model_path, config_path)


def discover_voices(voices_dir: Path) -> list[VoiceFiles]:
    """Every ``*.onnx`` voice under ``voices_dir`` (recursively), sorted by id."""
    if not voices_dir.is_dir():
        raise FileNotFoundError(f"TTS_VOICES_DIR={voices_dir} is not a directory")
    return sorted((voice_files(path) for path in voices_dir.rglob("*.onnx")), key=lambda voice: voice.id)


def resolve_voice_files(voice: str, voices_dir: Path | None) -> list[VoiceFiles]:
    """The voices to load, the default (``TTS_VOICE``) first, then the others found in ``voices_dir``.

    ``voice`` is the embedded voice id, a path to an ``.onnx`` file, or the id of a voice in ``voices_dir``.
    Raises FileNotFoundError with the reason when it is none of these.
    """
    found = discover_voices(voices_dir) if voices_dir is not None else []
    by_id = {files.id: files for files in found}
    if voice == EMBEDDED_VOICE_ID and voice not in by_id:
        default = VoiceFiles(EMBEDDED_VOICE_ID, *embedded_voice_paths())
    elif voice in by_id:
        default = by_id[voice]
    elif voice.endswith(".onnx") or "/" in voice:
        default = voice_files(Path(voice).expanduser())
    else:
        where = f" nor a voice id in TTS_VOICES_DIR={voices_dir}" if voices_dir else " (TTS_VOICES_DIR is not set)"
        raise FileNotFoundError(
            f"TTS_VOICE={voice!r} is not the embedded voice {EMBEDDED_VOICE_ID!r}, not a .onnx path{where}"
        )
    others = [files for files in found if files.id != default.id]
    return [default, *others]


class PiperSynthesizer:
    """Piper voices behind the ``Synthesizer`` protocol; construct with ``load`` or ``from_settings``."""

    def __init__(
        self,
        voices: dict[str, PiperVoice],
        infos: dict[str, VoiceInfo],
        *,
        default_voice: str,
        owned_by: str,
        max_sentence_chars: int = DEFAULT_MAX_SENTENCE_CHARS,
    ) -> None:
        self._voices = voices
        self._infos = infos
        self.default_voice = default_voice
        self.model_id = default_voice
        self.owned_by = owned_by
        self.max_sentence_chars = max_sentence_chars

    @classmethod
    def from_settings(cls, settings: Settings) -> PiperSynthesizer:
        """Load ``TTS_VOICE`` (default) and the voices in ``TTS_VOICES_DIR``."""
        return cls.load(
            resolve_voice_files(settings.voice, settings.voices_dir), max_sentence_chars=settings.max_sentence_chars
        )

    @classmethod
    def load(
        cls, voice_files: list[VoiceFiles], *, max_sentence_chars: int = DEFAULT_MAX_SENTENCE_CHARS
    ) -> PiperSynthesizer:
        """Load each voice's ONNX session (the first is the default). Blocking: ~1.5 s per medium voice."""
        voices: dict[str, PiperVoice] = {}
        infos: dict[str, VoiceInfo] = {}
        for files in voice_files:
            started = time.perf_counter()
            voice = PiperVoice.load(files.model_path, files.config_path)
            voices[files.id] = voice
            infos[files.id] = _voice_info(files, voice)
            logger.info(
                "loaded Piper voice %s (%d Hz) from %s in %.2f s",
                files.id,
                voice.config.sample_rate,
                files.model_path,
                time.perf_counter() - started,
            )
        default = voice_files[0]
        owned_by = EMBEDDED_VOICE_PACKAGE if default.id == EMBEDDED_VOICE_ID else "local"
        return cls(voices, infos, default_voice=default.id, owned_by=owned_by, max_sentence_chars=max_sentence_chars)

    @property
    def sample_rate_hz(self) -> int:
        return self._infos[self.default_voice].sample_rate_hz

    def voices(self) -> list[VoiceInfo]:
        return list(self._infos.values())

    def synthesize(
        self, text: str, *, voice: str, speed: float = 1.0, instructions: str | None = None
    ) -> Iterator[np.ndarray]:
        """Speak ``text`` sentence by sentence (see ``Synthesizer.synthesize``); ``instructions`` are ignored.

        ``speed`` divides the voice's own length scale (Piper's phoneme-duration multiplier).
        """
        try:
            piper_voice = self._voices[voice]
        except KeyError as err:
            raise ValueError(f"unknown voice {voice!r}; known: {sorted(self._voices)}") from err
        config = SynthesisConfig(length_scale=piper_voice.config.length_scale / speed)
        for sentence in split_for_speech(text, self.max_sentence_chars):
            # espeak-ng may still cut one of our sentences in several; each comes out as soon as it exists
            for chunk in piper_voice.synthesize(sentence, syn_config=config):
                yield chunk.audio_float_array

    def warm_up(self) -> None:
        for voice_id in self._voices:
            started = time.perf_counter()
            samples = np.concatenate([np.zeros(0, np.float32), *self.synthesize(WARM_UP_TEXT, voice=voice_id)])
            elapsed = time.perf_counter() - started
            duration_s = samples.size / self._infos[voice_id].sample_rate_hz
            logger.info(
                "warm-up of %s: %.2f s of audio in %.3f s (real-time factor %.3f)",
                voice_id,
                duration_s,
                elapsed,
                elapsed / duration_s if duration_s else float("nan"),
            )


def _voice_info(files: VoiceFiles, voice: PiperVoice) -> VoiceInfo:
    raw: dict[str, Any] = json.loads(files.config_path.read_text(encoding="utf-8"))
    language_block = raw.get("language") or {}
    language = language_block.get("code") or voice.config.espeak_voice
    quality = (raw.get("audio") or {}).get("quality")
    speaker = raw.get("dataset") or files.id
    details = ", ".join(str(part) for part in (language_block.get("name_english"), quality) if part)
    return VoiceInfo(
        id=files.id,
        name=f"{speaker} ({details})" if details else str(speaker),
        language=str(language),
        sample_rate_hz=voice.config.sample_rate,
        engine=ENGINE_NAME,
    )
