"""The Transcribe page: upload recordings of any length, watch each transcript grow, download it as txt, srt or vtt.

A page of ``frontend/app.py``'s navigation. Each upload is sent to the STT service with ``stream=true``
(``voice_agent.transcribe``); the text is drawn as its deltas arrive. A finished transcript is kept in the conversation
store under the sha256 of the file's bytes, so the same file uploaded again is shown from the store at once, without
asking the service (until "Transcribe again"). The history below lists, searches, opens and deletes stored transcripts.

Each delta says where its segment ends in the recording, so the bar shows audio seconds done / total (the total from
the file's header; without one, the phrases so far) and fills when the transcript is done.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError
from streamlit.runtime.uploaded_file_manager import UploadedFile

from voice_agent.clients import StageError, SttClient
from voice_agent.config import LANGUAGE_CHOICES, get_settings
from voice_agent.page_store import conversation_store
from voice_agent.store import ConversationStore, StoredTranscript, content_sha256
from voice_agent.transcribe import (
    FinishedTranscription,
    TranscriptDelta,
    audio_duration_s,
    clock_text,
    download_name,
    stream_transcription,
    to_srt,
    to_txt,
    to_vtt,
)

AUDIO_TYPES = ["wav", "flac", "mp3", "m4a", "mp4", "aac", "ogg", "oga", "opus", "webm", "mkv", "mka", "aiff", "wma"]
"""Extensions the uploader takes: containers the STT service decodes with PyAV (FFmpeg); it answers 415 otherwise."""
HISTORY_SHOWN = 50
MIB = 1024**2
MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#~$|])")

HANDLED = "transcribe_handled"  # file ids of uploads the page has acted on: a new upload is transcribed at once
FRESH = "transcribe_fresh"  # file ids transcribed by this browser session (not "already transcribed")
AGAIN = "transcribe_again"  # file ids whose "Transcribe again" was pressed
FAILED = "transcribe_failed"  # file id -> what failed, shown until "Transcribe again"
UNSTORED = "transcribe_unstored"  # sha256 -> FinishedTranscription, when there is no store to keep it
OPENED = "transcribe_opened"  # the history's open StoredTranscript, or None


@st.cache_resource(show_spinner=False, on_release=SttClient.close)
def stt_client() -> SttClient:
    """The STT service's client (``FRONTEND_STT_*``), once per process."""
    settings = get_settings()
    return SttClient(
        settings.stt_url,
        model=settings.stt_model,
        api_key=settings.stt_api_key.get_secret_value() if settings.stt_api_key else None,
        connect_timeout_s=settings.connect_timeout_s,
        read_timeout_s=settings.read_timeout_s,
        max_retries=settings.max_retries,
    )


def init_state() -> None:
    for key, default in ((HANDLED, set()), (FRESH, set()), (AGAIN, set()), (FAILED, {}), (UNSTORED, {})):
        st.session_state.setdefault(key, default)
    st.session_state.setdefault(OPENED, None)


def markdown_text(text: str) -> str:
    """``text`` shown as itself in Markdown (a file name with ``_`` or ``*``)."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", text)


def local_time(moment: datetime) -> str:
    """A stored (UTC) time in the browser's time zone when the browser said which, else the server's."""
    try:
        zone = zoneinfo.ZoneInfo(st.context.timezone) if st.context.timezone else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = None
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def describe(duration_s: float | None, language: str | None) -> str:
    parts = [clock_text(duration_s) if duration_s is not None else "length unknown"]
    if language:
        parts.append(language)
    return " · ".join(parts)


def transcribe_again(file_id: str) -> None:
    st.session_state[AGAIN].add(file_id)
    st.session_state[FAILED].pop(file_id, None)


def show_transcript(transcript: StoredTranscript | FinishedTranscription, file_name: str, key: str) -> None:
    """The transcript's text (with a copy button) and its three downloads."""
    if transcript.text:
        st.code(transcript.text, language=None, wrap_lines=True)
    else:
        st.info("No speech was heard in this recording.", icon="🔇")
    downloads = (
        ("txt", to_txt(transcript.text), "text/plain"),
        ("srt", to_srt(transcript.segments), "application/x-subrip"),
        ("vtt", to_vtt(transcript.segments), "text/vtt"),
    )
    for column, (extension, data, mime) in zip(st.columns(len(downloads)), downloads, strict=True):
        column.download_button(
            f"Download .{extension}",
            data=data.encode(),
            file_name=download_name(file_name, extension),
            mime=mime,
            key=f"download-{extension}-{key}",
            on_click="ignore",
            icon="⬇️",
            width="stretch",
        )


