"""The voice page: talk hands-free (WebRTC), or record, upload or type; watch each stage, hear the reply.

Run with ``streamlit run frontend/app.py`` (``make run`` does); the services' URLs come from ``FRONTEND_*``
variables. Three pages (``st.navigation``): Conversation, drawn here and the default; Transcribe
(``transcribe_page.py``: long recordings to text, subtitles); and Admin (``admin_page.py``: the services' state,
memory and latency, unloading and loading their models). The work is in
``voice_agent.pipeline`` (a push-to-talk or typed turn) and ``voice_agent.engine.conversation`` (the hands-free
conversation, driven through ``voice_agent.webrtc``); this file only draws.
"""

from __future__ import annotations

import html
import json
import logging
import re
import threading
import time
import zoneinfo
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace
from datetime import datetime
from urllib.parse import urlparse

import pandas as pd
import streamlit as st
import streamlit.components.v1 as components
import streamlit.config
from sqlalchemy.exc import SQLAlchemyError
from streamlit.delta_generator import DeltaGenerator
from streamlit_webrtc import (
    AudioSinkTrack,
    PcmAudioSource,
    WebRtcMode,
    create_audio_sink_track,
    create_pcm_audio_source_track,
    webrtc_streamer,
)

from voice_agent.clients import STAGE_NAMES, StageError
from voice_agent.config import LANGUAGE_CHOICES, get_settings
from voice_agent.conversation import Turn, history_of, to_json, to_markdown, to_zip
from voice_agent.engine.conversation import ConversationEngine, EngineSnapshot, TurnModels
from voice_agent.engine.events import Interrupted, ReplyDone, StageFailed
from voice_agent.engine.metrics import EngineMetrics, page_metrics
from voice_agent.page_store import conversation_store
from voice_agent.pipeline import Pipeline, ReplyAudio, ReplyDelta, Transcript, TurnDone, TurnOptions
from voice_agent.playback import pcm_to_wav, queued_player_html
from voice_agent.store import ConversationNotFound, ConversationStore, ConversationSummary, TurnSettings, title_of
from voice_agent.webrtc import SPEAKER_RATE_HZ, Microphone, Speaker, rtc_configuration

logger = logging.getLogger(__name__)

STAGES = {  # timing key -> (label, colour of its segment in the bar); together they make up voice-to-voice
    "stt_ms": ("STT", "#4e79a7"),
    "llm_first_phrase_ms": ("LLM first phrase", "#f28e2b"),
    "tts_ttfa_ms": ("TTS first audio", "#59a14f"),
}
HANDS_FREE_STAGES = {  # the same for a hands-free turn, from the end of the user's speech to the first reply audio
    "end_of_turn_ms": ("end of turn", "#bab0ac"),
    **STAGES,
}
HANDS_FREE_TOTAL = "end_of_speech_to_audio_ms"
MODES = {"hands-free": "Hands-free", "push-to-talk": "Push-to-talk"}
STATE_LABELS = {
    "off": "⏹️ Not listening: press START",
    "listening": "👂 Listening",
    "user_speaking": "🗣️ You are speaking",
    "thinking": "💭 Thinking",
    "speaking": "🔊 Speaking: talk over it to interrupt",
}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}
STREAM_KEY = "handsfree"  # st.session_state[STREAM_KEY] is streamlit-webrtc's context of the stream
HANDS_FREE_KEY = "handsfree_conversation"  # this page's own object: a different key (the context's is type-checked)
CONVERSATION_PARAM = "conversation"  # the URL's ?conversation=<id>: a reload of the page reopens that conversation
PAST_CONVERSATIONS_SHOWN = 50
STORE_RETRY_S = 10.0  # after a failed write, the unsaved turns are tried again this much later
MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#~$|])")  # inline Markdown in a label: emphasis, code, links, math


@st.cache_resource
def get_pipeline() -> Pipeline:
    return Pipeline.from_settings(get_settings())


def get_engine_metrics() -> EngineMetrics:
    """The conversation engines' metrics, once per process, served on ``FRONTEND_METRICS_PORT`` (0: not served)."""
    settings = get_settings()
    return page_metrics(settings.metrics_host, settings.metrics_port)


@st.cache_resource(show_spinner="Loading the voice activity and turn models…")
def get_turn_models() -> TurnModels:
    """Silero VAD and Smart Turn, loaded once per process and shared by every browser session."""
    return TurnModels.load()


@st.cache_data(ttl=30, show_spinner=False)
def voice_choices(tts_url: str) -> list[str]:
    return get_pipeline().tts.voices()


