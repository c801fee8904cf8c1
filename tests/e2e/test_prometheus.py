"""A real Prometheus (Debian's ``prometheus`` package, which ``make test`` installs) scrapes the three services,
started as processes: every target is up, and the counters rise after one spoken turn through the pipeline."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx2
import pytest
import yaml

from bench.processes import free_port
from voice_agent.config import FrontendSettings
from voice_agent.pipeline import Pipeline, TurnOptions

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
SCRAPE_INTERVAL_S = 1


@pytest.fixture(scope="module")
def prometheus(running_services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx2.Client]:  # type: ignore[no-untyped-def]
    """Prometheus on a free loopback port scraping stt, llm and tts every second; yields a client of its HTTP API."""
    assert Path(PROMETHEUS).exists(), "Debian's prometheus package is missing: `make test` installs it"
    workdir = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": f"{SCRAPE_INTERVAL_S}s", "scrape_timeout": f"{SCRAPE_INTERVAL_S}s"},
        "scrape_configs": [
            {"job_name": name, "static_configs": [{"targets": [urlparse(getattr(running_services, name).url).netloc]}]}
            for name in ("stt", "llm", "tts")
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = (workdir / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    client = httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (workdir / "prometheus.log").read_text()[-3000:]
            try:
                if client.get("/-/ready").status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            assert time.monotonic() < deadline, "Prometheus not ready after 60 s"
            time.sleep(0.2)
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(10)
        log.close()


def query(prometheus: httpx2.Client, promql: str) -> float:
    """The value of an instant query that yields one sample (0 when it yields none)."""
    body = prometheus.get("/api/v1/query", params={"query": promql}).json()
    assert body["status"] == "success", body
    result = body["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def wait_for(condition, what: str, timeout_s: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout_s:.0f} s"
        time.sleep(0.25)


def test_prometheus_scrapes_every_service_and_sees_a_turns_tokens_rise(
    prometheus: httpx2.Client, running_services, jfk_wav: Path
) -> None:  # type: ignore[no-untyped-def]
    def targets_up() -> bool:
        targets = prometheus.get("/api/v1/targets").json()["data"]["activeTargets"]
        return sorted(t["labels"]["job"] for t in targets if t["health"] == "up") == ["llm", "stt", "tts"]

    wait_for(targets_up, "every target up")
    assert query(prometheus, 'sum(model_loaded{job=~"stt|llm|tts"})') == 3
    wait_for(lambda: query(prometheus, "count(llm_completion_tokens_total)") == 1, "the token counter scraped")
    tokens = "sum(llm_completion_tokens_total)"
    before = {
        tokens: query(prometheus, tokens),
        "sum(stt_audio_seconds_total)": query(prometheus, "sum(stt_audio_seconds_total)"),
        "sum(tts_audio_seconds_total)": query(prometheus, "sum(tts_audio_seconds_total)"),
    }

    urls = {key.removeprefix("FRONTEND_").lower(): value for key, value in running_services.frontend_env().items()}
    pipeline = Pipeline.from_settings(FrontendSettings(**urls))
    try:
        result = pipeline.run_turn([], TurnOptions(temperature=0.0, max_tokens=40), audio=jfk_wav.read_bytes())
    finally:
        pipeline.close()
    assert result.reply

    for promql, value in before.items():
        wait_for(lambda promql=promql, value=value: query(prometheus, promql) > value, f"{promql} rising")
    assert query(prometheus, "sum(stt_audio_seconds_total)") - before["sum(stt_audio_seconds_total)"] == 11.0
    p50 = query(prometheus, "histogram_quantile(0.5, sum by (le) (llm_time_to_first_token_seconds_bucket))")
    assert 0 < p50 < 10  # the quantile over the service's own histogram is computable and plausible