def transcribe_upload(upload: UploadedFile, data: bytes, sha256: str, store: ConversationStore | None) -> None:
    """Send one upload with ``stream=true`` and draw it as it grows; store it when done. A failure is kept in
    ``FAILED`` (drawn on later runs with "Transcribe again") and drawn here."""
    total_s = audio_duration_s(data)
    length = (
        f"the recording is {clock_text(total_s)} long" if total_s is not None else "its length is not in its header"
    )
    bar = st.progress(0.0, text=f"Sending {len(data) / MIB:.1f} MiB to the STT service… ({length})")
    text_box = st.empty()
    language = st.session_state.transcribe_language
    finished: FinishedTranscription | None = None
    try:
        for event in stream_transcription(
            stt_client(), data, filename=upload.name, language=None if language == "auto" else language
        ):
            if isinstance(event, TranscriptDelta):
                phrases = f"{event.phrases} phrase{'s' if event.phrases != 1 else ''} in {event.elapsed_s:.0f} s"
                if event.done_s is not None and total_s:
                    done = min(event.done_s / total_s, 1.0)
                    progress_text = f"Transcribing: {clock_text(event.done_s)} of {clock_text(total_s)} ({phrases})"
                else:
                    done, progress_text = 0.0, f"Transcribing: {phrases}; {length}"
                bar.progress(done, text=progress_text)
                text_box.code(event.text, language=None, wrap_lines=True)
            else:
                finished = event
    except StageError as err:
        bar.empty()
        text_box.empty()
        st.session_state[FAILED][upload.file_id] = f"{err} ({err.kind})"
        show_failure(upload.file_id)
        return
    assert finished is not None  # stream_transcription ends with its done event or raises
    heard = finished.duration_s if finished.duration_s is not None else total_s
    of_total = f" of {clock_text(total_s)}" if total_s is not None and heard is not None else ""
    bar.progress(
        1.0,
        text=(
            f"Done: {clock_text(heard) if heard is not None else 'the recording'}{of_total} transcribed in "
            f"{finished.elapsed_s:.1f} s"
        ),
    )
    text_box.empty()
    st.session_state[FRESH].add(upload.file_id)
    replaced = store_transcript(store, sha256, upload.name, finished, heard)
    show_transcript(finished, upload.name, upload.file_id)
    if replaced is not None:
        st.caption("The earlier transcript of this file was replaced.")


def store_transcript(
    store: ConversationStore | None,
    sha256: str,
    file_name: str,
    finished: FinishedTranscription,
    duration_s: float | None,
) -> StoredTranscript | None:
    """Keep the transcript (in the store, else in this session); the earlier stored transcript of the same file, if
    there was one, is deleted and returned."""
    if store is None:
        st.session_state[UNSTORED][sha256] = finished
        return None
    try:
        earlier = store.find_transcript(sha256)
        store.save_transcript(
            sha256,
            file_name,
            finished.text,
            language=finished.language,
            duration_s=duration_s,
            segments=finished.segments,
        )
        if earlier is not None:
            store.delete_transcript(earlier.id)
    except (SQLAlchemyError, OSError) as err:
        st.session_state[UNSTORED][sha256] = finished
        st.warning(f"The transcript is shown but could not be stored: {err}", icon="⚠️")
        return None
    return earlier


def show_failure(file_id: str) -> None:
    st.error(f"**Transcription failed.** {st.session_state[FAILED][file_id]}", icon="⚠️")
    st.button("Transcribe again", key=f"again-{file_id}", icon="🔁", on_click=transcribe_again, args=(file_id,))


def show_upload(upload: UploadedFile, store: ConversationStore | None, max_upload_mib: int) -> None:
    """One uploaded recording: its stored transcript, or its transcription now, or what failed."""
    data = upload.getvalue()
    sha256 = content_sha256(data)
    file_id = upload.file_id
    again = file_id in st.session_state[AGAIN]
    st.session_state[AGAIN].discard(file_id)
    with st.container(border=True):
        st.markdown(f"**{markdown_text(upload.name)}** · {len(data) / MIB:.1f} MiB")
        if not again:
            stored: StoredTranscript | FinishedTranscription | None = None
            try:
                stored = store.find_transcript(sha256) if store is not None else None
            except SQLAlchemyError as err:
                st.warning(f"The store could not be read: {err}", icon="⚠️")
            stored = stored or st.session_state[UNSTORED].get(sha256)
            if stored is not None:
                st.session_state[HANDLED].add(file_id)
                if file_id in st.session_state[FRESH]:
                    st.caption(f"✅ Transcribed · {describe(stored.duration_s, stored.language)}")
                else:
                    when = f" on {local_time(stored.created_at)}" if isinstance(stored, StoredTranscript) else ""
                    st.success(
                        f"**Already transcribed**{when}: shown from the store, the STT service was not asked · "
                        f"{describe(stored.duration_s, stored.language)}",
                        icon="📂",
                    )
                show_transcript(stored, upload.name, file_id)
                st.button(
                    "Transcribe again", key=f"again-{file_id}", icon="🔁", on_click=transcribe_again, args=(file_id,)
                )
                return
            if file_id in st.session_state[FAILED]:
                show_failure(file_id)
                return
            if file_id in st.session_state[HANDLED]:  # its transcript was deleted meanwhile
                st.info("Its stored transcript was deleted.", icon="🗑️")
                st.button(
                    "Transcribe again", key=f"again-{file_id}", icon="🔁", on_click=transcribe_again, args=(file_id,)
                )
                return
        st.session_state[HANDLED].add(file_id)
        if len(data) > max_upload_mib * MIB:  # Streamlit refuses these itself; kept for a page run without it
            st.session_state[FAILED][file_id] = (
                f"{upload.name} is {len(data) / MIB:.0f} MiB, over this page's upload limit of {max_upload_mib} MiB "
                "(server.maxUploadSize): it was not sent."
            )
            show_failure(file_id)
            return
        transcribe_upload(upload, data, sha256, store)


