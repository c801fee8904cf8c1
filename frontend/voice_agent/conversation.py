"""The conversation as the page keeps it, and its exports (Markdown, JSON, ZIP with the audio)."""

from __future__ import annotations

import io
import json
import time
import zipfile
from dataclasses import dataclass, field

from .clients import Message


@dataclass
class Turn:
    """One finished exchange. Audio is complete files: the user's recording as sent, the reply as WAV."""

    transcript: str
    reply: str
    reply_wav: bytes
    timings_ms: dict[str, float | None]
    user_audio: bytes | None = None
    user_audio_name: str | None = None
    started_at: float = field(default_factory=time.time)
    interrupted: bool = False
    """The user talked over the reply: ``reply`` is the part that was played before it stopped."""


def history_of(turns: list[Turn]) -> list[Message]:
    """The chat history the LLM sees: user transcript and assistant reply of every turn, oldest first (a turn with
    only one side, such as a message a Realtime client added, gives only that message)."""
    messages: list[Message] = []
    for turn in turns:
        if turn.transcript:
            messages.append({"role": "user", "content": turn.transcript})
        # an interrupted reply ends where the user stopped hearing it; the ellipsis tells the LLM it was cut
        if turn.reply or turn.interrupted:
            messages.append({"role": "assistant", "content": f"{turn.reply}…" if turn.interrupted else turn.reply})
    return messages


def to_markdown(turns: list[Turn]) -> str:
    lines = ["# Conversation with the voice agent", ""]
    for number, turn in enumerate(turns, start=1):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(turn.started_at))
        v2v = turn.timings_ms.get("voice_to_voice_ms")
        reply = f"{turn.reply} — interrupted" if turn.interrupted else turn.reply
        lines += [f"## Turn {number} ({stamp})", "", f"**You:** {turn.transcript}", "", f"**Agent:** {reply}"]
        if v2v is not None:
            lines += ["", f"_voice-to-voice {v2v:.0f} ms_"]
        lines.append("")
    return "\n".join(lines)


def to_json(turns: list[Turn]) -> str:
    return json.dumps(
        {
            "turns": [
                {
                    "started_at": turn.started_at,
                    "transcript": turn.transcript,
                    "reply": turn.reply,
                    "interrupted": turn.interrupted,
                    "timings_ms": turn.timings_ms,
                    "user_audio": f"turn-{n:02d}-user-{turn.user_audio_name}" if turn.user_audio else None,
                    "reply_audio": f"turn-{n:02d}-agent.wav" if turn.reply_wav else None,
                }
                for n, turn in enumerate(turns, start=1)
            ]
        },
        indent=2,
    )


def to_zip(turns: list[Turn]) -> bytes:
    """A ZIP with conversation.md, conversation.json and every recording and reply (names as in the JSON)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("conversation.md", to_markdown(turns))
        archive.writestr("conversation.json", to_json(turns))
        for n, turn in enumerate(turns, start=1):
            if turn.user_audio:
                archive.writestr(f"turn-{n:02d}-user-{turn.user_audio_name}", turn.user_audio)
            if turn.reply_wav:
                archive.writestr(f"turn-{n:02d}-agent.wav", turn.reply_wav)
    return buffer.getvalue()
