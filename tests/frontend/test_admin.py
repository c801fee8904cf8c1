"""voice_agent.admin without services: quantiles from buckets, a real /metrics text, recent windows, action errors.

The /metrics texts are written by prometheus_client itself, with the bucket layout the services use; the page with
the real services is tests/frontend/test_admin_page.py.
"""

from __future__ import annotations

import json
import math

import httpx2
import pytest
from prometheus_client import CollectorRegistry, Gauge, Histogram, Info, ProcessCollector, generate_latest

from voice_agent import admin
from voice_agent.admin import (
    SERVICE_MEASURES,
    AdminActionError,
    AdminClient,
    AdminStatus,
    ScrapeHistory,
    Service,
    histogram_quantile,
    parse_metrics,
)

INF = math.inf
HTTP_DURATION_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)  # the services'
STT = Service("stt", "http://stt.test")
TRANSCRIPTIONS, REAL_TIME_FACTOR = SERVICE_MEASURES["stt"]


# ----- histogram_quantile --------------------------------------------------------------------------------------

# 10 observations: 2 at most 0.1, 4 in (0.1, 0.5], 3 in (0.5, 1], 1 above 1
TEN = admin.Histogram((0.1, 0.5, 1.0, INF), (2, 6, 9, 10))


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (0.1, 0.05),  # rank 1 of the 2 in [0, 0.1]: halfway
        (0.5, 0.4),  # rank 5: 3rd of the 4 in (0.1, 0.5]: 0.1 + 0.4 * 3/4
        (0.75, 0.75),  # rank 7.5: 1.5th of the 3 in (0.5, 1]: 0.5 + 0.5 * 1.5/3
        (0.9, 1.0),  # rank 9: the last of (0.5, 1]
        (0.95, 1.0),  # rank 9.5 falls in +Inf: the highest finite bound
        (1.0, 1.0),
    ],
)
def test_quantiles_interpolate_inside_the_bucket_as_prometheus_does(q: float, expected: float) -> None:
    assert histogram_quantile(q, TEN) == pytest.approx(expected)


def test_quantile_edge_cases_answer_none_where_prometheus_answers_nan() -> None:
    assert histogram_quantile(0.5, admin.Histogram((0.1, INF), (0, 0))) is None  # no observations
    assert histogram_quantile(0.5, admin.Histogram((0.1, 0.5), (1, 2))) is None  # no +Inf bucket
    assert histogram_quantile(0.5, admin.Histogram((INF,), (3,))) is None  # one bucket
    # a first bucket with a bound at or below zero is not interpolated from 0
    assert histogram_quantile(0.25, admin.Histogram((-1.0, 0.0, INF), (2, 4, 4))) == -1.0
    # counts that go down are raised to the running maximum first: (2, 2, 4, 4), rank 3 is the 1st of 2 in (0.5, 1]
    assert histogram_quantile(0.75, admin.Histogram((0.1, 0.5, 1.0, INF), (2, 1, 4, 4))) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="between 0 and 1"):
        histogram_quantile(1.5, TEN)


def test_since_counts_what_happened_between_two_scrapes_and_refuses_a_restart() -> None:
    earlier = admin.Histogram((0.1, 0.5, 1.0, INF), (1, 2, 2, 2))
    recent = TEN.since(earlier)
    assert recent == admin.Histogram((0.1, 0.5, 1.0, INF), (1, 4, 7, 8))
    assert TEN.since(admin.Histogram((0.1, 0.5, 1.0, INF), (5, 7, 10, 12))) is None  # counters began again
    assert TEN.since(admin.Histogram((0.2, INF), (0, 0))) is None  # other buckets


# ----- a real /metrics text -----------------------------------------------------------------------------------