class HandsFree:
    """One browser session's hands-free conversation: the microphone callback and the engine while it runs.

    Kept in ``st.session_state[HANDS_FREE_KEY]``, so two tabs are two conversations. The engine starts when the
    WebRTC stream starts and is closed on STOP, when the microphone track ends (the tab was closed: the session
    ends) and on "New conversation". Its turns are then handed back to the page (``take_turns``). Methods are
    thread-safe: the track callbacks run on Streamlit's event loop and never touch ``st.*``.
    """

    def __init__(self) -> None:
        self.microphone = Microphone()
        self.engine: ConversationEngine | None = None
        self.cursor = 0  # next engine event to read
        self.failures: list[StageFailed] = []  # the latest first
        self._speaker: Speaker | None = None
        self._track: AudioSinkTrack | None = None  # the microphone track the running engine listens to
        self._ended_turns: list[Turn] | None = None
        self._lock = threading.Lock()  # guards the fields; held only briefly (the event loop takes it)
        self._starting = threading.Lock()  # one start at a time (building an engine takes up to a second)

    def ensure_started(
        self,
        new_engine: Callable[[Speaker, list[Turn]], ConversationEngine],
        track: AudioSinkTrack,
        source: PcmAudioSource,
        turns: list[Turn],
    ) -> None:
        """Start a conversation unless one runs: ``new_engine(speaker, history)`` builds it, listening to the
        microphone ``track``, its reply audio going to ``source``, its history the turns of the last closed one or
        else ``turns``. A running one keeps going, its reply audio moved to ``source`` if the stream got a new reply
        track. Atomic, because Streamlit may start a script run before the one it replaces has ended."""
        with self._starting:
            with self._lock:
                if self.engine is not None:
                    if self._speaker is not None and self._speaker.source is not source:
                        self._speaker.use(source)
                    self._track = track
                    return
                history = self._ended_turns if self._ended_turns is not None else turns
            speaker = Speaker(source)
            engine = new_engine(speaker, history)
            with self._lock:
                self.engine, self._speaker, self._track, self.cursor, self.failures = engine, speaker, track, 0, []
                self._ended_turns = None
                self.microphone.reset()
                self.microphone.push_pcm = engine.push_pcm
            engine.start()
        logger.info("hands-free conversation started (%d earlier turns)", len(history))

    def stop(self) -> None:
        """Close the engine (its requests close, its threads end) and silence what it queued."""
        with self._lock:
            engine, speaker = self.engine, self._speaker
            if engine is None:
                return
            self.engine, self._speaker, self._track = None, None, None
            self.microphone.push_pcm = None
            self._ended_turns = engine.snapshot().turns  # a conversation started meanwhile continues from these
        engine.close()
        if speaker is not None:
            speaker.clear()
        turns = engine.snapshot().turns
        with self._lock:
            self._ended_turns = turns
        logger.info("hands-free conversation closed (%d turns)", len(turns))

    def stream_ended(self, track: AudioSinkTrack) -> None:
        """The microphone ``track`` ended (STOP, the connection lost, the session ended when the tab was closed):
        close its conversation, off the event loop (``close`` waits). The end of an older stream's track, reported
        after a new stream started, leaves the new conversation alone."""
        with self._lock:
            if track is not self._track:
                return
        threading.Thread(target=self.stop, name="hands-free-stop", daemon=True).start()

    def take_turns(self) -> list[Turn] | None:
        """The conversation of an engine closed since the last call (the page keeps it), else None."""
        with self._lock:
            turns, self._ended_turns = self._ended_turns, None
        return turns


def hands_free_session() -> HandsFree:
    if HANDS_FREE_KEY not in st.session_state:
        st.session_state[HANDS_FREE_KEY] = HandsFree()
    session: HandsFree = st.session_state[HANDS_FREE_KEY]
    return session


def init_state() -> None:
    defaults = {
        "turns": [],
        "input_generation": 0,
        "failed": None,
        "turn_counter": 0,
        "conversation_id": None,  # the stored conversation the page shows; None until its first turn is stored
        "stored_turns": 0,  # how many of the turns, from the first, are in the store
        "store_failed_at": None,
        "confirm_delete": None,  # the id of the conversation whose deletion waits for a confirmation
    }
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)


def open_from_url(store: ConversationStore | None) -> None:
    """The first run of a browser session (a new tab, a reload, a restart of the page's process) reopens the
    conversation named in the URL; later runs keep the URL naming the one shown, or nothing for a new one."""
    wanted = st.query_params.get(CONVERSATION_PARAM)
    if not st.session_state.get("url_opened"):
        st.session_state.url_opened = True
        if store is not None and wanted and not st.session_state.turns:
            resume_conversation(store, wanted, gone="That conversation is no longer stored: this is a new one.")
    current = st.session_state.conversation_id
    if current is None:
        st.query_params.pop(CONVERSATION_PARAM, None)
    elif wanted != current:
        st.query_params[CONVERSATION_PARAM] = current


