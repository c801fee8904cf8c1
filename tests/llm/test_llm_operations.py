"""``/metrics`` and the admin routes of the LLM service on the real embedded model."""

from __future__ import annotations

from fastapi.testclient import TestClient
from llm_test_helpers import make_settings
from scrape import Scrape, scrape

from llm_service.main import create_app

ADMIN = {"Authorization": "Bearer llm-admin"}
CHAT = "/v1/chat/completions"
QUESTION = {"messages": [{"role": "user", "content": "Name three colours."}], "max_tokens": 24, "temperature": 0}


def rise(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


def test_a_completion_adds_its_tokens_time_to_first_token_and_decoding_speed(client: TestClient) -> None:
    before = scrape(client)
    reply = client.post(CHAT, json=QUESTION).json()
    after = scrape(client)
    assert rise(before, after, "llm_prompt_tokens_total") == reply["usage"]["prompt_tokens"] > 0
    assert rise(before, after, "llm_completion_tokens_total") == reply["usage"]["completion_tokens"] > 1
    assert rise(before, after, "llm_time_to_first_token_seconds_count") == 1
    assert 0 < rise(before, after, "llm_time_to_first_token_seconds_sum") < 30
    assert rise(before, after, "llm_tokens_per_second_count") == 1
    assert rise(before, after, "llm_tokens_per_second_sum") > 1  # tokens per second, not per millisecond
    assert rise(before, after, "llm_streams_cut_total") == 0


def test_unload_refuses_completions_clearly_and_load_brings_the_model_back() -> None:
    with TestClient(create_app(make_settings(admin_api_key="llm-admin"))) as client:
        assert client.get("/admin/status", headers=ADMIN).json()["model"]["device"] == "cpu"
        assert client.post("/admin/model/unload", headers=ADMIN).json()["state"] == "unloaded"
        refused = client.post(CHAT, json=QUESTION)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "model_not_ready"
        assert client.post("/admin/model/load", headers=ADMIN).json()["state"] == "ready"
        answer = client.post(CHAT, json=QUESTION)
        assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"]