def stt_registry() -> tuple[CollectorRegistry, Histogram, Histogram]:
    """The metrics an STT service exposes (docs/operations.md), in a registry of their own."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    duration = Histogram(
        "http_request_duration_seconds",
        "Request arrival -> last byte.",
        ["handler", "method"],
        buckets=HTTP_DURATION_BUCKETS_S,
        registry=registry,
    )
    real_time_factor = Histogram(
        "stt_real_time_factor", "Processing / audio.", buckets=(0.05, 0.1, 0.2, 0.5, 1, 2), registry=registry
    )
    Gauge("model_loaded", "1 while loaded.", registry=registry).set(1)
    Info("model", "The model.", registry=registry).info({"model": "tiny.en", "owned_by": "openai", "device": "cpu"})
    Gauge("http_requests_in_flight", "Model requests in the service.", registry=registry).set(2)
    used = Gauge("gpu_memory_used_bytes", "GPU memory in use.", ["gpu", "name"], registry=registry)
    total = Gauge("gpu_memory_total_bytes", "GPU memory in all.", ["gpu", "name"], registry=registry)
    busy = Gauge("gpu_utilization_ratio", "Kernel time.", ["gpu", "name"], registry=registry)
    used.labels("0", "NVIDIA L4").set(3 * 1024**3)
    total.labels("0", "NVIDIA L4").set(24 * 1024**3)
    busy.labels("0", "NVIDIA L4").set(0.25)
    return registry, duration, real_time_factor


def test_a_real_metrics_text_gives_memory_model_queue_gpus_and_the_histograms_asked_for() -> None:
    registry, duration, real_time_factor = stt_registry()
    transcriptions = duration.labels("/v1/audio/transcriptions", "POST")
    for seconds in (0.12, 0.2, 0.3, 0.4, 0.7):
        transcriptions.observe(seconds)
    for _ in range(50):
        duration.labels("/ready", "GET").observe(0.001)  # another route: not counted
    real_time_factor.observe(0.08)

    snapshot = parse_metrics(generate_latest(registry).decode(), SERVICE_MEASURES["stt"])

    assert snapshot.rss_bytes is not None and snapshot.rss_bytes > 1024**2  # this test process: megabytes at least
    assert snapshot.started_at is not None and snapshot.started_at > 1.6e9
    assert snapshot.model_loaded is True and snapshot.model_id == "tiny.en"
    assert snapshot.in_flight == 2
    [gpu] = snapshot.gpus
    assert (gpu.index, gpu.name, gpu.utilization) == (0, "NVIDIA L4", 0.25)
    assert gpu.memory_used_bytes / gpu.memory_total_bytes == pytest.approx(0.125)
    http = snapshot.histograms[TRANSCRIPTIONS]
    assert http.upper_bounds == (*map(float, HTTP_DURATION_BUCKETS_S), INF)
    assert http.count == 5
    # 2 in (0.1, 0.25], 2 in (0.25, 0.5], 1 in (0.5, 1]: rank 2.5 is the 0.5th of the 2 in (0.25, 0.5]
    assert histogram_quantile(0.5, http) == pytest.approx(0.25 + 0.25 * 0.5 / 2)
    assert histogram_quantile(0.95, http) == pytest.approx(0.5 + 0.5 * 0.75)  # rank 4.75: 0.75th of (0.5, 1]
    assert snapshot.histograms[REAL_TIME_FACTOR].count == 1


def test_a_service_without_some_metrics_leaves_them_out() -> None:
    registry = CollectorRegistry()
    Gauge("model_loaded", "0 after an unload.", registry=registry).set(0)
    snapshot = parse_metrics(generate_latest(registry).decode(), SERVICE_MEASURES["stt"])
    assert snapshot.model_loaded is False
    assert snapshot.rss_bytes is None and snapshot.model_id is None and not snapshot.gpus
    assert not snapshot.histograms  # no such metric

    registry, _, _ = stt_registry()  # the histograms exist, no transcription was timed yet
    snapshot = parse_metrics(generate_latest(registry).decode(), SERVICE_MEASURES["stt"])
    assert snapshot.histograms[TRANSCRIPTIONS].count == 0 and snapshot.histograms[REAL_TIME_FACTOR].count == 0


def test_text_that_is_not_prometheus_raises_value_error() -> None:
    with pytest.raises(ValueError):
        parse_metrics('<html lang="en">not metrics</html>\n')


# ----- recent latency ------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_recent_latency_is_the_difference_between_scrapes_within_the_window() -> None:
    registry, duration, _ = stt_registry()
    transcriptions = duration.labels("/v1/audio/transcriptions", "POST")
    clock = Clock()
    history = ScrapeHistory(window_s=60, clock=clock)

    def summary() -> admin.LatencySummary:
        snapshot = parse_metrics(generate_latest(registry).decode(), STT.measures)
        [http, _rtf] = history.summarise(STT, snapshot)
        return http

    for _ in range(4):
        transcriptions.observe(2.0)  # slow, long ago
    first = summary()
    assert first.window_s is None and first.observations == 4  # no earlier scrape: since the service started
    assert first.p50 == pytest.approx(1 + 1.5 * 0.5)  # rank 2 of 4 in (1, 2.5]

    clock.now += 5
    same = summary()
    assert same.window_s is None and same.observations == 4  # nothing new: since start again

    clock.now += 5
    for _ in range(3):
        transcriptions.observe(0.2)  # fast, now
    recent = summary()
    assert recent.window_s == 10 and recent.observations == 3  # against the oldest scrape kept, 10 s ago
    assert recent.p50 == pytest.approx(0.1 + 0.15 * 0.5) and recent.p95 is not None and recent.p95 <= 0.25

    clock.now += 61  # every scrape kept is older than the window: dropped, so since start
    assert summary().window_s is None


def test_a_series_born_after_the_earlier_scrape_is_all_recent() -> None:
    clock = Clock()
    history = ScrapeHistory(clock=clock)
    registry, duration, _ = stt_registry()
    history.summarise(STT, parse_metrics(generate_latest(registry).decode(), STT.measures))  # no request yet
    clock.now += 7
    duration.labels("/v1/audio/transcriptions", "POST").observe(0.3)
    [http, _] = history.summarise(STT, parse_metrics(generate_latest(registry).decode(), STT.measures))
    assert http.window_s == 7 and http.observations == 1


def test_a_restarted_service_falls_back_to_since_start() -> None:
    clock = Clock()
    history = ScrapeHistory(clock=clock)
    registry, duration, _ = stt_registry()
    for _ in range(9):
        duration.labels("/v1/audio/transcriptions", "POST").observe(0.3)
    history.summarise(STT, parse_metrics(generate_latest(registry).decode(), STT.measures))
    clock.now += 5
    restarted, duration, _ = stt_registry()
    duration.labels("/v1/audio/transcriptions", "POST").observe(0.03)
    [http, _] = history.summarise(STT, parse_metrics(generate_latest(restarted).decode(), STT.measures))
    assert http.window_s is None and http.observations == 1


# ----- /admin routes -------------------------------------------------------------------------------------------

STATUS = {
    "service": "stt",
    "state": "ready",
    "model": {"id": "tiny.en", "owned_by": "openai", "device": "cuda"},
    "load_seconds": 1.5,
    "loaded_at": 1_760_000_000,
    "uptime_s": 3725.0,
    "memory": {"rss_bytes": 512 * 1024**2},
    "gpus": [{"index": 0, "name": "NVIDIA L4", "memory_used_bytes": 1024**3, "memory_total_bytes": 24 * 1024**3}],
    "queue": {"in_flight": 1, "max_queued": 8},
}


def test_the_documented_status_shape_is_read() -> None:
    status = AdminStatus.from_json(STATUS)
    assert (status.service, status.state, status.model_id, status.device) == ("stt", "ready", "tiny.en", "cuda")
    assert (status.uptime_s, status.rss_bytes, status.in_flight, status.max_queued) == (3725.0, 512 * 1024**2, 1, 8)
    assert status.gpus is not None and status.gpus[0].memory_total_bytes == 24 * 1024**3
    unloaded = AdminStatus.from_json({**STATUS, "state": "unloaded", "model": None, "gpus": None})
    assert unloaded.model_id is None and unloaded.gpus is None


def error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": "invalid_request_error", "code": code}}).encode()


@pytest.mark.parametrize(
    ("status_code", "code", "kind"),
    [
        (401, "invalid_api_key", "unauthorized"),
        (403, "admin_disabled", "disabled"),
        (409, "conflict", "conflict"),
        (500, "load_failed", "server_error"),
        (503, "model_not_ready", "server_error"),
    ],
)
def test_a_refused_action_raises_an_error_naming_the_service_and_the_answer(
    status_code: int, code: str, kind: str
) -> None:
    seen: list[httpx2.Request] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(status_code, content=error_body(code, "the model is loading"))

    client = AdminClient(admin_key="admin-secret", http_client=httpx2.Client(transport=httpx2.MockTransport(answer)))
    with client, pytest.raises(AdminActionError) as raised:
        client.unload(STT)
    err = raised.value
    assert (err.kind, err.status_code, err.code, err.action) == (kind, status_code, code, "unload")
    assert f"STT unload failed at http://stt.test: HTTP {status_code} {code}: the model is loading" == str(err)
    [request] = seen
    assert request.method == "POST" and str(request.url) == "http://stt.test/admin/model/unload"
    assert request.headers["authorization"] == "Bearer admin-secret"


def test_an_action_succeeds_with_the_status_and_fails_clearly_without_a_key_or_a_service() -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={**STATUS, "state": "unloaded", "model": None})

    with AdminClient(admin_key="k", http_client=httpx2.Client(transport=httpx2.MockTransport(answer))) as client:
        assert client.unload(STT).state == "unloaded"
    with AdminClient() as client, pytest.raises(AdminActionError) as no_key:
        client.load(STT)
    assert no_key.value.kind == "disabled" and "FRONTEND_ADMIN_API_KEY" in str(no_key.value)
    nothing = Service("llm", "http://127.0.0.1:9")
    with AdminClient(admin_key="k") as client, pytest.raises(AdminActionError) as unreachable:
        client.load(nothing)
    assert unreachable.value.kind == "unreachable" and unreachable.value.status_code is None


def test_a_service_that_does_not_answer_is_reported_down_never_raised() -> None:
    with AdminClient(admin_key="k") as client:
        report = client.report(Service("tts", "http://127.0.0.1:9"))
    assert report.state == "down" and report.detail is not None and "http://127.0.0.1:9/ready" in report.detail
