"""The page's WebRTC glue: microphone frames to the engine's 16 kHz PCM, reply PCM to the 48 kHz track, ICE settings.

The microphone frames are built as aiortc hands them over (48 kHz stereo s16, 960 samples, interleaved) from a
real recording, upsampled by soxr (independent of the PyAV resampler under test; soxr comes with pipecat-ai).
The reply track is streamlit-webrtc's own ``PcmAudioSource``, read through its track as aiortc would.
"""

from __future__ import annotations

import asyncio
import fractions
import json
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import soundfile as sf
import soxr
from pydantic import ValidationError
from pydantic_settings import SettingsError
from streamlit_webrtc import PcmAudioSource
from streamlit_webrtc.component import enhance_frontend_rtc_configuration
from streamlit_webrtc.config import compile_rtc_configuration

from voice_agent.config import FrontendSettings
from voice_agent.engine.events import AudioOutput
from voice_agent.webrtc import MICROPHONE_RATE_HZ, SPEAKER_RATE_HZ, Microphone, Speaker, rtc_configuration

CLIP = "ask_not_what_your_country_can_do_for_you.wav"  # 5.0 s, 16 kHz mono
BROWSER_RATE_HZ = 48_000
FRAME_SAMPLES = 960  # 20 ms at 48 kHz, what aiortc's Opus decoder hands over
VOICE_RATE_HZ = 22_050  # the Piper voice's rate


def as_float(pcm16: np.ndarray) -> np.ndarray:
    return pcm16.astype(np.float32) / 32768


