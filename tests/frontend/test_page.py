"""The Streamlit page, driven by AppTest against the real services (started as processes).

AppTest cannot open a WebRTC connection, so the hands-free tests check what the page draws and hands the browser
(the stream's configuration, the machine-readable status) and the conversation shared with push-to-talk and typing;
the conversation itself runs in a real browser in the end-to-end tier.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import streamlit as st
import streamlit.config
import streamlit_webrtc.session_info
from streamlit.testing.v1 import AppTest

from voice_agent.config import get_settings

APP = Path(__file__).resolve().parents[2] / "frontend" / "app.py"
NOTHING_LISTENS = "http://127.0.0.1:9"


class NoStreamlitRuntime:
    """What ``Runtime.instance()`` does before a Streamlit server exists: raise RuntimeError.

    AppTest stands a MagicMock without a session manager in for the runtime; streamlit-webrtc's session lookup
    handles "no runtime" (its tracks then skip their session-end watchers) but not that mock.
    """

    @staticmethod
    def instance() -> None:
        raise RuntimeError("AppTest runs the page without a Streamlit server")


def point_page_at(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FRONTEND_TEMPERATURE", "0")
    monkeypatch.setenv("FRONTEND_MAX_TOKENS", "64")
    get_settings.cache_clear()
    st.cache_resource.clear()


def open_page(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> AppTest:
    monkeypatch.setattr(streamlit_webrtc.session_info, "Runtime", NoStreamlitRuntime)
    point_page_at(monkeypatch, env)
    app = AppTest.from_file(str(APP), default_timeout=300)
    app.run()
    assert not app.exception
    return app


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch, running_services) -> Iterator[AppTest]:  # type: ignore[no-untyped-def]
    """The page opened in push-to-talk mode (``FRONTEND_MODE``)."""
    yield open_page(monkeypatch, {**running_services.frontend_env(), "FRONTEND_MODE": "push-to-talk"})
    get_settings.cache_clear()
    st.cache_resource.clear()


@pytest.fixture
def hands_free_page(monkeypatch: pytest.MonkeyPatch, running_services) -> Iterator[AppTest]:  # type: ignore[no-untyped-def]
    """The page as it opens by default: hands-free."""
    monkeypatch.delenv("FRONTEND_MODE", raising=False)
    yield open_page(monkeypatch, running_services.frontend_env())
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


# ----- hands-free ------------------------------------------------------------------------------------------------


class StatusReader(HTMLParser):
    """The hidden status the page draws for tests and the browser harness, as attribute dicts."""

    def __init__(self) -> None:
        super().__init__()
        self.status: list[dict[str, str | None]] = []
        self.turns: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("class") == "handsfree-status":
            self.status.append(found)
        elif found.get("class") == "handsfree-turn":
            self.turns.append(found)


def hands_free_status(app: AppTest) -> StatusReader:
    reader = StatusReader()
    for element in app.get("html"):
        reader.feed(element.proto.body)
    assert len(reader.status) == 1, reader.status
    return reader


def stream_arguments(app: AppTest) -> dict:
    [stream] = [c for c in app.get("component_instance") if c.proto.component_name.endswith("webrtc_streamer")]
    arguments: dict = json.loads(stream.proto.json_args)
    return arguments


def test_hands_free_is_the_default_with_an_explicit_ice_configuration(
    hands_free_page: AppTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = hands_free_page
    assert page.segmented_control[0].value == "hands-free"
    assert not page.audio_input and not page.file_uploader  # push-to-talk's inputs wait behind the switch
    assert page.chat_input  # typing stays
    assert "START" in page.caption[0].value and "talk over it" in page.caption[0].value
    arguments = stream_arguments(page)
    assert arguments["mode"] == "SENDRECV"
    assert arguments["media_stream_constraints"] == {"audio": True, "video": False}
    # never the library's fallback (a public STUN server, or TURN credentials fetched with HF_TOKEN)
    assert arguments["rtc_configuration"] == {"iceServers": []}
    status = hands_free_status(page)
    [shown] = status.status
    assert {key: shown[key] for key in ("data-state", "data-turns", "data-interrupted", "data-partial")} == {
        "data-state": "off", "data-turns": "0", "data-interrupted": "0", "data-partial": ""
    }  # fmt: skip
    assert not status.turns
    # no full garbage collection after each 0.3 s rerun of the live view: it stalled the WebRTC event loop
    assert streamlit.config.get_option("runner.postScriptGC") is False

    turn_server = {"urls": "turn:turn.example.org:3478", "username": "voice", "credential": "secret"}
    monkeypatch.setenv("FRONTEND_ICE_SERVERS", json.dumps([turn_server]))
    get_settings.cache_clear()
    page.run()
    assert stream_arguments(page)["rtc_configuration"] == {"iceServers": [turn_server]}


def test_a_typed_turn_in_hands_free_mode_is_in_the_status_with_its_timings(hands_free_page: AppTest) -> None:
    question = 'Say "yes" if 2 < 3 & 4 > 1.'  # quotes and markup survive the status attributes
    hands_free_page.chat_input[0].set_value(question).run()
    assert not hands_free_page.exception and not hands_free_page.error
    assert chat_texts(hands_free_page, "user") == [question]
    status = hands_free_status(hands_free_page)
    assert status.status[0]["data-turns"] == "1" and status.status[0]["data-state"] == "off"
    [turn] = status.turns
    assert turn["data-index"] == "0" and turn["data-transcript"] == question and turn["data-interrupted"] == "0"
    timings = json.loads(turn["data-timings"] or "")
    assert timings == hands_free_page.session_state.turns[0].timings_ms and timings["voice_to_voice_ms"] > 0


def test_the_mode_switch_keeps_one_conversation(hands_free_page: AppTest, jfk_wav: Path) -> None:
    page = hands_free_page
    page.chat_input[0].set_value("My name is Alice.").run()
    page.segmented_control[0].set_value("push-to-talk").run()
    assert not page.exception
    assert not page.get("component_instance")  # the stream goes with hands-free mode
    assert "Press the microphone" in page.caption[0].value
    page.audio_input[0].set_value(("jfk.wav", jfk_wav.read_bytes(), "audio/wav")).run()
    assert not page.exception and not page.error
    users = chat_texts(page, "user")
    assert users[0] == "My name is Alice." and "ask not what your country" in users[1].lower()
    page.segmented_control[0].set_value("hands-free").run()
    assert not page.exception and chat_texts(page, "user") == users
    status = hands_free_status(page)
    assert status.status[0]["data-turns"] == "2"
    assert [turn["data-transcript"] for turn in status.turns] == users
    # a new conversation empties it in either mode
    [new] = [b for b in page.sidebar.button if b.label == "New conversation"]
    new.click().run()
    assert hands_free_status(page).status[0]["data-turns"] == "0" and not page.chat_message