def open_transcript(transcript: StoredTranscript) -> None:
    st.session_state[OPENED] = transcript


def delete_transcript(store: ConversationStore, transcript: StoredTranscript) -> None:
    try:
        store.delete_transcript(transcript.id)
    except SQLAlchemyError as err:
        st.toast(f"Not deleted: {err}", icon="⚠️")
        return
    st.session_state[OPENED] = None
    st.toast(f"Deleted the transcript of {transcript.file_name}.", icon="🗑️")


def history(store: ConversationStore | None) -> None:
    """Stored transcripts, the newest first, searched by file name or text; one opened at a time."""
    st.subheader("Transcribed before")
    if store is None:
        reason = st.session_state.get("store_unavailable")
        st.caption(
            f"⚠️ Transcripts are not kept: {reason}"
            if reason
            else "Transcripts are not kept (`FRONTEND_STORE_CONVERSATIONS=false`): they last as long as this tab."
        )
        return
    query = st.text_input("Search", placeholder="a word of the transcript or the file name", key="transcript_search")
    try:
        found = store.search_transcripts(query.strip(), limit=HISTORY_SHOWN)
    except SQLAlchemyError as err:
        st.warning(f"The store could not be read: {err}", icon="⚠️")
        return
    opened: StoredTranscript | None = st.session_state[OPENED]
    if opened is not None:
        with st.container(border=True):
            st.markdown(
                f"**{markdown_text(opened.file_name)}** · {local_time(opened.created_at)} · "
                f"{describe(opened.duration_s, opened.language)}"
            )
            show_transcript(opened, opened.file_name, f"opened-{opened.id}")
            close, delete = st.columns(2)
            close.button("Close", key="close-opened", on_click=open_transcript, args=(None,), width="stretch")
            delete.button(
                "Delete",
                key=f"delete-{opened.id}",
                icon="🗑️",
                on_click=delete_transcript,
                args=(store, opened),
                width="stretch",
            )
    if not found:
        st.caption(f"Nothing stored matches “{query}”." if query else "Nothing transcribed yet.")
        return
    for transcript in found:
        row, button = st.columns([5, 1], vertical_alignment="center")
        preview = transcript.text[:120] + ("…" if len(transcript.text) > 120 else "")
        row.markdown(
            f"**{markdown_text(transcript.file_name)}** · {local_time(transcript.created_at)} · "
            f"{describe(transcript.duration_s, transcript.language)}  \n{markdown_text(preview)}"
        )
        button.button("Open", key=f"open-{transcript.id}", on_click=open_transcript, args=(transcript,))


def transcribe_page() -> None:
    init_state()
    st.title("📝 Transcribe")
    max_upload_mib = int(st.get_option("server.maxUploadSize"))
    st.caption(
        "Upload recordings of any length: each is transcribed by the STT service as it is decoded, the text appearing "
        "phrase by phrase, then downloadable as text or subtitles (srt, vtt). A file transcribed before is shown from "
        "the store at once."
    )
    st.selectbox(  # read by transcribe_upload from st.session_state.transcribe_language
        "Language",
        LANGUAGE_CHOICES,
        format_func=lambda code: "auto-detect" if code == "auto" else code,
        key="transcribe_language",
        help="The language spoken in the recordings; auto-detect listens to the first speech.",
    )
    uploads = st.file_uploader(
        "Recordings",
        type=AUDIO_TYPES,
        accept_multiple_files=True,
        key="transcribe_uploads",
        help=f"Up to {max_upload_mib} MiB per file (this page's upload limit, server.maxUploadSize).",
    )
    store = conversation_store()
    for upload in uploads or []:
        show_upload(upload, store, max_upload_mib)
    st.divider()
    history(store)


transcribe_page()
