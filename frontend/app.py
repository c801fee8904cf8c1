"""The voice page: talk (record, upload or type), watch each stage, hear the reply as it is synthesised.

Run with ``streamlit run frontend/app.py`` (``make run`` does); the services' URLs come from ``FRONTEND_*``
variables. The work is in ``voice_agent.pipeline``; this file only draws.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlparse

import pandas as pd
import streamlit as st
import streamlit.components.v1 as components
from streamlit.delta_generator import DeltaGenerator

from voice_agent.clients import STAGE_NAMES, StageError
from voice_agent.config import get_settings
from voice_agent.conversation import Turn, history_of, to_json, to_markdown, to_zip
from voice_agent.pipeline import Pipeline, ReplyAudio, ReplyDelta, Transcript, TurnDone, TurnOptions
from voice_agent.playback import pcm_to_wav, queued_player_html

STAGES = {  # timing key -> (label, colour of its segment in the bar); together they make up voice-to-voice
    "stt_ms": ("STT", "#4e79a7"),
    "llm_first_phrase_ms": ("LLM first phrase", "#f28e2b"),
    "tts_ttfa_ms": ("TTS first audio", "#59a14f"),
}
LANGUAGES = ["auto", "en", "de", "fr", "es", "it", "pt", "nl", "pl", "ru", "zh", "ja"]
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


@st.cache_resource
def get_pipeline() -> Pipeline:
    return Pipeline.from_settings(get_settings())


@st.cache_data(ttl=30, show_spinner=False)
def voice_choices(tts_url: str) -> list[str]:
    return get_pipeline().tts.voices()


def init_state() -> None:
    defaults = {"turns": [], "input_generation": 0, "failed": None, "turn_counter": 0}
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)


def new_conversation() -> None:
    st.session_state.turns = []
    st.session_state.failed = None
    st.session_state.input_generation += 1


def timing_bar(timings: dict[str, float | None]) -> str:
    """A compact stacked bar of the stages that make up voice-to-voice, plus the LLM's time to first token."""
    total = timings.get("voice_to_voice_ms") or 0.0
    if total <= 0:
        return ""
    segments, legend = [], []
    for key, (label, colour) in STAGES.items():
        value = timings.get(key)
        if value:
            segments.append(
                f'<div title="{label} {value:.0f} ms" style="width:{100 * value / total:.1f}%;'
                f'background:{colour}"></div>'
            )
            legend.append(f'<span style="color:{colour}">■</span> {label} <b>{value:.0f}</b>')
    if timings.get("llm_ttft_ms"):
        legend.append(f"LLM first token <b>{timings['llm_ttft_ms']:.0f}</b>")
    legend.append(f"voice-to-voice <b>{total:.0f}</b>")
    return (
        '<div style="font-size:0.8rem;opacity:0.85">'
        '<div style="display:flex;height:6px;border-radius:3px;overflow:hidden;margin:2px 0 4px;'
        f'width:{min(100.0, total / 30):.0f}%;min-width:30%">{"".join(segments)}</div>'
        f"{' · '.join(legend)} ms</div>"
    )


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


def sidebar(pipeline: Pipeline) -> TurnOptions:
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
            LANGUAGES,
            index=LANGUAGES.index(default_language) if default_language in LANGUAGES else 0,
            help="auto detects it (slower on multilingual models); English-only models need en or auto.",
        )
        temperature = st.slider("Temperature", 0.0, 1.5, settings.temperature, 0.05)
        max_tokens = st.slider("Longest reply (tokens)", 16, 512, settings.max_tokens, 16)
        system_prompt = st.text_area(
            "System prompt", value=settings.system_prompt or "", help="Empty = the LLM service's default prompt."
        )
        st.button("New conversation", on_click=new_conversation, icon="🆕", use_container_width=True)
        turns: list[Turn] = st.session_state.turns
        if turns:
            st.subheader("Download")
            st.download_button("Transcript (Markdown)", to_markdown(turns), "conversation.md", "text/markdown")
            st.download_button("Transcript (JSON)", to_json(turns), "conversation.json", "application/json")
            st.download_button("Everything with audio (ZIP)", to_zip(turns), "conversation.zip", "application/zip")
    return replace(
        TurnOptions.from_settings(settings),
        voice=voice,
        language=None if language == "auto" else language,
        system_prompt=system_prompt.strip() or None,
        temperature=temperature,
        max_tokens=max_tokens,
    )


def show_turn(turn: Turn) -> None:
    with st.chat_message("user"):
        st.markdown(turn.transcript)
        if turn.user_audio:
            st.audio(turn.user_audio)
    with st.chat_message("assistant"):
        st.markdown(turn.reply)
        if turn.reply_wav:
            st.audio(turn.reply_wav, format="audio/wav")
        st.html(timing_bar(turn.timings_ms))


def latency_chart(turns: list[Turn]) -> None:
    rows = [
        {
            "turn": n,
            **{label: turn.timings_ms.get(key) for key, (label, _) in STAGES.items()},
            "voice-to-voice": turn.timings_ms.get("voice_to_voice_ms"),
        }
        for n, turn in enumerate(turns, start=1)
    ]
    with st.expander("Latency over the conversation (ms)", expanded=False):
        st.line_chart(pd.DataFrame(rows).set_index("turn"))


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


def main() -> None:
    st.set_page_config(page_title="Voice agent", page_icon="🎙️", layout="centered")
    init_state()
    st.title("🎙️ Voice agent")
    st.caption("Press the microphone, ask something, press stop. The answer is spoken as it is written.")
    microphone_warning()
    pipeline = get_pipeline()
    options = sidebar(pipeline)
    turns: list[Turn] = st.session_state.turns
    for turn in turns:
        show_turn(turn)
    if turns:
        latency_chart(turns)

    live_turn = st.container()  # the turn in progress is drawn here, between the history and the inputs
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
    typed = st.chat_input("…or type your question")
    if recording is not None:
        pending = {"audio": recording.getvalue(), "filename": recording.name or "recording.wav"}
    elif upload is not None:
        pending = {"audio": upload.getvalue(), "filename": upload.name}
    elif typed:
        pending = {"text": typed}
    if pending is not None:
        run_turn(pipeline, options, pending, live_turn)


main()
