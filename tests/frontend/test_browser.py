"""The page in a real browser (Debian's headless Chromium, driven by Playwright) with a microphone fed from a WAV.

Chromium plays ``--use-file-for-fake-audio-capture`` as the microphone, so pressing record and stop sends a real
browser recording (webm/wav from the MediaRecorder path of ``st.audio_input``) through the real services.
Artifacts: a screenshot of the finished turn and the measured time from pressing stop to the first reply audio
playing, in ``artifacts/browser/`` at the repository root.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx2
import numpy as np
import pytest
import soundfile as sf
from playwright.sync_api import Browser, Page, sync_playwright
from scrape import scrape

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "artifacts" / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CLIP = "ask_not_what_your_country_can_do_for_you"
CHROMIUM_FLAGS = [
    "--use-fake-ui-for-media-stream",  # grant the microphone without a prompt
    "--use-fake-device-for-media-stream",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",  # this machine has no network: no update or telemetry attempts
    "--disable-component-update",
]


@pytest.fixture(scope="module")
def microphone_file(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The clip followed by 3 s of silence (Chromium loops the file, the silence keeps the loop out of the take)."""
    samples, rate = sf.read(data_dir / f"{CLIP}.wav", dtype="int16")
    path = tmp_path_factory.mktemp("mic") / "microphone.wav"
    sf.write(path, np.concatenate([samples, np.zeros(3 * rate, dtype="int16")]), rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def browser(microphone_file: Path) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium (or set CHROMIUM=...)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={microphone_file}"]
        )
        yield launched
        launched.close()


def record(page: Page, seconds: float) -> float:
    """Press record, speak (the fake microphone plays the clip), press stop; return the page clock at stop (ms)."""
    page.get_by_role("button", name="Record").click()
    time.sleep(seconds)
    page.get_by_role("button", name="Stop recording").click()
    return float(page.evaluate("Date.now()"))


def test_record_hear_the_reply_and_see_each_stage(
    browser: Browser, running_page: str, page_metrics_port: int, data_dir: Path, start_page: Callable[..., str]
) -> None:
    """... and a reload of the browser page, then a new page process, show the stored conversation again; once a
    browser opened the page, the page process serves its engine metrics for Prometheus."""
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(running_page)
    page.get_by_text("Voice agent").first.wait_for()
    clip_s = sf.info(str(data_dir / f"{CLIP}.wav")).duration
    stopped_at = record(page, clip_s + 0.6)

    # the transcript of what the microphone said appears as the user's message
    user = page.locator("[data-testid=stChatMessage]").first
    user.get_by_text(re.compile("ask not what your country", re.IGNORECASE)).wait_for(timeout=120_000)

    # the first sentence starts playing as soon as it is synthesised
    page.wait_for_function("window.__voiceAgent && window.__voiceAgent.played.length > 0", timeout=120_000)
    playback = page.evaluate("window.__voiceAgent")
    assert playback.get("blocked") is None, f"the browser refused to play: {playback.get('blocked')}"
    first_audio_ms = playback["played"][0]["at"] - stopped_at

    # the finished turn: reply text, the reply's audio element with real audio, the stage timings
    assistant = page.locator("[data-testid=stChatMessage]").nth(1)
    assistant.locator("audio").wait_for(state="attached", timeout=120_000)
    finished_at = float(page.evaluate("Date.now()"))
    # the timing bar is drawn after the audio element: wait for it rather than race the page's next delta
    assistant.get_by_text(re.compile("voice-to-voice")).first.wait_for(timeout=30_000)
    reply = assistant.inner_text()
    assert "voice-to-voice" in reply
    reply_text = assistant.locator("[data-testid=stMarkdownContainer]").first.inner_text().strip()
    assert reply_text, "no reply text"
    duration_s = assistant.locator("audio").evaluate(
        "a => new Promise(done => a.readyState >= 1 ? done(a.duration)"
        " : a.addEventListener('loadedmetadata', () => done(a.duration)))"
    )
    assert duration_s > 0.5, f"the reply audio lasts {duration_s} s"
    # a recording is processed once: the recorder is empty and ready for the next turn
    page.get_by_role("button", name="Record").wait_for(state="visible", timeout=30_000)
    played = page.evaluate("window.__voiceAgent.played")
    sentences = len(re.findall(r"[.!?](\s|$)", reply_text))
    if sentences > 1:  # the first sentence was heard before the whole reply had been synthesised
        assert played[0]["at"] < finished_at

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "finished_turn.png"), full_page=True)
    report = {
        "stop_to_first_audio_ms": round(first_audio_ms),
        "reply": reply_text,
        "reply_audio_s": round(duration_s, 2),
        "sentences_played": len(played),
    }
    (ARTIFACTS / "first_audio.json").write_text(json.dumps(report, indent=2))
    print(f"\nbrowser: stop -> first reply audio {first_audio_ms:.0f} ms; screenshot {ARTIFACTS / 'finished_turn.png'}")

    # the turn is stored and its conversation's id is in the address: a reload shows the conversation again
    page.wait_for_url(re.compile(r"[?&]conversation="), timeout=30_000)
    page.reload()
    page.get_by_text("Voice agent").first.wait_for()
    reloaded = page.locator("[data-testid=stChatMessage]")
    reloaded.first.get_by_text(re.compile("ask not what your country", re.IGNORECASE)).wait_for(timeout=60_000)
    assert reply_text[:40] in reloaded.nth(1).inner_text()
    page.close()

    # a new page process (the page restarted) opens the same address with the same conversation
    address = urlparse(page.url)
    again = browser.new_page(viewport={"width": 1280, "height": 1000})
    again.goto(f"{start_page()}{address.path}?{address.query}")
    messages = again.locator("[data-testid=stChatMessage]")
    messages.first.get_by_text(re.compile("ask not what your country", re.IGNORECASE)).wait_for(timeout=60_000)
    assert reply_text[:40] in messages.nth(1).inner_text()
    again.close()
    metrics = scrape(httpx2.Client(base_url=f"http://127.0.0.1:{page_metrics_port}", timeout=10))
    assert metrics.type_of("conversation_turns") == "counter"  # a push-to-talk turn is not the engine's: 0 here
    assert metrics.value("process_resident_memory_bytes") > 50_000_000
