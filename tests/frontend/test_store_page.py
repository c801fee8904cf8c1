"""The Conversation page keeps its conversations: driven by AppTest against the real services (started as processes),
with the store in tmp_path (``FRONTEND_DATA_DIR``).

A "fresh AppTest" is a new browser session on a restarted page process: new session state, the process's cached
resources (the store, the pipeline) cleared, only the URL's query parameters carried over, as a browser reload does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import streamlit as st
import streamlit_webrtc.session_info
from streamlit.testing.v1 import AppTest
from test_page import APP, NoStreamlitRuntime, chat_texts, point_page_at

from voice_agent.clients import Message
from voice_agent.config import get_settings
from voice_agent.conversation import Turn
from voice_agent.pipeline import Pipeline
from voice_agent.store import ConversationStore, TurnSettings, sqlite_url

OpenPage = Callable[..., AppTest]


@pytest.fixture
def open_conversation_page(monkeypatch: pytest.MonkeyPatch, running_services, tmp_path: Path) -> Iterator[OpenPage]:  # type: ignore[no-untyped-def]
    """``open_conversation_page(conversation=None)``: the page in push-to-talk mode, its store in tmp_path, opened
    as a new browser session would (with ``?conversation=<id>`` in the URL when given)."""
    env = {**running_services.frontend_env(), "FRONTEND_MODE": "push-to-talk", "FRONTEND_DATA_DIR": str(tmp_path)}

    def open_(conversation: str | None = None) -> AppTest:
        monkeypatch.setattr(streamlit_webrtc.session_info, "Runtime", NoStreamlitRuntime)
        point_page_at(monkeypatch, env)
        app = AppTest.from_file(str(APP), default_timeout=300)
        if conversation is not None:
            app.query_params["conversation"] = conversation
        app.run()
        assert not app.exception, app.exception
        return app

    yield open_
    get_settings.cache_clear()
    st.cache_resource.clear()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ConversationStore]:
    """The same store the page writes to, opened by the test."""
    opened = ConversationStore.open(sqlite_url(tmp_path), tmp_path / "conversations")
    yield opened
    opened.close()


@pytest.fixture
def sent_histories(monkeypatch: pytest.MonkeyPatch) -> list[list[Message]]:
    """The history each turn of the page sends to the LLM (``Pipeline.turn``'s first argument), the turn itself
    still run by the real pipeline against the real services."""
    sent: list[list[Message]] = []
    real_turn = Pipeline.turn

    def recording_turn(self: Pipeline, history: list[Message], *args, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(list(history))
        return real_turn(self, history, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "turn", recording_turn)
    return sent


def sidebar_button(app: AppTest, key: str):  # type: ignore[no-untyped-def]
    [button] = [b for b in app.sidebar.button if b.key == key]
    return button


def past_conversations(app: AppTest):  # type: ignore[no-untyped-def]
    """The sidebar's list of stored conversations (radio options: conversation ids shown as their titles)."""
    [listing] = [radio for radio in app.sidebar.radio if (radio.key or "").startswith("past-conversations-")]
    return listing


def test_a_typed_turn_is_stored_and_a_reload_shows_it_again(
    open_conversation_page: OpenPage, store: ConversationStore, tmp_path: Path
) -> None:
    page = open_conversation_page()
    assert "conversation" not in page.query_params  # nothing stored before the first turn
    page.chat_input[0].set_value("My name is Alice.").run()
    assert not page.exception and not page.error
    [conversation] = store.list_conversations()
    assert page.query_params["conversation"] == conversation.id
    assert (conversation.title, conversation.turn_count) == ("My name is Alice.", 1)
    [turn] = store.load_turns(conversation.id)
    [shown] = page.session_state.turns
    assert (turn.transcript, turn.reply, turn.reply_wav) == (shown.transcript, shown.reply, shown.reply_wav)
    assert turn.reply_wav[:4] == b"RIFF" and turn.timings_ms["voice_to_voice_ms"] > 0
    assert [path.name.endswith("-reply.wav") for path in (tmp_path / "conversations" / conversation.id).iterdir()] == [
        True
    ]
    [settings] = store.turn_settings(conversation.id)
    assert settings == TurnSettings(
        voice=settings.voice, language=None, temperature=0.0, max_tokens=64, mode="push-to-talk"
    )
    # the sidebar lists it, as the conversation shown, with its date and number of turns
    listed = past_conversations(page)
    assert listed.value == conversation.id and listed.options == ["My name is Alice."]
    assert listed.proto.captions[0].endswith("· 1 turn")

    reloaded = open_conversation_page(conversation.id)
    assert chat_texts(reloaded, "user") == ["My name is Alice."]
    assert chat_texts(reloaded, "assistant") == [turn.reply]
    assert len(reloaded.get("audio")) == 1  # the reply's audio (a typed question has none)
    assert reloaded.query_params["conversation"] == conversation.id
    [back] = reloaded.session_state.turns
    assert back.reply_wav == turn.reply_wav

    gone = open_conversation_page("0" * 32)  # a conversation deleted since: the page starts a new one
    assert not gone.chat_message and "conversation" not in gone.query_params


def test_a_resumed_conversation_sends_its_history_and_continues_it(
    open_conversation_page: OpenPage, store: ConversationStore, sent_histories: list[list[Message]]
) -> None:
    page = open_conversation_page()
    page.chat_input[0].set_value("My name is Alice.").run()
    [first] = page.session_state.turns
    [conversation] = store.list_conversations()

    elsewhere = open_conversation_page()  # another browser session, with nothing in its URL: a new conversation
    assert not elsewhere.chat_message
    assert past_conversations(elsewhere).value is None
    past_conversations(elsewhere).set_value(conversation.id).run()
    assert chat_texts(elsewhere, "user") == ["My name is Alice."]
    assert elsewhere.query_params["conversation"] == conversation.id
    elsewhere.chat_input[0].set_value("What is my name?").run()
    assert not elsewhere.exception and not elsewhere.error

    assert sent_histories[-1] == [
        {"role": "user", "content": "My name is Alice."},
        {"role": "assistant", "content": first.reply},
    ]
    assert [c.id for c in store.list_conversations()] == [conversation.id]  # continued, not a new one
    assert [t.transcript for t in store.load_turns(conversation.id)] == ["My name is Alice.", "What is my name?"]

    # New conversation: the next turn starts a second stored conversation, with no history
    [new] = [b for b in elsewhere.sidebar.button if b.label == "New conversation"]
    new.click().run()
    assert "conversation" not in elsewhere.query_params and not elsewhere.session_state.turns
    elsewhere.segmented_control[0].set_value("hands-free").run()  # a typed turn in hands-free mode, no stream
    elsewhere.chat_input[0].set_value("Hello there.").run()
    assert not elsewhere.exception and not elsewhere.error
    assert sent_histories[-1] == []
    listed = store.list_conversations()
    assert [(c.title, c.turn_count) for c in listed] == [("Hello there.", 1), ("My name is Alice.", 2)]
    assert [settings.mode for settings in store.turn_settings(listed[0].id)] == ["hands-free"]
    assert elsewhere.query_params["conversation"] == listed[0].id


def test_rename_and_delete_from_the_sidebar(
    open_conversation_page: OpenPage, store: ConversationStore, tmp_path: Path
) -> None:
    page = open_conversation_page()
    page.chat_input[0].set_value("Tell me a joke.").run()
    [conversation] = store.list_conversations()
    audio_dir = tmp_path / "conversations" / conversation.id
    assert any(audio_dir.iterdir())

    page.sidebar.text_input(key=f"conversation-title-{conversation.id}").input("Jokes").run()
    sidebar_button(page, "conversation-rename").click().run()
    assert store.get_conversation(conversation.id).title == "Jokes"
    assert past_conversations(page).options == ["Jokes"]

    sidebar_button(page, "conversation-delete").click().run()
    [warning] = page.sidebar.warning
    assert "Jokes" in warning.value and "cannot be undone" in warning.value
    assert store.list_conversations() and audio_dir.is_dir()  # nothing deleted before the confirmation
    sidebar_button(page, "conversation-delete-cancel").click().run()
    assert not page.sidebar.warning and store.list_conversations()

    sidebar_button(page, "conversation-delete").click().run()
    sidebar_button(page, "conversation-delete-confirm").click().run()
    assert not page.exception
    assert store.list_conversations() == [] and not audio_dir.exists()
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM turns").scalar() == 0
    assert page.session_state.turns == [] and not page.chat_message  # the page moved on to a new conversation
    assert "conversation" not in page.query_params


def test_conversations_with_the_same_title_stay_apart(
    open_conversation_page: OpenPage, store: ConversationStore
) -> None:
    """The list tells same-titled conversations apart (Streamlit identifies a chosen option by its label)."""
    older, newer = store.create_conversation(), store.create_conversation()
    for conversation, reply in ((older, "Hello Alice."), (newer, "Hi Alice!")):
        store.add_turn(conversation.id, Turn("My name is Alice.", reply, b"", {}))
    page = open_conversation_page(older.id)
    assert chat_texts(page, "assistant") == ["Hello Alice."]
    labels = past_conversations(page).options
    assert len(set(labels)) == 2 and all(label.startswith("My name is Alice.") for label in labels)

    page.chat_input[0].set_value("What is my name?").run()
    assert not page.exception and not page.error
    assert page.query_params["conversation"] == older.id
    assert [t.transcript for t in store.load_turns(older.id)] == ["My name is Alice.", "What is my name?"]
    assert len(store.load_turns(newer.id)) == 1

    past_conversations(page).set_value(newer.id).run()
    assert chat_texts(page, "assistant") == ["Hi Alice!"] and page.query_params["conversation"] == newer.id