def sync_turns(session: HandsFree) -> list[Turn]:
    """One history for every mode: the running hands-free conversation's turns, else the page's own."""
    ended = session.take_turns()
    if ended is not None:
        st.session_state.turns = ended
    engine = session.engine
    if engine is not None:
        st.session_state.turns = engine.snapshot().turns
    turns: list[Turn] = st.session_state.turns
    return turns


def switch_conversation(turns: list[Turn], conversation_id: str | None) -> None:
    """Make ``turns`` the page's history, as conversation ``conversation_id`` (None: a new one, stored from its first
    turn on); a running hands-free conversation is closed and restarts with them on this rerun."""
    session = hands_free_session()
    session.stop()
    session.take_turns()
    st.session_state.turns = turns
    st.session_state.conversation_id, st.session_state.stored_turns = conversation_id, len(turns)
    st.session_state.failed = None
    st.session_state.confirm_delete = None
    st.session_state.input_generation += 1
    if conversation_id is None:
        st.query_params.pop(CONVERSATION_PARAM, None)
    else:
        st.query_params[CONVERSATION_PARAM] = conversation_id


def new_conversation() -> None:
    switch_conversation([], None)


def resume_conversation(
    store: ConversationStore, conversation_id: str, gone: str = "That conversation was deleted meanwhile."
) -> None:
    """Make a stored conversation the page's (its turns become the history the LLM is sent); a toast says ``gone``
    when it is no longer stored, or why it could not be loaded."""
    try:
        switch_conversation(store.load_turns(conversation_id), conversation_id)
    except ConversationNotFound:
        st.toast(gone, icon="🗑️")
    except (SQLAlchemyError, OSError) as err:
        logger.exception("conversation %s could not be loaded", conversation_id)
        st.toast(f"The conversation could not be loaded: {err}", icon="⚠️")


def rename_conversation(store: ConversationStore, conversation_id: str, title_key: str) -> None:
    try:
        store.rename_conversation(conversation_id, st.session_state[title_key])
    except ValueError:
        st.toast("A title cannot be empty.", icon="✏️")
    except (ConversationNotFound, SQLAlchemyError) as err:
        st.toast(f"The conversation could not be renamed: {err}", icon="⚠️")


def delete_conversation(store: ConversationStore, conversation_id: str) -> None:
    try:
        store.delete_conversation(conversation_id)
    except ConversationNotFound:
        pass  # deleted meanwhile (in another tab)
    except (SQLAlchemyError, OSError) as err:
        logger.exception("conversation %s could not be deleted", conversation_id)
        st.toast(f"The conversation could not be deleted: {err}", icon="⚠️")
        return
    if st.session_state.conversation_id == conversation_id:
        new_conversation()
    st.session_state.confirm_delete = None


def ask_to_delete(conversation_id: str | None) -> None:
    st.session_state.confirm_delete = conversation_id


def save_turns(store: ConversationStore | None, turns: list[Turn], settings: TurnSettings) -> None:
    """Store the turns the store does not have yet (``turns[stored_turns:]``), the first of them creating the
    conversation, whose id then goes into the URL. Called once the turns are drawn, so a turn is seen and heard
    before it is written. A failure is logged and shown; the turns are tried again ``STORE_RETRY_S`` later."""
    stored = st.session_state.stored_turns
    if store is None or len(turns) <= stored:
        return
    failed_at = st.session_state.store_failed_at
    if failed_at is not None and time.monotonic() - failed_at < STORE_RETRY_S:
        return
    try:
        if st.session_state.conversation_id is None:
            st.session_state.conversation_id = store.create_conversation(title_of(turns[stored].transcript)).id
        for turn in turns[stored:]:
            store.add_turn(st.session_state.conversation_id, turn, settings)
            st.session_state.stored_turns += 1
    except ConversationNotFound:  # deleted in another tab: what this page shows is kept, as a new conversation
        st.session_state.conversation_id, st.session_state.stored_turns = None, 0
        save_turns(store, turns, settings)
        return
    except (SQLAlchemyError, OSError) as err:
        logger.exception("turns not stored")
        st.session_state.store_failed_at = time.monotonic()
        st.toast(f"This turn is not saved yet: {err}", icon="⚠️")
    else:
        st.session_state.store_failed_at = None
    st.query_params[CONVERSATION_PARAM] = st.session_state.conversation_id


