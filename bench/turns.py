"""One push-to-talk turn, two ways, against the same three services:

- **streaming**: ``voice_agent.pipeline.Pipeline``, exactly as the page and ``make talk`` run a turn (the reply
  streamed, its first phrase spoken while the LLM writes the rest); its timings are the pipeline's own.
- **sequential**: the whole transcript, then the whole reply (one chat completion), then the whole speech, through
  the official ``openai`` client; its first audio is when the whole speech has arrived.

Both send no system message (the LLM service adds its default), temperature 0 (greedy: the same reply both ways)
and start from an empty history.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from openai import OpenAI, omit

from voice_agent.config import FrontendSettings
from voice_agent.pipeline import Pipeline, TurnOptions

from .corpus import Clip

SEED = 1234
OTHER_QUESTION = "Hello, how are you today?"


def openai_client(base_url: str, settings: FrontendSettings) -> OpenAI:
    """An ``openai`` client for one of our services (``base_url`` without ``/v1``), no retries: a failure shows."""
    return OpenAI(base_url=f"{base_url}/v1", api_key="not-needed", max_retries=0, timeout=settings.read_timeout_s)


def turn_options(settings: FrontendSettings) -> TurnOptions:
    """The page's per-turn options with temperature 0, so both designs get the same reply."""
    return dataclasses.replace(TurnOptions.from_settings(settings), temperature=0.0)


def timings_of(result: Any) -> dict[str, float | None]:
    """A ``TurnResult``'s timings as ``{key: ms}``, whatever the pipeline names its stages."""
    timings = result.timings
    raw = timings.as_dict() if hasattr(timings, "as_dict") else dataclasses.asdict(timings)
    return {key: None if value is None else round(float(value), 1) for key, value in raw.items()}


@dataclass
class Turn:
    """One turn: its timings (ms) and what was heard and said."""

    timings: dict[str, float | None]
    transcript: str
    reply: str
    first_phrase: str = ""


class Designs:
    """Streaming and sequential turns on one set of running services."""

    def __init__(self, settings: FrontendSettings) -> None:
        self.settings = settings
        self.options = turn_options(settings)
        self.pipeline = Pipeline.from_settings(settings)
        self.stt = openai_client(settings.stt_url, settings)
        self.llm = openai_client(settings.llm_url, settings)
        self.tts = openai_client(settings.tts_url, settings)

    def close(self) -> None:
        self.pipeline.close()
        for client in (self.stt, self.llm, self.tts):
            client.close()

    def forget_question(self) -> None:
        """Leave llama.cpp's prompt cache as a conversation's next turn finds it: the system prompt cached, the
        question not (llama-cpp-python reuses the longest common prefix of the previous prompt, so repeating the
        last question would skip reading it). A one-token request with another question, outside the timed turn."""
        self.llm.chat.completions.create(
            model=self.settings.llm_model, messages=[{"role": "user", "content": OTHER_QUESTION}], max_tokens=1,
            temperature=0.0,
        )  # fmt: skip

    def streaming(self, clip: Clip) -> Turn:
        """One pipeline turn; raises the pipeline's StageError if a stage fails."""
        self.forget_question()
        result = self.pipeline.run_turn([], self.options, audio=clip.audio, filename=clip.path.name)
        first = result.sentences[0] if result.sentences else ""
        return Turn(timings_of(result), result.transcript, result.reply, first)

    def sequential(self, clip: Clip) -> Turn:
        """Whole transcript -> whole reply -> whole speech; raises openai.APIError if a stage fails."""
        self.forget_question()
        start = time.perf_counter()
        transcript = self.stt.audio.transcriptions.create(
            model=self.settings.stt_model, file=(clip.path.name, clip.audio), language=self.options.language or omit
        ).text
        stt_done = time.perf_counter()
        completion = self.llm.chat.completions.create(
            model=self.settings.llm_model, messages=[{"role": "user", "content": transcript}],
            max_tokens=self.options.max_tokens, temperature=self.options.temperature, seed=SEED,
        )  # fmt: skip
        reply = (completion.choices[0].message.content or "").strip()
        llm_done = time.perf_counter()
        if reply:
            self.tts.audio.speech.create(
                model=self.settings.tts_model, voice=self.options.voice, input=reply, response_format="pcm"
            ).read()
        end = time.perf_counter()
        timings = {
            "stt_ms": (stt_done - start) * 1000,
            "llm_total_ms": (llm_done - stt_done) * 1000,
            "tts_total_ms": (end - llm_done) * 1000,
            "first_audio_ms": (end - start) * 1000,
        }
        return Turn({key: round(value, 1) for key, value in timings.items()}, transcript, reply)
