"""The Streamlit page, driven by AppTest against the real services (started as processes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from voice_agent.config import get_settings

APP = Path(__file__).resolve().parents[2] / "frontend" / "app.py"
NOTHING_LISTENS = "http://127.0.0.1:9"


def point_page_at(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FRONTEND_TEMPERATURE", "0")
    monkeypatch.setenv("FRONTEND_MAX_TOKENS", "64")
    get_settings.cache_clear()
    st.cache_resource.clear()


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch, running_services) -> Iterator[AppTest]:  # type: ignore[no-untyped-def]
    point_page_at(monkeypatch, running_services.frontend_env())
    app = AppTest.from_file(str(APP), default_timeout=300)
    app.run()
    assert not app.exception
    yield app
    get_settings.cache_clear()
    st.cache_resource.clear()


def chat_texts(app: AppTest, role: str) -> list[str]:
    return [" ".join(md.value for md in message.markdown) for message in app.chat_message if message.name == role]


def test_page_shows_services_ready_and_a_recorder(page: AppTest) -> None:
    sidebar = " ".join(md.value for md in page.sidebar.markdown)
    assert sidebar.count("ready") == 3, sidebar
    assert page.audio_input[0].key == "recorder-0"
    assert page.title[0].value.endswith("Voice agent")


def test_a_recording_goes_through_a_full_turn(page: AppTest, jfk_wav: Path) -> None:
    page.audio_input[0].set_value(("jfk.wav", jfk_wav.read_bytes(), "audio/wav"))
    page.run()
    assert not page.exception
    assert not page.error, [e.value for e in page.error]
    [user] = chat_texts(page, "user")
    assert "ask not what your country" in user.lower()
    [reply] = chat_texts(page, "assistant")
    assert reply.strip()
    [turn] = page.session_state.turns
    assert turn.reply_wav[:4] == b"RIFF" and len(turn.reply_wav) > 22_050  # more than half a second of audio
    assert turn.timings_ms["voice_to_voice_ms"] > 0
    assert turn.user_audio == jfk_wav.read_bytes()
    assert len(page.get("audio")) == 2  # what the user said, and the reply
    assert any("voice-to-voice" in html.proto.body for html in page.get("html"))
    # the recording was used once: a fresh, empty recorder waits for the next turn
    assert page.audio_input[0].key == "recorder-1" and page.audio_input[0].value is None


def test_typed_turns_keep_the_conversation_and_new_conversation_clears_it(page: AppTest) -> None:
    page.chat_input[0].set_value("My name is Alice.").run()
    page.chat_input[0].set_value("What is my name?").run()
    assert not page.exception and not page.error
    assert chat_texts(page, "user") == ["My name is Alice.", "What is my name?"]
    assert len(chat_texts(page, "assistant")) == 2
    [new] = [b for b in page.sidebar.button if b.label == "New conversation"]
    new.click().run()
    assert page.session_state.turns == [] and not page.chat_message


def test_an_uploaded_file_goes_through_a_full_turn(page: AppTest, data_dir: Path) -> None:
    clip = data_dir / "ask_what_you_can_do_for_your_country.wav"
    page.file_uploader[0].set_value((clip.name, clip.read_bytes(), "audio/wav")).run()
    assert not page.exception and not page.error
    [user] = chat_texts(page, "user")
    assert "what you can do for your country" in user.lower()
    [turn] = page.session_state.turns
    assert turn.user_audio_name == clip.name and turn.reply_wav
    assert page.file_uploader[0].key == "upload-1" and not page.file_uploader[0].value  # ready for the next one


@pytest.mark.parametrize(
    ("stage", "label"),
    [
        ("stt", "speech recognition (STT) failed"),
        ("llm", "reply generation (LLM) failed"),
        ("tts", "speech synthesis (TTS) failed"),
    ],
)
def test_each_stopped_service_is_named_and_the_conversation_kept(
    page: AppTest, monkeypatch: pytest.MonkeyPatch, running_services, jfk_wav: Path, stage: str, label: str
) -> None:  # type: ignore[no-untyped-def]
    page.chat_input[0].set_value("Hello there.").run()
    point_page_at(monkeypatch, {**running_services.frontend_env(), f"FRONTEND_{stage.upper()}_URL": NOTHING_LISTENS})
    page.audio_input[0].set_value(("jfk.wav", jfk_wav.read_bytes(), "audio/wav")).run()
    assert not page.exception
    [error] = page.error
    assert label in error.value and "unreachable" in error.value
    assert len(page.session_state.turns) == 1 and chat_texts(page, "user") == ["Hello there."]
    assert [b.label for b in page.button if b.label == "Retry this turn"]


def test_sidebar_settings_apply_to_the_next_turn(page: AppTest, jfk_wav: Path) -> None:
    page.sidebar.slider[1].set_value(16).run()  # longest reply: 16 tokens
    page.chat_input[0].set_value("Tell me a long story about a dragon and a knight.").run()
    [turn] = page.session_state.turns
    assert 0 < len(turn.reply.split()) <= 16, turn.reply
    # the language reaches the STT service: an English-only model refuses German, and the page says so
    page.sidebar.selectbox[1].set_value("de").run()
    page.audio_input[0].set_value(("jfk.wav", jfk_wav.read_bytes(), "audio/wav")).run()
    [error] = page.error
    assert "speech recognition (STT) failed" in error.value and "rejected" in error.value
    assert len(page.session_state.turns) == 1


def test_a_failed_stage_is_named_the_conversation_kept_and_retry_works(
    page: AppTest, monkeypatch: pytest.MonkeyPatch, running_services
) -> None:  # type: ignore[no-untyped-def]
    page.chat_input[0].set_value("Hello there.").run()
    assert len(page.session_state.turns) == 1
    point_page_at(monkeypatch, {**running_services.frontend_env(), "FRONTEND_LLM_URL": NOTHING_LISTENS})
    page.chat_input[0].set_value("Tell me a joke.").run()
    assert not page.exception
    [error] = page.error
    assert "reply generation (LLM) failed" in error.value and NOTHING_LISTENS in error.value
    assert len(page.session_state.turns) == 1
    assert chat_texts(page, "user") == ["Hello there."]
    # the service comes back: retrying the failed turn works without reloading the page
    point_page_at(monkeypatch, running_services.frontend_env())
    [retry] = [b for b in page.button if b.label == "Retry this turn"]
    retry.click().run()
    assert not page.error
    assert chat_texts(page, "user") == ["Hello there.", "Tell me a joke."]
    assert len(page.session_state.turns) == 2
