"""The Admin page, driven by AppTest against the real services (started as processes).

The page opens on Conversation (the default page of ``frontend/app.py``'s navigation) and is switched to Admin, as a
user would. The Unload and Load buttons need services started with an admin key: the STT service is started for
that alone with ``STT_ADMIN_API_KEY``; the shared LLM and TTS services have none, so their admin routes answer 403.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from voice_agent.config import get_settings

APP = Path(__file__).resolve().parents[2] / "frontend" / "app.py"
ADMIN_PAGE = "admin_page.py"  # relative to app.py
NOTHING_LISTENS = "http://127.0.0.1:9"
ADMIN_KEY = "admin-test-key"
OpenAdmin = Callable[[dict[str, str]], AppTest]


@pytest.fixture
def open_admin(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAdmin]:
    """``open_admin(env)``: the page with ``env`` (push-to-talk, so no WebRTC stream), switched to Admin."""

    def open_page(env: dict[str, str]) -> AppTest:
        monkeypatch.setenv("FRONTEND_MODE", "push-to-talk")
        for key in ("FRONTEND_ADMIN_API_KEY", "FRONTEND_REALTIME_URL"):
            monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        st.cache_resource.clear()
        app = AppTest.from_file(str(APP), default_timeout=180)
        app.run()
        assert not app.exception
        assert app.title[0].value.endswith("Voice agent")  # Conversation is the default page
        app.switch_page(ADMIN_PAGE).run()
        assert not app.exception, app.exception
        return app

    yield open_page
    get_settings.cache_clear()
    st.cache_resource.clear()


def card_headers(app: AppTest) -> dict[str, str]:
    """Service title -> its card's header line (``<icon> **STT** · ready · `model```)."""
    headers = {}
    for markdown in app.markdown:
        found = re.match(r"\S+ \*\*(STT|LLM|TTS|Realtime)\*\* · (.*)", markdown.value)
        if found:
            headers[found[1]] = found[2]
    return headers


def state_of(app: AppTest, title: str) -> str:
    return card_headers(app)[title].split(" · ")[0]


def latency_lines(app: AppTest, measure: str) -> list[str]:
    return [markdown.value for markdown in app.markdown if markdown.value.startswith(measure)]


def admin_buttons(app: AppTest) -> list[str]:
    return [button.label for button in app.button if button.label in ("Unload", "Load")]


def test_every_service_has_a_card_and_one_that_is_down_is_shown_down(open_admin: OpenAdmin, running_services) -> None:
    app = open_admin({**running_services.frontend_env(), "FRONTEND_REALTIME_URL": NOTHING_LISTENS})
    assert app.title[0].value.endswith("Admin")
    assert {title: state_of(app, title) for title in card_headers(app)} == {
        "STT": "ready", "LLM": "ready", "TTS": "ready", "Realtime": "down"
    }  # fmt: skip
    assert all("`" in card_headers(app)[title] for title in ("STT", "LLM", "TTS"))  # the model id
    memory = [metric.value for metric in app.metric if metric.label == "Memory (RSS)"]
    assert len(memory) == 3 and all(re.fullmatch(r"\d+ MiB", value) and int(value.split()[0]) > 10 for value in memory)
    assert "FRONTEND_ADMIN_API_KEY" in " ".join(caption.value for caption in app.caption)
    assert not admin_buttons(app)  # no admin key: no buttons
    assert not app.error


def test_latency_is_recent_after_a_request(open_admin: OpenAdmin, running_services, jfk_wav: Path) -> None:
    app = open_admin(running_services.frontend_env())  # this drawing is the first scrape kept
    with jfk_wav.open("rb") as audio:
        answer = httpx.post(
            f"{running_services.stt.url}/v1/audio/transcriptions",
            files={"file": ("jfk.wav", audio, "audio/wav")},
            data={"model": "whisper-1"},
            timeout=120,
        )
    assert answer.status_code == 200
    app.run()
    assert not app.exception
    [duration] = latency_lines(app, "request time, POST /v1/audio/transcriptions")
    assert re.search(r"p50 \*\*\d+ ms\*\* · p95 \*\*\d+ ms\*\* \(requests: 1, last \d+ s\)", duration), duration
    [real_time_factor] = latency_lines(app, "real-time factor")
    assert re.search(r"p50 \*\*0\.\d\d\*\* .*\(transcriptions: 1, last \d+ s\)", real_time_factor), real_time_factor


def test_with_the_admin_key_unload_and_load_change_the_state(
    open_admin: OpenAdmin, running_services, start_service, monkeypatch: pytest.MonkeyPatch
) -> None:
    stt = start_service("stt", STT_ADMIN_API_KEY=ADMIN_KEY)
    env = {**running_services.frontend_env(), "FRONTEND_STT_URL": stt.url, "FRONTEND_ADMIN_API_KEY": ADMIN_KEY}
    app = open_admin(env)
    assert state_of(app, "STT") == "ready"
    assert admin_buttons(app) == ["Unload", "Load"] * 3
    # the shared LLM and TTS services have no admin key: their cards say how to give them one
    captions = " ".join(caption.value for caption in app.caption)
    assert "LLM_ADMIN_API_KEY" in captions and "TTS_ADMIN_API_KEY" in captions
    queue = [metric.value for metric in app.metric if metric.label == "In flight / max queued"]
    assert queue[0] == "0 / 8"  # the STT service's, from /admin/status

    app.button(key="admin-unload-stt").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert state_of(app, "STT") == "unloaded"
    assert "STT" in app.success[0].value and "unloaded" in app.success[0].value
    assert httpx.get(f"{stt.url}/ready").status_code == 503
    assert app.button(key="admin-unload-stt").disabled and not app.button(key="admin-load-stt").disabled

    app.button(key="admin-load-stt").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert state_of(app, "STT") == "ready"
    assert httpx.get(f"{stt.url}/ready").status_code == 200

    # a service that refuses: the message names it and says what it answered
    app.button(key="admin-unload-llm").click().run()
    assert not app.exception
    [error] = app.error
    assert "LLM unload failed" in error.value and "HTTP 403 admin_disabled" in error.value
    assert state_of(app, "LLM") == "ready"

    # a wrong key: 401, said as such
    monkeypatch.setenv("FRONTEND_ADMIN_API_KEY", "not-the-key")
    get_settings.cache_clear()
    app.button(key="admin-unload-stt").click().run()
    [error] = app.error
    assert "STT unload failed" in error.value and "HTTP 401" in error.value
    assert state_of(app, "STT") == "ready"
