"""Fast tier with fake engines: what a client sees when generation fails, and that requests queue in order.

The real model cannot be made to fail on demand; these fakes implement the same ``ChatModel`` protocol.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from fastapi.testclient import TestClient
from llm_test_helpers import make_settings, stream_chat, user

from llm_service.engine import ChatMessage, GenerationEnd, GenerationEvent, PreparedPrompt, SamplingParams, TextDelta
from llm_service.main import create_app


class ScriptedChat:
    """Replies with fixed words; raises after ``fail_after`` words if set (the warm-up call always succeeds)."""

    model_id = "scripted"
    owned_by = "tests"
    n_ctx = 2048

    def __init__(self, words: Sequence[str], fail_after: int | None = None) -> None:
        self.words = list(words)
        self.fail_after = fail_after
        self.calls = 0
        self.threads: set[int] = set()

    def prepare(self, messages: Sequence[ChatMessage], max_tokens: int) -> PreparedPrompt:
        self.threads.add(threading.get_ident())
        return PreparedPrompt(tuple(messages), tuple(range(sum(len(m.content) for m in messages))))

    def generate(self, prompt: PreparedPrompt, params: SamplingParams) -> Iterator[GenerationEvent]:
        self.threads.add(threading.get_ident())
        self.calls += 1
        warm_up = self.calls == 1
        for index, word in enumerate(self.words[: params.max_tokens]):
            if not warm_up and self.fail_after is not None and index == self.fail_after:
                raise RuntimeError("the accelerator caught fire")
            yield TextDelta(word)
        yield GenerationEnd("stop", prompt.prompt_tokens, min(len(self.words), params.max_tokens))

    def close(self) -> None:
        pass


def test_a_failure_mid_stream_sends_an_error_event_and_no_finish() -> None:
    engine = ScriptedChat(["Hello", " there", " friend", "."], fail_after=2)
    with TestClient(create_app(make_settings(), engine=engine)) as client:
        stream = stream_chat(client, {"messages": [user("hi")]})
        assert stream.text == "Hello there"
        assert stream.finish_reasons == []
        assert not stream.done
        (error,) = stream.errors
        assert error["error"]["type"] == "server_error"
        assert error["error"]["code"] == "inference_error"
        assert "caught fire" in error["error"]["message"]
        # the service keeps serving
        assert client.get("/ready").status_code == 200


def test_a_failure_without_streaming_is_a_500_in_openai_shape() -> None:
    engine = ScriptedChat(["Hello", " there"], fail_after=1)
    with TestClient(create_app(make_settings(), engine=engine)) as client:
        response = client.post("/v1/chat/completions", json={"messages": [user("hi")]})
        assert response.status_code == 500
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("server_error", "inference_error")
        assert "caught fire" in error["message"]


def test_concurrent_streams_all_finish_and_the_engine_sees_one_thread() -> None:
    engine = ScriptedChat([f" w{i}" for i in range(30)])
    with TestClient(create_app(make_settings(), engine=engine)) as client:
        results: list[object] = [None] * 6

        def run(index: int) -> None:
            results[index] = stream_chat(client, {"messages": [user(f"client {index}")]})

        threads = [threading.Thread(target=run, args=(index,)) for index in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    for stream in results:
        assert stream is not None
        assert stream.done and stream.finish_reasons == ["stop"]  # type: ignore[attr-defined]
        assert stream.text == "".join(f" w{i}" for i in range(30))  # type: ignore[attr-defined]
    assert len(engine.threads) == 1  # every model call ran on the one worker thread
    assert threading.get_ident() not in engine.threads


def test_the_default_system_prompt_is_prepended_only_when_missing() -> None:
    engine = ScriptedChat(["ok"])
    seen: list[tuple[ChatMessage, ...]] = []
    original = engine.prepare

    def recording_prepare(messages: Sequence[ChatMessage], max_tokens: int) -> PreparedPrompt:
        seen.append(tuple(messages))
        return original(messages, max_tokens)

    engine.prepare = recording_prepare  # type: ignore[method-assign]
    settings = make_settings(system_prompt="Speak plainly.")
    with TestClient(create_app(settings, engine=engine)) as client:
        client.post("/v1/chat/completions", json={"messages": [user("hi")]})
        client.post("/v1/chat/completions", json={"messages": [{"role": "system", "content": "Mine."}, user("hi")]})
    assert seen[-2][0] == ChatMessage("system", "Speak plainly.")
    assert [m.content for m in seen[-1] if m.role == "system"] == ["Mine."]
