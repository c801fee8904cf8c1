"""The voice page: record a question, see the transcript and the streamed reply, hear the answer.

Run with ``streamlit run frontend/app.py``; the services' URLs come from ``FRONTEND_*`` variables.
All the work is in ``voice_agent.pipeline``; this file only draws.
"""

from __future__ import annotations

import streamlit as st

from voice_agent.clients import STAGE_NAMES, StageError
from voice_agent.config import get_settings
from voice_agent.pipeline import (
    Pipeline,
    ReplyAudio,
    ReplyDelta,
    Transcript,
    TurnDone,
    TurnOptions,
)

TIMING_LABELS = {
    "stt_ms": "STT",
    "llm_ttft_ms": "LLM first token",
    "llm_total_ms": "LLM total",
    "tts_ttfa_ms": "TTS first audio",
    "voice_to_voice_ms": "voice-to-voice",
}


@st.cache_resource
def get_pipeline() -> Pipeline:
    return Pipeline.from_settings(get_settings())


def init_state() -> None:
    defaults = {"history": [], "turns": [], "recorder_generation": 0, "autoplay_turn": None, "failed_input": None}
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)


def new_conversation() -> None:
    st.session_state.history = []
    st.session_state.turns = []
    st.session_state.autoplay_turn = None
    st.session_state.failed_input = None
    st.session_state.recorder_generation += 1


def timing_caption(timings: dict[str, float | None]) -> str:
    parts = [f"{label} **{timings[key]:.0f} ms**" for key, label in TIMING_LABELS.items() if timings.get(key)]
    return " · ".join(parts)


def sidebar(pipeline: Pipeline) -> TurnOptions:
    settings = get_settings()
    with st.sidebar:
        st.header("Services")
        for name, client in (("STT", pipeline.stt), ("LLM", pipeline.llm), ("TTS", pipeline.tts)):
            status = client.status()
            icon = {"ready": "🟢", "loading": "🟡", "downloading": "🟡"}.get(status.state, "🔴")
            st.markdown(f"{icon} **{name}** {status.state} · `{status.model or client.base_url}`")
        st.header("Conversation")
        voice = st.text_input("Voice", value=settings.voice, help="TTS voice id; OpenAI names map to the default.")
        language = st.text_input("Language", value=settings.language or "", help="ISO-639-1 code; empty = auto.")
        temperature = st.slider("Temperature", 0.0, 1.5, settings.temperature, 0.05)
        max_tokens = st.slider("Longest reply (tokens)", 16, 512, settings.max_tokens, 16)
        system_prompt = st.text_area(
            "System prompt", value=settings.system_prompt or "", help="Empty = the LLM service's default prompt."
        )
        st.button("New conversation", on_click=new_conversation, use_container_width=True)
    return TurnOptions(
        voice=voice.strip() or settings.voice,
        language=language.strip() or None,
        system_prompt=system_prompt.strip() or None,
        temperature=temperature,
        max_tokens=max_tokens,
    )


def show_history() -> None:
    for index, turn in enumerate(st.session_state.turns):
        with st.chat_message("user"):
            st.markdown(turn["transcript"])
        with st.chat_message("assistant"):
            st.markdown(turn["reply"])
            if turn["wav"]:
                st.audio(turn["wav"], format="audio/wav", autoplay=index == st.session_state.autoplay_turn)
            st.caption(timing_caption(turn["timings"]))
    st.session_state.autoplay_turn = None


def run_turn(pipeline: Pipeline, options: TurnOptions, pending: dict) -> None:
    """Run one turn, drawing it as it happens; on success store it and start a fresh recorder."""
    history = st.session_state.history
    user_box = st.chat_message("user")
    assistant_box = st.chat_message("assistant")
    with assistant_box:
        status = st.status("Listening…" if pending.get("audio") else "Thinking…", expanded=False)
        text_slot = st.empty()
    reply = ""
    try:
        for event in pipeline.turn(history, options, **pending):
            if isinstance(event, Transcript):
                user_box.markdown(event.text)
                status.update(label="Thinking…")
            elif isinstance(event, ReplyDelta):
                reply += event.text
                text_slot.markdown(reply + "▌")
            elif isinstance(event, ReplyAudio):
                status.update(label="Speaking…")
            elif isinstance(event, TurnDone):
                result = event.result
                status.update(label="Done", state="complete")
                text_slot.markdown(result.reply)
                st.session_state.turns.append(
                    {
                        "transcript": result.transcript,
                        "reply": result.reply,
                        "wav": result.wav_bytes(),
                        "timings": result.timings.as_dict(),
                    }
                )
                history.append({"role": "user", "content": result.transcript})
                history.append({"role": "assistant", "content": result.reply})
                st.session_state.autoplay_turn = len(st.session_state.turns) - 1
                st.session_state.failed_input = None
                st.session_state.recorder_generation += 1
                st.rerun()
    except StageError as err:
        status.update(label=f"{STAGE_NAMES[err.stage]} failed", state="error")
        st.session_state.failed_input = pending
        st.session_state.last_error = {"stage": err.stage, "url": err.url, "kind": err.kind, "message": err.message}
        st.session_state.recorder_generation += 1
        st.rerun()


def main() -> None:
    st.set_page_config(page_title="Voice agent", page_icon="🎙️")
    init_state()
    st.title("🎙️ Voice agent")
    pipeline = get_pipeline()
    options = sidebar(pipeline)
    show_history()

    pending: dict | None = None
    failed = st.session_state.failed_input
    if failed is not None:
        error = st.session_state.get("last_error", {})
        st.error(
            f"**{STAGE_NAMES.get(error.get('stage', 'stt'), 'A stage')} failed** ({error.get('kind')}) at "
            f"`{error.get('url')}`: {error.get('message')}. The conversation so far is kept."
        )
        if st.button("Retry this turn", type="primary"):
            pending = failed

    recording = st.audio_input(
        "Record your question", key=f"recorder-{st.session_state.recorder_generation}", sample_rate=16_000
    )
    typed = st.chat_input("…or type your question")
    if recording is not None:
        pending = {"audio": recording.getvalue(), "filename": recording.name or "recording.wav"}
    elif typed:
        pending = {"text": typed}
    if pending is not None:
        run_turn(pipeline, options, pending)


main()