def local_time(moment: datetime) -> str:
    """A stored (UTC) time in the browser's time zone when the browser said which, else the server's."""
    try:
        zone = zoneinfo.ZoneInfo(st.context.timezone) if st.context.timezone else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = None
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def past_conversations(store: ConversationStore | None, box: DeltaGenerator) -> None:
    """The sidebar's stored conversations, the latest first, the one shown selected: choosing another resumes it;
    the one shown can be renamed and deleted (after a confirmation). A list of radio options rather than buttons, so
    a title never reads as one of the page's buttons."""
    if store is None:
        if st.session_state.get("store_unavailable"):
            box.caption(f"⚠️ Conversations are not saved: {st.session_state.store_unavailable}")
        return
    try:
        summaries = store.list_conversations(limit=PAST_CONVERSATIONS_SHOWN)
    except SQLAlchemyError as err:
        logger.exception("conversations not listed")
        box.caption(f"⚠️ Past conversations cannot be listed: {err}")
        return
    current = st.session_state.conversation_id
    by_id = {summary.id: summary for summary in summaries}
    with box:
        st.subheader("Past conversations")
        shown = by_id.get(current) if current is not None else None
        if current is not None and shown is None:  # older than the ones listed
            with suppress(ConversationNotFound, SQLAlchemyError):
                shown = store.get_conversation(current)
        if shown is not None:
            this_conversation(store, shown)
        if not summaries:
            st.caption("None yet: each turn is saved as it ends.")
            return
        # keyed by the conversation shown: a new one shown (resumed, started, deleted) gets a fresh selection
        key = f"past-conversations-{current or 'new'}"
        st.container(height=300 if len(summaries) > 6 else "content", border=False).radio(
            "Past conversations",
            list(by_id),
            index=list(by_id).index(current) if current in by_id else None,
            format_func=conversation_labels(summaries).__getitem__,
            captions=[f"{local_time(summary.updated_at)} · {turns_text(summary.turn_count)}" for summary in summaries],
            key=key,
            on_change=resume_chosen,
            args=(store, key),
            label_visibility="collapsed",
        )


def conversation_labels(summaries: list[ConversationSummary]) -> dict[str, str]:
    """Conversation id -> its label in the list: the title, with the id's start when another listed conversation has
    the same title. Streamlit identifies the chosen option by its label, so labels must be unique, and stable while
    the list changes around them (the date and number of turns are in the captions)."""
    titles = Counter(summary.title for summary in summaries)
    labels = {}
    for summary in summaries:
        label = summary.title if titles[summary.title] == 1 else f"{summary.title} · {summary.id[:8]}"
        labels[summary.id] = markdown_text(label)
    return labels


def turns_text(count: int) -> str:
    return f"{count} turn" if count == 1 else f"{count} turns"


