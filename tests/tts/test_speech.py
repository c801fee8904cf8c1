"""``POST /v1/audio/speech`` with the real embedded voice: formats, durations, speed, voices, errors."""

from __future__ import annotations

import struct

import pytest
from fastapi.testclient import TestClient

from tts_service.schemas import OPENAI_VOICES

from .conftest import VOICE_RATE_HZ, assert_openai_error, decode, pcm16_to_float, rms

SENTENCE = "The quick brown fox jumps over the lazy dog."  # 9 words
SPEECH = "/v1/audio/speech"


def speak(client: TestClient, **fields: object):
    return client.post(SPEECH, json={"model": "tts-1", "input": SENTENCE, **fields})


def words(text: str) -> int:
    return len(text.split())


def test_wav_is_the_default_and_decodes_at_the_voice_rate_with_a_plausible_duration(client: TestClient) -> None:
    response = speak(client)
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["x-sample-rate"] == str(VOICE_RATE_HZ)
    assert response.headers["x-voice"] == "en_US-joe-medium"
    samples, rate_hz = decode(response.content)
    assert rate_hz == VOICE_RATE_HZ
    assert 0.2 * words(SENTENCE) <= samples.size / rate_hz <= 0.8 * words(SENTENCE)


def test_wav_header_is_a_streaming_header_with_unknown_size(client: TestClient) -> None:
    data = speak(client).content
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt "
    channels, rate_hz, _, _, bits = struct.unpack("<HIIHH", data[22:36])
    assert (channels, rate_hz, bits) == (1, VOICE_RATE_HZ, 16)
    assert data[36:40] == b"data" and struct.unpack("<I", data[40:44])[0] == 0xFFFFFFFF
    assert (len(data) - 44) % 2 == 0


def test_speech_is_not_silence(client: TestClient) -> None:
    samples, _ = decode(speak(client).content)
    # Piper peak-normalises each sentence; speech sits around 0.1 RMS, silence or hiss far below 0.02
    assert rms(samples) > 0.02
    assert float(abs(samples).max()) > 0.5


def test_pcm_is_raw_pcm16_at_the_stated_rate_and_as_long_as_the_wav(client: TestClient) -> None:
    pcm = speak(client, response_format="pcm")
    wav = speak(client, response_format="wav")
    assert pcm.status_code == 200
    assert pcm.headers["content-type"] == "audio/pcm"
    assert pcm.headers["x-sample-rate"] == str(VOICE_RATE_HZ)
    assert len(pcm.content) % 2 == 0
    pcm_s = len(pcm.content) / 2 / VOICE_RATE_HZ
    wav_s = decode(wav.content)[0].size / VOICE_RATE_HZ
    assert 0.2 * words(SENTENCE) <= pcm_s <= 0.8 * words(SENTENCE)
    # Piper's duration predictor is stochastic: two renderings of one sentence differ by a few percent
    assert pcm_s == pytest.approx(wav_s, rel=0.2)
    assert rms(pcm16_to_float(pcm.content)) > 0.02


@pytest.mark.parametrize(
    ("response_format", "content_type", "rate_hz"),
    [("flac", "audio/flac", VOICE_RATE_HZ), ("mp3", "audio/mpeg", VOICE_RATE_HZ), ("opus", "audio/ogg", 48_000)],
)
def test_compressed_formats_decode(client: TestClient, response_format: str, content_type: str, rate_hz: int) -> None:
    response = speak(client, response_format=response_format)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["x-sample-rate"] == str(rate_hz)
    samples, decoded_rate_hz = decode(response.content)
    assert decoded_rate_hz == rate_hz
    assert 0.2 * words(SENTENCE) <= samples.size / decoded_rate_hz <= 0.8 * words(SENTENCE)
    assert rms(samples) > 0.02


def test_speed_two_gives_clearly_shorter_audio(client: TestClient) -> None:
    normal = decode(speak(client, speed=1.0).content)[0].size
    fast = decode(speak(client, speed=2.0).content)[0].size
    assert fast < 0.75 * normal


@pytest.mark.parametrize("voice", [*OPENAI_VOICES, "en_US-joe-medium", "Nova"])
def test_openai_voice_names_and_the_voice_id_are_accepted(client: TestClient, voice: str) -> None:
    response = speak(client, input="Yes.", voice=voice, model="gpt-4o-mini-tts")
    assert response.status_code == 200
    assert response.headers["x-voice"] == "en_US-joe-medium"


def test_instructions_are_accepted(client: TestClient) -> None:
    response = speak(client, input="Calm down.", instructions="Speak slowly, in a calm and warm tone.")
    assert response.status_code == 200
    assert decode(response.content)[0].size > 0


def test_markdown_markers_are_not_read_aloud(client: TestClient) -> None:
    plain = decode(speak(client, input="This is bold.").content)[0].size
    marked = decode(speak(client, input="This is **bold**.").content)[0].size
    # "asterisk asterisk" read twice would add well over a second
    assert marked < 1.3 * plain


def test_punctuation_only_input_gives_a_valid_empty_wav(client: TestClient) -> None:
    response = speak(client, input="...")
    assert response.status_code == 200
    samples, rate_hz = decode(response.content)
    assert (samples.size, rate_hz) == (0, VOICE_RATE_HZ)


def test_unknown_voice_is_400_listing_the_voices(client: TestClient) -> None:
    response = speak(client, voice="bob")
    assert response.status_code == 400
    assert_openai_error(response.json(), code="unknown_voice", param="voice")
    assert "en_US-joe-medium" in response.json()["error"]["message"]
    assert "alloy" in response.json()["error"]["message"]


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_input_is_400(client: TestClient, text: str) -> None:
    response = speak(client, input=text)
    assert response.status_code == 400
    assert_openai_error(response.json(), code="empty_input", param="input")


def test_too_long_input_is_413(client: TestClient) -> None:
    response = speak(client, input="a" * 4097)
    assert response.status_code == 413
    assert_openai_error(response.json(), code="input_too_large", param="input")
    assert "4096" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"speed": 10}, "speed"),
        ({"speed": 0.1}, "speed"),
        ({"response_format": "aac"}, "response_format"),
        ({"stream_format": "sse"}, "stream_format"),
        ({"input": None}, "input"),
    ],
)
def test_invalid_fields_are_400_naming_the_field(client: TestClient, fields: dict, param: str) -> None:
    response = speak(client, **fields)
    assert response.status_code == 400
    assert_openai_error(response.json(), code="invalid_request", param=param)


def test_missing_input_is_400(client: TestClient) -> None:
    response = client.post(SPEECH, json={"model": "tts-1", "voice": "alloy"})
    assert response.status_code == 400
    assert_openai_error(response.json(), param="input")
