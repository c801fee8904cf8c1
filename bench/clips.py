"""The benchmark's questions: committed real speech clips (``tests/data``) and one ~15 s clip made from them."""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

from .machine import REPO_ROOT

DATA_DIR = REPO_ROOT / "tests" / "data"
TARGET_CLIP = "ask_not_what_your_country_can_do_for_you"
"""The 5-second question the latency targets are stated for."""
LONG_CLIP_GAP_S = 0.95


@dataclass(frozen=True)
class Clip:
    """A WAV question: ``name`` (its file stem), ``path``, ``duration_s`` and what it says."""

    name: str
    path: Path
    duration_s: float
    transcript: str

    @property
    def audio(self) -> bytes:
        return self.path.read_bytes()


def _duration_s(path: Path) -> float:
    with wave.open(str(path), "rb") as reader:
        return reader.getnframes() / reader.getframerate()


def committed(name: str) -> Clip:
    path = DATA_DIR / f"{name}.wav"
    transcript = (DATA_DIR / f"{name}.txt").read_text().strip()
    return Clip(name, path, round(_duration_s(path), 2), transcript)


def long_clip(out_dir: Path) -> Clip:
    """``jfk.wav`` (11.0 s) + 0.95 s of silence + ``ask_what_you_can_do_for_your_country.wav`` (3.05 s) = 15.0 s.

    Written at run time into ``out_dir`` (not committed); both parts are 16 kHz mono PCM16 real speech.
    """
    first, second = DATA_DIR / "jfk.wav", DATA_DIR / "ask_what_you_can_do_for_your_country.wav"
    with wave.open(str(first), "rb") as reader:
        params = reader.getparams()
        head = reader.readframes(reader.getnframes())
    with wave.open(str(second), "rb") as reader:
        if (reader.getframerate(), reader.getnchannels(), reader.getsampwidth()) != (
            params.framerate,
            params.nchannels,
            params.sampwidth,
        ):
            raise ValueError("the clips to join differ in format")
        tail = reader.readframes(reader.getnframes())
    gap = b"\x00" * (round(LONG_CLIP_GAP_S * params.framerate) * params.sampwidth * params.nchannels)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "jfk_then_ask_what_you_can_do_15s.wav"
    with wave.open(str(path), "wb") as writer:
        writer.setparams(params)
        writer.writeframes(head + gap + tail)
    transcript = " ".join(
        (DATA_DIR / f"{name}.txt").read_text().strip() for name in ("jfk", "ask_what_you_can_do_for_your_country")
    )
    return Clip(path.stem, path, round(_duration_s(path), 2), transcript)


def benchmark_clips(out_dir: Path) -> list[Clip]:
    """Shortest to longest: 2.4 s, 3.05 s, 5.0 s (the target question), 11.0 s, 15.0 s."""
    names = ("and_so_my_fellow_americans", "ask_what_you_can_do_for_your_country", TARGET_CLIP, "jfk")
    return [*(committed(name) for name in names), long_clip(out_dir)]