def markdown_text(text: str) -> str:
    """``text`` shown as it is where Streamlit renders Markdown (a title such as ``2*3*4`` is not in italics)."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", text)


def resume_chosen(store: ConversationStore, key: str) -> None:
    chosen = st.session_state[key]
    if chosen is not None and chosen != st.session_state.conversation_id:
        resume_conversation(store, chosen)


def this_conversation(store: ConversationStore, shown: ConversationSummary) -> None:
    title_key = f"conversation-title-{shown.id}"
    st.text_input("Title of this conversation", value=shown.title, key=title_key, max_chars=200)
    rename, remove = st.columns(2)
    rename.button(
        "Rename",
        key="conversation-rename",
        on_click=rename_conversation,
        args=(store, shown.id, title_key),
        use_container_width=True,
    )
    remove.button(
        "Delete",
        key="conversation-delete",
        icon="🗑️",
        on_click=ask_to_delete,
        args=(shown.id,),
        use_container_width=True,
    )
    if st.session_state.confirm_delete == shown.id:
        what = f"“{markdown_text(shown.title)}”, its {turns_text(shown.turn_count)} and their audio"
        st.warning(f"Delete {what}? This cannot be undone.")
        confirm, cancel = st.columns(2)
        confirm.button(
            "Yes, delete it",
            key="conversation-delete-confirm",
            type="primary",
            on_click=delete_conversation,
            args=(store, shown.id),
            use_container_width=True,
        )
        cancel.button(
            "Cancel",
            key="conversation-delete-cancel",
            on_click=ask_to_delete,
            args=(None,),
            use_container_width=True,
        )


def timing_bar(
    timings: dict[str, float | None],
    stages: dict[str, tuple[str, str]] = STAGES,
    total_key: str = "voice_to_voice_ms",
    total_label: str = "voice-to-voice",
) -> str:
    """A compact stacked bar of the stages inside ``total_key``, plus the LLM's time to first token.

    Hands-free stages can overlap (a reply started speculatively transcribes while the end of turn is still
    being decided), so the bar's scale is the larger of the total and the stages' sum. Without a total (a reply
    cut before its first audio, a typed turn in a hands-free conversation) the stages that ran are shown alone.
    """
    total = timings.get(total_key) or 0.0
    scale = max(total, sum(timings.get(key) or 0.0 for key in stages))
    if scale <= 0:
        return ""
    segments, legend = [], []
    for key, (label, colour) in stages.items():
        value = timings.get(key)
        if value:
            segments.append(
                f'<div title="{label} {value:.0f} ms" style="width:{100 * value / scale:.1f}%;'
                f'background:{colour}"></div>'
            )
            legend.append(f'<span style="color:{colour}">■</span> {label} <b>{value:.0f}</b>')
    if timings.get("llm_ttft_ms"):
        legend.append(f"LLM first token <b>{timings['llm_ttft_ms']:.0f}</b>")
    if total > 0:
        legend.append(f"{total_label} <b>{total:.0f}</b>")
    return (
        '<div style="font-size:0.8rem;opacity:0.85">'
        '<div style="display:flex;height:6px;border-radius:3px;overflow:hidden;margin:2px 0 4px;'
        f'width:{min(100.0, scale / 30):.0f}%;min-width:30%">{"".join(segments)}</div>'
        f"{' · '.join(legend)} ms</div>"
    )


def turn_timing_bar(turn: Turn) -> str:
    if HANDS_FREE_TOTAL in turn.timings_ms:
        return timing_bar(turn.timings_ms, HANDS_FREE_STAGES, HANDS_FREE_TOTAL, "end of speech → first audio")
    return timing_bar(turn.timings_ms)


def microphone_warning() -> None:
    """Browsers give the microphone only to https pages or localhost: say so when neither holds."""
    url = urlparse(st.context.url or "")
    if url.scheme == "http" and (url.hostname or "") not in LOCAL_HOSTS:
        st.warning(
            f"This page is served over plain HTTP at `{url.hostname}`, so the browser will not give it the "
            "microphone (only `https://` pages and `localhost` may record). Open it as http://localhost:"
            f"{url.port or 8501} on this machine, or serve it over HTTPS (`server.sslCertFile` and "
            "`server.sslKeyFile`, see the README). Uploading a file or typing works meanwhile.",
            icon="🔒",
        )


def sidebar(pipeline: Pipeline, turns: list[Turn]) -> tuple[TurnOptions, DeltaGenerator]:
    """The services' state, the turn settings (returned) and the exports; the place for the past conversations
    (returned, filled once this run's turns are stored)."""
    settings = get_settings()
    with st.sidebar:
        st.subheader("Services")
        for name, client in (("STT", pipeline.stt), ("LLM", pipeline.llm), ("TTS", pipeline.tts)):
            status = client.status()
            icon = {"ready": "🟢", "loading": "🟡", "downloading": "🟡"}.get(status.state, "🔴")
            st.markdown(f"{icon} **{name}** {status.state} · `{status.model or client.base_url}`")
        st.subheader("Conversation")
        voices = voice_choices(pipeline.tts.base_url) or [settings.voice]
        voice = st.selectbox("Voice", voices, index=voices.index(settings.voice) if settings.voice in voices else 0)
        default_language = settings.language or "auto"
        language = st.selectbox(
            "Language you speak",
            LANGUAGE_CHOICES,
            index=LANGUAGE_CHOICES.index(default_language) if default_language in LANGUAGE_CHOICES else 0,
            help="auto detects it (slower on multilingual models); English-only models need en or auto.",
        )
        temperature = st.slider("Temperature", 0.0, 1.5, settings.temperature, 0.05)
        max_tokens = st.slider("Longest reply (tokens)", 16, 512, settings.max_tokens, 16)
        system_prompt = st.text_area(
            "System prompt", value=settings.system_prompt or "", help="Empty = the LLM service's default prompt."
        )
        st.button("New conversation", on_click=new_conversation, icon="🆕", use_container_width=True)
        conversations = st.container()
        if turns:
            st.subheader("Download")
            st.download_button("Transcript (Markdown)", to_markdown(turns), "conversation.md", "text/markdown")
            st.download_button("Transcript (JSON)", to_json(turns), "conversation.json", "application/json")
            st.download_button("Everything with audio (ZIP)", to_zip(turns), "conversation.zip", "application/zip")
    options = replace(
        TurnOptions.from_settings(settings),
        voice=voice,
        language=None if language == "auto" else language,
        system_prompt=system_prompt.strip() or None,
        temperature=temperature,
        max_tokens=max_tokens,
    )
    return options, conversations


def turn_settings(options: TurnOptions, mode: str) -> TurnSettings:
    """What the store keeps of how a turn was made."""
    return TurnSettings(
        voice=options.voice,
        language=options.language,
        temperature=options.temperature,
        max_tokens=options.max_tokens,
        mode=mode,
        system_prompt=options.system_prompt,
    )


def reply_text(turn: Turn) -> str:
    """What the agent said; for an interrupted reply, what was heard before the user talked over it."""
    if turn.interrupted:
        return f"{turn.reply} — interrupted" if turn.reply else "_(interrupted before any of it was heard)_"
    return turn.reply or "_(no reply)_"


def show_turn(turn: Turn, *, with_audio: bool = True) -> None:
    with st.chat_message("user"):
        st.markdown(turn.transcript)
        if with_audio and turn.user_audio:
            st.audio(turn.user_audio)
    with st.chat_message("assistant"):
        st.markdown(reply_text(turn))
        if with_audio and turn.reply_wav:
            st.audio(turn.reply_wav, format="audio/wav")
        bar = turn_timing_bar(turn)
        if bar:
            st.html(bar)


def latency_chart(turns: list[Turn]) -> None:
    rows = [
        {
            "turn": n,
            **{label: turn.timings_ms.get(key) for key, (label, _) in HANDS_FREE_STAGES.items()},
            "voice-to-voice": turn.timings_ms.get("voice_to_voice_ms"),
            "end of speech → first audio": turn.timings_ms.get(HANDS_FREE_TOTAL),
        }
        for n, turn in enumerate(turns, start=1)
    ]
    with st.expander("Latency over the conversation (ms)", expanded=False):
        st.line_chart(pd.DataFrame(rows).set_index("turn").dropna(axis="columns", how="all"))


def run_turn(pipeline: Pipeline, options: TurnOptions, pending: dict, area: DeltaGenerator) -> None:
    """Run one turn, drawing it in ``area`` as it happens; keep it on success, keep the rest on failure."""
    turns: list[Turn] = st.session_state.turns
    st.session_state.turn_counter += 1
    turn_id = st.session_state.turn_counter
    user_box = area.chat_message("user")
    with area.chat_message("assistant"):
        status = st.status("Transcribing your question…" if pending.get("audio") else "Thinking…")
        text_slot = st.empty()
        players = st.container(height=1, border=False)
    reply = ""
    inputs = {k: v for k, v in pending.items() if k in ("audio", "filename", "text")}
    try:
        for event in pipeline.turn(history_of(turns), options, **inputs):
            if isinstance(event, Transcript):
                user_box.markdown(event.text)
                if pending.get("audio"):
                    user_box.audio(pending["audio"])
                status.update(label="Thinking…")
            elif isinstance(event, ReplyDelta):
                reply += event.text
                text_slot.markdown(reply + " ▌")
            elif isinstance(event, ReplyAudio):
                status.update(label="Speaking…")
                with players:
                    wav = pcm_to_wav(event.pcm, event.sample_rate_hz)
                    components.html(queued_player_html(wav, turn=turn_id, index=event.index), height=0)
            elif isinstance(event, TurnDone):
                result = event.result
                status.update(label="Done", state="complete")
                turns.append(
                    Turn(
                        transcript=result.transcript,
                        reply=result.reply,
                        reply_wav=result.wav_bytes(),
                        timings_ms=result.timings.as_dict(),
                        user_audio=pending.get("audio"),
                        user_audio_name=pending.get("filename"),
                    )
                )
                st.session_state.failed = None
    except StageError as err:
        status.update(label=f"{STAGE_NAMES[err.stage]} failed", state="error")
        st.session_state.failed = {
            "input": pending,
            "stage": err.stage,
            "url": err.url,
            "kind": err.kind,
            "message": err.message,
        }
    # a recording or upload is used once: fresh, empty input widgets for the next turn
    st.session_state.input_generation += 1
    st.rerun()


# ----- hands-free ---------------------------------------------------------------------------------------------


def hands_free(pipeline: Pipeline, options: TurnOptions, session: HandsFree) -> None:
    """The WebRTC stream (its START / STOP buttons are the control) and the engine's life around it."""
    models = get_turn_models()  # loaded before START, so the first turn does not wait for it
    reply_source = create_pcm_audio_source_track(key="handsfree-reply", sample_rate=SPEAKER_RATE_HZ)

    def microphone_ended() -> None:  # on the event loop, once this run's track has been assigned
        session.stream_ended(microphone_track)

    microphone_track = create_audio_sink_track(
        callback=session.microphone, key="handsfree-microphone", on_ended=microphone_ended
    )
    stream = webrtc_streamer(
        key=STREAM_KEY,
        mode=WebRtcMode.SENDRECV,
        rtc_configuration=rtc_configuration(get_settings()),
        media_stream_constraints={"audio": True, "video": False},
        sink_audio_track=microphone_track,
        source_audio_track=reply_source.track,
    )
    if stream.state.playing or stream.state.signalling:  # started as the connection is made: no frame is lost

        def new_engine(speaker: Speaker, history: list[Turn]) -> ConversationEngine:
            return ConversationEngine(
                pipeline, options, output=speaker, models=models, history=history, metrics=get_engine_metrics()
            )

        session.ensure_started(new_engine, microphone_track, reply_source, st.session_state.turns)
    else:
        session.stop()
    if session.engine is not None:
        session.engine.set_options(options)


def partial_html(stable: str, unstable: str) -> str:
    """The turn in progress: agreed words as they are, the words that may still change greyed."""
    if not stable and not unstable:
        return "…"
    return f'{html.escape(stable)} <span style="opacity:0.45">{html.escape(unstable)}</span>'


def status_html(state: str, snapshot: EngineSnapshot | None, turns: list[Turn]) -> str:
    """The hidden, machine-readable status (tests and the browser harness read it): one ``handsfree-status`` div,
    then one ``handsfree-turn`` div per finished turn of the conversation with its timings as JSON.

    ``data-state`` is the engine's state, or "off" while no conversation runs; ``data-turns`` and
    ``data-interrupted`` count the conversation's finished turns (push-to-talk and typed ones included) and those
    the user talked over; ``data-partial`` is the engine's partial transcript of the latest user speech."""
    partial = f"{snapshot.partial_stable} {snapshot.partial_unstable}".strip() if snapshot else ""
    interrupted = sum(turn.interrupted for turn in turns)
    parts = [
        f'<div class="handsfree-status" data-state="{html.escape(state)}" data-turns="{len(turns)}" '
        f'data-interrupted="{interrupted}" data-partial="{html.escape(partial)}"></div>'
    ]
    for index, turn in enumerate(turns):
        timings = html.escape(json.dumps(turn.timings_ms))
        parts.append(
            f'<div class="handsfree-turn" data-index="{index}" data-transcript="{html.escape(turn.transcript)}" '
            f'data-interrupted="{int(turn.interrupted)}" data-timings="{timings}"></div>'
        )
    return f'<div style="display:none">{"".join(parts)}</div>'


def idle_view() -> None:
    """No conversation runs (before START, after STOP): the hidden status, and how to start."""
    st.html(status_html("off", None, st.session_state.turns))
    st.caption(STATE_LABELS["off"])


@st.fragment(run_every=0.3)
def live_view(session: HandsFree, shown: int, store: ConversationStore | None, settings: TurnSettings) -> None:
    """What the engine is doing, redrawn every 0.3 s without rerunning the page: the hidden status (first, so its
    place never changes), the turns finished since the page was last drawn whole (``shown`` were drawn then), the
    turn in progress, the state, what failed since the last finished turn. Drawn only while a conversation runs;
    when it ends (STOP, the connection lost) the whole page is redrawn, with the idle view in its place. Turns
    finished meanwhile are stored once drawn (``settings``: the page's when it was last drawn whole)."""
    engine = session.engine
    if engine is None:
        st.rerun(scope="app")
    events, session.cursor = engine.events(session.cursor)
    for event in events:
        if isinstance(event, StageFailed):
            session.failures.insert(0, event)
        elif isinstance(event, ReplyDone | Interrupted):
            session.failures.clear()
    snapshot = engine.snapshot()
    state = snapshot.state
    st.html(status_html(state, snapshot, snapshot.turns))
    for turn in snapshot.turns[shown:]:
        show_turn(turn, with_audio=False)  # the audio players come with the next whole redraw
    if len(snapshot.turns) > st.session_state.stored_turns:
        st.session_state.turns = snapshot.turns
        save_turns(store, snapshot.turns, settings)
    if state == "user_speaking":
        with st.chat_message("user"):
            st.html(partial_html(snapshot.partial_stable, snapshot.partial_unstable))
    elif state in ("thinking", "speaking"):
        with st.chat_message("user"):
            if snapshot.transcript:
                st.markdown(snapshot.transcript)
            else:
                st.html(partial_html(snapshot.partial_stable, snapshot.partial_unstable))
        with st.chat_message("assistant"):
            st.markdown((snapshot.reply_text or "…") + " ▌")
    st.caption(STATE_LABELS[state])
    for failure in session.failures[:3]:
        if failure.stage in STAGE_NAMES:
            st.warning(
                f"**{STAGE_NAMES[failure.stage]} failed**: {failure.message}. "
                "That turn was lost; the conversation goes on: say it again.",
                icon="⚠️",
            )
        else:  # the engine itself
            st.error(failure.message, icon="⚠️")


# ----- the page -----------------------------------------------------------------------------------------------


def no_collection_after_each_run() -> None:
    """Turn off Streamlit's full garbage collection after every script run (``runner.postScriptGC``) unless the
    server was told otherwise.

    The live view reruns every 0.3 s, and each collection of this process's heap (pandas, pyarrow, onnxruntime,
    aiortc) held the GIL for 0.2-0.7 s on a busy 2-core machine: the event loop that carries the WebRTC audio
    stalled for up to 3 s and Chrome dropped the connection as "disconnected". Python's own generational
    collector still runs. The public ``st.set_option`` takes only ``client.*`` options, hence the config module.
    """
    if not streamlit.config.is_manually_set("runner.postScriptGC"):
        streamlit.config.set_option("runner.postScriptGC", False, "frontend/app.py")


def conversation_page() -> None:
    init_state()
    settings = get_settings()
    session = hands_free_session()
    st.title("🎙️ Voice agent")
    mode = st.segmented_control(
        "Mode",
        list(MODES),
        format_func=MODES.__getitem__,
        default=settings.mode,
        required=True,
        key="mode",
        label_visibility="collapsed",
    )
    if mode == "hands-free":
        st.caption(
            "Press **START** and talk: the agent answers out loud when you pause, and stops when you talk over it. "
            "**STOP** ends listening; the conversation stays. Typing works too."
        )
    else:
        session.stop()  # leaving hands-free ends its conversation; the turns stay
        st.caption("Press the microphone, ask something, press stop. The answer is spoken as it is written.")
    microphone_warning()
    pipeline = get_pipeline()
    store = conversation_store()
    open_from_url(store)
    options, conversations = sidebar(pipeline, sync_turns(session))
    if mode == "hands-free":
        hands_free(pipeline, options, session)
    turns = sync_turns(session)
    for turn in turns:
        show_turn(turn)
    if turns:
        latency_chart(turns)
    settings_of_turns = turn_settings(options, mode)
    save_turns(store, turns, settings_of_turns)  # after drawing them: a turn is seen and heard before it is written
    past_conversations(store, conversations)

    live_turn = st.container()  # the turn in progress is drawn here, between the history and the inputs
    if mode == "hands-free":
        with live_turn:
            if session.engine is not None:
                live_view(session, len(turns), store, settings_of_turns)
            else:
                idle_view()
    pending: dict | None = None
    failed = st.session_state.failed
    if failed is not None:
        st.error(
            f"**{STAGE_NAMES[failed['stage']]} failed** ({failed['kind']}) at `{failed['url']}`: "
            f"{failed['message']}. The conversation so far is kept; retry when the service is back.",
            icon="⚠️",
        )
        if st.button("Retry this turn", type="primary", icon="🔁"):
            pending = failed["input"]

    recording = upload = None
    if mode == "push-to-talk":
        generation = st.session_state.input_generation
        record_tab, upload_tab = st.tabs(["🎙️ Record", "📁 Upload"])
        with record_tab:
            recording = st.audio_input("Record your question", key=f"recorder-{generation}", sample_rate=16_000)
        with upload_tab:
            upload = st.file_uploader(
                "Upload a recording",
                type=["wav", "flac", "mp3", "ogg", "opus", "webm", "m4a"],
                key=f"upload-{generation}",
            )
    typed = st.chat_input("…or type your question" if mode == "push-to-talk" else "Type instead of talking")
    if typed and session.engine is not None:
        session.engine.submit_text(typed)  # answered out loud in the running conversation, drawn by live_view
        return
    if recording is not None:
        pending = {"audio": recording.getvalue(), "filename": recording.name or "recording.wav"}
    elif upload is not None:
        pending = {"audio": upload.getvalue(), "filename": upload.name}
    elif typed:
        pending = {"text": typed}
    if pending is not None:
        run_turn(pipeline, options, pending, live_turn)


def main() -> None:
    st.set_page_config(page_title="Voice agent", page_icon="🎙️", layout="centered")
    no_collection_after_each_run()
    get_engine_metrics()  # served from the first page view on, whichever page it is
    pages = [
        st.Page(conversation_page, title="Conversation", icon="🎙️", url_path="conversation", default=True),
        st.Page("transcribe_page.py", title="Transcribe", icon="📝", url_path="transcribe"),
        st.Page("admin_page.py", title="Admin", icon="🛠️", url_path="admin"),
    ]
    st.navigation(pages, position="top").run()


main()