def as_pcm16(audio: np.ndarray) -> np.ndarray:
    return np.round(np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def clip(data_dir: Path) -> np.ndarray:
    samples, rate = sf.read(data_dir / CLIP, dtype="int16")
    assert rate == MICROPHONE_RATE_HZ and samples.ndim == 1
    return samples


def browser_frames(clip: np.ndarray) -> list[av.AudioFrame]:
    """The clip as the browser's microphone arrives: 48 kHz, both channels the same, 20 ms frames with pts."""
    stereo = np.repeat(as_pcm16(soxr.resample(as_float(clip), MICROPHONE_RATE_HZ, BROWSER_RATE_HZ))[:, None], 2, 1)
    frames = []
    for index in range(len(stereo) // FRAME_SAMPLES):
        chunk = stereo[index * FRAME_SAMPLES : (index + 1) * FRAME_SAMPLES]
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = BROWSER_RATE_HZ
        frame.pts = index * FRAME_SAMPLES
        frame.time_base = fractions.Fraction(1, BROWSER_RATE_HZ)
        frames.append(frame)
    return frames


def test_microphone_frames_become_the_same_speech_at_16_khz_mono(clip: np.ndarray) -> None:
    pushed: list[bytes] = []
    microphone = Microphone(pushed.append)
    frames = browser_frames(clip)
    for frame in frames:
        microphone(frame)
    assert microphone.frames == len(frames) == 250
    # one push per frame, 20 ms each (the resampler holds back its first 16 samples once)
    assert all(len(chunk) == 2 * 320 for chunk in pushed[1:]) and 0 < len(pushed[0]) <= 2 * 320
    heard = np.frombuffer(b"".join(pushed), dtype="<i2")
    assert len(clip) - 32 <= len(heard) <= len(clip)
    # the same speech, aligned, at the same level
    assert correlation(heard, clip[: len(heard)]) > 0.999
    assert np.std(heard) == pytest.approx(np.std(clip[: len(heard)]), rel=0.01)


def test_microphone_without_a_conversation_drops_frames_and_a_new_stream_starts_clean(clip: np.ndarray) -> None:
    microphone = Microphone()
    frames = browser_frames(clip)
    for frame in frames[:50]:
        microphone(frame)  # nothing to push to: dropped
    pushed: list[bytes] = []
    microphone.push_pcm = pushed.append
    microphone.reset()
    for frame in frames[50:100]:  # pts go on from 48000: the resampler does not mind where a stream starts
        microphone(frame)
    heard = np.frombuffer(b"".join(pushed), dtype="<i2")
    expected = clip[50 * 320 : 100 * 320]
    assert len(expected) - 32 <= len(heard) <= len(expected)
    assert correlation(heard, expected[: len(heard)]) > 0.999


async def read_track(source: PcmAudioSource, frames: int) -> np.ndarray:
    """What aiortc would send: ``frames`` 20 ms frames from the source's track, paced in real time."""
    out = []
    for _ in range(frames):
        frame = await source.track.recv()
        assert isinstance(frame, av.AudioFrame)
        assert frame.sample_rate == SPEAKER_RATE_HZ and frame.layout.name == "mono"
        out.append(frame.to_ndarray().reshape(-1))
    return np.concatenate(out)


def test_speaker_plays_22050_hz_speech_at_48_khz_and_clear_empties_it(clip: np.ndarray) -> None:
    voice = as_pcm16(soxr.resample(as_float(clip[:MICROPHONE_RATE_HZ]), MICROPHONE_RATE_HZ, VOICE_RATE_HZ))  # 1 s
    source = PcmAudioSource(sample_rate=SPEAKER_RATE_HZ)
    speaker: AudioOutput = Speaker(source)
    for piece in np.array_split(voice, 5):  # TTS streams a reply in pieces
        speaker.push(piece.tobytes(), VOICE_RATE_HZ)
    played = asyncio.run(read_track(source, 55))  # 1.1 s
    reference = as_pcm16(soxr.resample(as_float(voice), VOICE_RATE_HZ, SPEAKER_RATE_HZ))
    assert len(reference) == SPEAKER_RATE_HZ
    last_sound = int(np.flatnonzero(played)[-1])
    assert SPEAKER_RATE_HZ - 64 <= last_sound < SPEAKER_RATE_HZ  # 1 s of audio, less the resampler's held tail
    assert not played[SPEAKER_RATE_HZ:].any()  # then silence: the track pads an empty queue
    assert correlation(played[: SPEAKER_RATE_HZ - 64], reference[: SPEAKER_RATE_HZ - 64]) > 0.99

    # barge-in: what is queued and not yet played goes
    speaker.push(voice.tobytes(), VOICE_RATE_HZ)
    playing = asyncio.run(read_track(source, 20))  # 0.4 s: the speech starts at 0.2 s
    assert np.abs(playing).max() > 10_000
    speaker.clear()
    after = asyncio.run(read_track(source, 5))
    assert not after.any()


def test_speaker_takes_48_khz_as_is_moves_to_a_new_track_and_refuses_another_rate() -> None:
    source = PcmAudioSource(sample_rate=SPEAKER_RATE_HZ)
    speaker = Speaker(source)
    tone = as_pcm16(0.3 * np.sin(2 * np.pi * 440 * np.arange(1920) / SPEAKER_RATE_HZ))
    speaker.push(tone.tobytes(), SPEAKER_RATE_HZ)
    assert np.array_equal(asyncio.run(read_track(source, 2)), tone)

    new_source = PcmAudioSource(sample_rate=SPEAKER_RATE_HZ)  # a new stream, the same conversation
    speaker.use(new_source)
    speaker.push(tone.tobytes(), SPEAKER_RATE_HZ)
    assert np.array_equal(asyncio.run(read_track(new_source, 2)), tone)
    assert not asyncio.run(read_track(source, 2)).any()
    with pytest.raises(ValueError, match="48000 Hz"):
        Speaker(PcmAudioSource(sample_rate=24_000))
    with pytest.raises(ValueError, match="not 24000 Hz"):
        speaker.use(PcmAudioSource(sample_rate=24_000))


def test_ice_servers_default_to_none_and_no_provider_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FRONTEND_ICE_SERVERS", raising=False)
    # with these set, streamlit-webrtc fetches TURN credentials by itself when iceServers is missing
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "not-a-real-account")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "not-a-real-token")
    config = rtc_configuration(FrontendSettings())
    assert config == {"iceServers": []}
    assert enhance_frontend_rtc_configuration(config) == {"iceServers": []}  # what the browser gets
    assert compile_rtc_configuration(config).iceServers == []  # what aiortc gets


def test_ice_servers_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    servers: list[dict[str, Any]] = [
        {"urls": "stun:stun.example.org:3478"},
        {"urls": ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"], "username": "voice",
         "credential": "secret"},
    ]  # fmt: skip
    monkeypatch.setenv("FRONTEND_ICE_SERVERS", json.dumps(servers))
    config = rtc_configuration(FrontendSettings())
    assert config == {"iceServers": servers}
    [stun, turn] = compile_rtc_configuration(config).iceServers or []
    assert stun.urls == "stun:stun.example.org:3478" and stun.username is None
    assert turn.urls == servers[1]["urls"] and (turn.username, turn.credential) == ("voice", "secret")


@pytest.mark.parametrize(
    ("value", "error", "says"),
    [
        ("stun:stun.example.org:3478", SettingsError, "ice_servers"),  # not JSON
        ('[{"urls": "stun:stun.example.org:3478",}]', SettingsError, "ice_servers"),  # a trailing comma
        ('[{"username": "voice"}]', ValidationError, "urls"),
        ('[{"urls": "https://turn.example.org"}]', ValidationError, "starts with one of stun:"),
    ],
)
def test_bad_ice_servers_are_a_clear_settings_error(
    monkeypatch: pytest.MonkeyPatch, value: str, error: type[Exception], says: str
) -> None:
    monkeypatch.setenv("FRONTEND_ICE_SERVERS", value)
    with pytest.raises(error, match=says):
        FrontendSettings()
