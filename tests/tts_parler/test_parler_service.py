"""The TTS service with TTS_ENGINE=parler over HTTP (TestClient, lifespan run): the tiny model streams real WAV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tts_service.main import create_app
from tts_service.schemas import OPENAI_VOICES

from .conftest import assert_audio, decode, make_settings
from .tiny_parler import SAMPLE_RATE_HZ


def speak(client: TestClient, **body: object):
    return client.post("/v1/audio/speech", json={"model": "tts-1", "input": "Hello there. How are you?", **body})


def test_ready_with_the_parler_model(client: TestClient, settings) -> None:
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["model"] == settings.parler_model
    assert [card["id"] for card in client.get("/v1/models").json()["data"]] == [settings.parler_model]


def test_speech_streams_a_wav_at_the_codec_rate(client: TestClient) -> None:
    response = speak(client, voice="jon")
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["x-sample-rate"] == str(SAMPLE_RATE_HZ)
    assert response.headers["x-voice"] == "jon"
    samples, rate_hz = decode(response.content)
    assert rate_hz == SAMPLE_RATE_HZ
    assert_audio(samples)


def test_instructions_are_accepted_and_win_over_the_voice(client: TestClient) -> None:
    response = speak(
        client,
        input="Calm down.",
        voice="nova",
        instructions="A male speaker with a deep voice talks slowly, in a very quiet room.",
    )
    assert response.status_code == 200
    assert response.headers["x-voice"] == "laura"  # the voice resolved; its description was replaced
    assert_audio(decode(response.content)[0])


@pytest.mark.parametrize(("voice", "speaker"), [("alloy", "jon"), ("NOVA", "laura"), ("Lea", "lea")])
def test_openai_names_and_speaker_names_pick_a_speaker(client: TestClient, voice: str, speaker: str) -> None:
    response = speak(client, input="Yes.", voice=voice, model="gpt-4o-mini-tts")
    assert response.status_code == 200
    assert response.headers["x-voice"] == speaker


def test_unknown_voice_is_400_listing_the_speakers(client: TestClient) -> None:
    response = speak(client, voice="bob")
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("unknown_voice", "voice")
    assert "jon" in error["message"]
    assert "alloy" in error["message"]


def test_voices_lists_the_speakers_and_the_openai_aliases(client: TestClient) -> None:
    body = client.get("/v1/audio/voices").json()
    assert body["default_voice"] == "jon"
    assert [voice["id"] for voice in body["data"]][:1] == ["jon"]
    assert {voice["engine"] for voice in body["data"]} == {"parler"}
    assert {voice["sample_rate_hz"] for voice in body["data"]} == {SAMPLE_RATE_HZ}
    assert set(body["aliases"]) == set(OPENAI_VOICES)
    assert body["aliases"]["alloy"] == "jon"
    assert body["aliases"]["nova"] == "laura"


@pytest.mark.parametrize(("response_format", "rate_hz"), [("mp3", SAMPLE_RATE_HZ), ("opus", 48_000)])
def test_compressed_formats_carry_the_codec_rate(client: TestClient, response_format: str, rate_hz: int) -> None:
    response = speak(client, input="Hello.", response_format=response_format)
    assert response.status_code == 200
    assert response.headers["x-sample-rate"] == str(rate_hz)
    samples, decoded_rate_hz = decode(response.content)
    assert decoded_rate_hz == rate_hz
    assert samples.size > 0
    assert np.isfinite(samples).all()


def test_pcm_is_raw_pcm16_at_the_codec_rate(client: TestClient) -> None:
    response = speak(client, input="Hello.", response_format="pcm")
    assert response.status_code == 200
    assert response.headers["x-sample-rate"] == str(SAMPLE_RATE_HZ)
    assert len(response.content) > 0
    assert len(response.content) % 2 == 0


def test_start_up_fails_with_the_reason_when_the_model_is_missing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, parler_model=str(tmp_path / "no-such-model"))
    with pytest.raises(FileNotFoundError, match="no-such-model"), TestClient(create_app(settings)):
        pass
