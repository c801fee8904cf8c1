"""The services as an operator sees them: state, model, memory, recent latency; unloading and loading their models.

For each service (STT, LLM, TTS, and the Realtime service when ``FRONTEND_REALTIME_URL`` is set) ``AdminClient.report``
reads ``GET /ready`` (the state), ``GET /metrics`` (Prometheus text, parsed with prometheus_client) and, when an admin
key is configured, ``GET /admin/status``; ``AdminClient.unload`` and ``load`` call ``POST /admin/model/unload`` and
``/admin/model/load``. The contract (metric names, the status JSON, status codes) is docs/operations.md. A service
that is down is reported as ``down``, never raised; only the two actions raise (``AdminActionError``).

Latency comes from the services' histograms: "recent" is the difference of the bucket counts between this scrape and
an earlier one kept in memory (``ScrapeHistory``), its quantiles interpolated inside buckets as Prometheus does
(``histogram_quantile``).

HTTP goes through httpx2, the transport the ``openai`` client of ``voice_agent.clients`` is built on and already in
the page's lock: the admin routes are not OpenAI routes, so the ``openai`` client has nothing to offer here.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, get_args

import httpx2
from prometheus_client.parser import text_string_to_metric_families

from .config import FrontendSettings

State = Literal["ready", "loading", "downloading", "unloaded", "failed", "down"]
"""What ``/ready`` says (``status``), or ``down`` when the service does not answer it."""
STATES: tuple[str, ...] = get_args(State)

Action = Literal["unload", "load"]
ActionFailureKind = Literal[
    "unauthorized", "disabled", "conflict", "server_error", "rejected", "unreachable", "timeout"
]

RECENT_WINDOW_S = 300.0
"""How far back "recent" latency looks: the bucket counts now minus those of the oldest scrape kept within it."""
PROBE_TIMEOUT_S = 2.0
"""Timeout of each read (``/ready``, ``/metrics``, ``/admin/status``), connect included (s)."""


# ----- what is measured --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyMeasure:
    """One histogram of a service that the Admin page summarises as p50 / p95.

    ``labels`` select its series (all series matching them are added up); ``unit`` is ``s`` (seconds) or ``ratio``;
    ``description`` says what one observation measures, ``counted`` what one observation is (``requests``, ...).
    """

    metric: str
    description: str
    unit: Literal["s", "ratio"]
    counted: str
    labels: tuple[tuple[str, str], ...] = ()


def request_duration(route: str) -> LatencyMeasure:
    """``http_request_duration_seconds`` of ``POST <route>``: arrival -> last byte of the response (streams too)."""
    return LatencyMeasure(
        "http_request_duration_seconds",
        f"request time, POST {route}",
        "s",
        "requests",
        (("handler", route), ("method", "POST")),
    )


SERVICE_TITLES = {"stt": "STT", "llm": "LLM", "tts": "TTS", "realtime": "Realtime"}
SERVICE_MEASURES: dict[str, tuple[LatencyMeasure, ...]] = {
    "stt": (
        request_duration("/v1/audio/transcriptions"),
        LatencyMeasure("stt_real_time_factor", "real-time factor (processing / audio)", "ratio", "transcriptions"),
    ),
    "llm": (
        request_duration("/v1/chat/completions"),
        LatencyMeasure("llm_time_to_first_token_seconds", "time to first token", "s", "completions"),
    ),
    "tts": (
        request_duration("/v1/audio/speech"),
        LatencyMeasure("tts_time_to_first_audio_seconds", "time to first audio", "s", "syntheses"),
    ),
    "realtime": (
        request_duration("/v1/realtime/calls"),
        LatencyMeasure("conversation_end_of_speech_to_audio_seconds", "end of speech to first audio", "s", "turns"),
    ),
}


@dataclass(frozen=True)
class Service:
    """One service the Admin page watches: ``name`` (stt, llm, tts, realtime), its ``base_url`` (no ``/v1``)."""

    name: str
    base_url: str

    @property
    def title(self) -> str:
        return SERVICE_TITLES[self.name]

    @property
    def admin_key_variable(self) -> str:
        """The variable that gives this service its admin key, e.g. ``STT_ADMIN_API_KEY``."""
        return f"{self.name.upper()}_ADMIN_API_KEY"

    @property
    def measures(self) -> tuple[LatencyMeasure, ...]:
        return SERVICE_MEASURES[self.name]


def services_from_settings(settings: FrontendSettings) -> list[Service]:
    """STT, LLM and TTS from ``FRONTEND_*_URL``, then the Realtime service when ``FRONTEND_REALTIME_URL`` is set."""
    urls = {"stt": settings.stt_url, "llm": settings.llm_url, "tts": settings.tts_url}
    if settings.realtime_url:
        urls["realtime"] = settings.realtime_url
    return [Service(name, url.rstrip("/")) for name, url in urls.items()]


# ----- histograms ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Histogram:
    """A Prometheus histogram's buckets: ``upper_bounds`` ascending in the metric's unit, the last ``inf``;
    ``cumulative_counts[i]`` the observations at most ``upper_bounds[i]`` (so the last is the total)."""

    upper_bounds: tuple[float, ...]
    cumulative_counts: tuple[float, ...]

    @property
    def count(self) -> float:
        """Observations in all."""
        return self.cumulative_counts[-1] if self.cumulative_counts else 0.0

    def since(self, earlier: Histogram) -> Histogram | None:
        """The observations made after ``earlier`` was scraped: the counts' difference, bucket by bucket.

        None when it cannot be told: other buckets, or a count that went down (the service restarted and its
        counters began again from zero).
        """
        if earlier.upper_bounds != self.upper_bounds:
            return None
        delta = tuple(
            now - before for now, before in zip(self.cumulative_counts, earlier.cumulative_counts, strict=True)
        )
        if any(count < 0 for count in delta):
            return None
        return Histogram(self.upper_bounds, delta)


def histogram_quantile(q: float, histogram: Histogram) -> float | None:
    """The ``q``-quantile (0 <= q <= 1) of the observations counted in ``histogram``, in the histogram's unit.

    Mirrors PromQL's ``histogram_quantile`` (``bucketQuantile`` in prometheus/promql/quantile.go), so the page shows
    what a Grafana panel over the same window would: the rank ``q * count`` falls in the first bucket whose cumulative
    count reaches it, and the answer is interpolated linearly between that bucket's lower and upper bound, as if its
    observations were spread evenly inside it. The lowest bucket starts at 0 (when its upper bound is positive); a
    rank in the ``+Inf`` bucket answers the highest finite bound; counts that go down are raised to the running
    maximum first. Returns None where PromQL answers NaN: no observations, fewer than two buckets, no ``+Inf`` bucket.

    Client libraries, prometheus_client included, only record and expose histograms: quantiles are the query
    engine's work, on a Prometheus server. The page reads the services directly, with no server in between, so it
    does the same arithmetic itself. Raises ValueError for ``q`` outside [0, 1].
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"a quantile is between 0 and 1, not {q}")
    bounds = histogram.upper_bounds
    if len(bounds) < 2 or not math.isinf(bounds[-1]):
        return None
    counts = list(histogram.cumulative_counts)
    for index in range(1, len(counts)):
        counts[index] = max(counts[index], counts[index - 1])
    observations = counts[-1]
    if observations <= 0:
        return None
    rank = q * observations
    bucket = bisect.bisect_left(counts, rank)  # the first bucket whose cumulative count reaches the rank
    if bucket == len(counts) - 1:
        return bounds[-2]
    if bucket == 0 and bounds[0] <= 0:
        return bounds[0]
    lower, upper, in_bucket = 0.0, bounds[bucket], counts[bucket]
    if bucket > 0:
        lower = bounds[bucket - 1]
        in_bucket -= counts[bucket - 1]
        rank -= counts[bucket - 1]
    if in_bucket == 0:  # only for q = 0 with an empty first bucket
        return lower
    return lower + (upper - lower) * (rank / in_bucket)


# ----- one scrape of /metrics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class GpuUsage:
    """One GPU as a service reports it: memory in bytes, ``utilization`` the fraction of time a kernel ran (0-1)."""

    index: int
    name: str
    memory_used_bytes: float
    memory_total_bytes: float
    utilization: float | None = None


@dataclass(frozen=True)
class MetricsSnapshot:
    """What the Admin page uses of one ``GET /metrics``; None where the service does not expose the metric.

    ``rss_bytes`` from ``process_resident_memory_bytes``; ``model_loaded`` from ``model_loaded`` (0/1); ``model_id``
    from ``model_info{model}``; ``started_at`` (Unix time, s) from ``process_start_time_seconds``; ``in_flight`` the
    model requests being served or waiting; ``gpus`` from ``gpu_*``; ``histograms`` one per measure asked for that
    the service exposes.
    """

    rss_bytes: float | None = None
    model_loaded: bool | None = None
    model_id: str | None = None
    started_at: float | None = None
    in_flight: float | None = None
    gpus: tuple[GpuUsage, ...] = ()
    histograms: Mapping[LatencyMeasure, Histogram] = field(default_factory=dict)


def _histogram(samples: Iterable[Any], labels: tuple[tuple[str, str], ...]) -> Histogram | None:
    """The ``_bucket`` samples of one family whose labels include ``labels``, every such series added up."""
    by_bound: dict[float, float] = {}
    for sample in samples:
        if sample.name.endswith("_bucket") and all(sample.labels.get(k) == v for k, v in labels):
            bound = float(sample.labels["le"])  # "+Inf" reads as inf
            by_bound[bound] = by_bound.get(bound, 0.0) + float(sample.value)
    if not by_bound:
        return None
    bounds = tuple(sorted(by_bound))
    return Histogram(bounds, tuple(by_bound[bound] for bound in bounds))


def parse_metrics(text: str, measures: Sequence[LatencyMeasure] = ()) -> MetricsSnapshot:
    """Read a Prometheus text exposition (``GET /metrics``) with prometheus_client's parser.

    ``measures`` are the histograms wanted; one whose metric is absent from the text is left out of ``histograms``,
    one whose metric has no series with its labels yet is an empty histogram. Raises ValueError when the text is not
    in the exposition format.
    """
    families = {family.name: family for family in text_string_to_metric_families(text)}

    def value(name: str) -> float | None:
        family = families.get(name)
        return float(family.samples[0].value) if family is not None and family.samples else None

    info = families.get("model_info")
    model_id = next((s.labels.get("model") for s in info.samples if s.labels.get("model")), None) if info else None
    loaded = value("model_loaded")
    in_flight = value("http_requests_in_flight")
    histograms: dict[LatencyMeasure, Histogram] = {}
    for measure in measures:
        family = families.get(measure.metric)
        if family is not None:  # a route that served no request yet has no series: nothing counted
            histograms[measure] = _histogram(family.samples, measure.labels) or Histogram((), ())
    return MetricsSnapshot(
        rss_bytes=value("process_resident_memory_bytes"),
        model_loaded=None if loaded is None else loaded >= 1,
        model_id=model_id,
        started_at=value("process_start_time_seconds"),
        in_flight=in_flight,
        gpus=_gpus_from_metrics(families),
        histograms=histograms,
    )


def _gpus_from_metrics(families: Mapping[str, Any]) -> tuple[GpuUsage, ...]:
    """``gpu_memory_used_bytes``, ``gpu_memory_total_bytes``, ``gpu_utilization_ratio``, by their ``gpu`` label."""

    def per_gpu(name: str) -> dict[str, Any]:
        family = families.get(name)
        return {sample.labels.get("gpu", ""): sample for sample in family.samples} if family is not None else {}

    used, total, busy = (
        per_gpu(name) for name in ("gpu_memory_used_bytes", "gpu_memory_total_bytes", "gpu_utilization_ratio")
    )
    return tuple(
        GpuUsage(
            index=int(gpu) if gpu.isdigit() else position,
            name=sample.labels.get("name", ""),
            memory_used_bytes=float(sample.value),
            memory_total_bytes=float(total[gpu].value) if gpu in total else 0.0,
            utilization=float(busy[gpu].value) if gpu in busy else None,
        )
        for position, (gpu, sample) in enumerate(sorted(used.items()))
    )


# ----- recent latency -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencySummary:
    """p50 and p95 of one measure, in its unit (s or ratio), over ``observations`` observations.

    ``window_s`` is how far back they reach (the age of the earlier scrape they are counted from); None means since
    the service started (no earlier scrape kept, no observation since it, or the service restarted).
    """

    measure: LatencyMeasure
    p50: float | None
    p95: float | None
    observations: int
    window_s: float | None


class ScrapeHistory:
    """Each service's scrapes of the last ``window_s`` seconds, kept in memory to turn cumulative histograms into
    recent ones.

    A histogram counts every observation since the service started; the difference of its bucket counts between two
    scrapes counts those in between. ``summarise`` takes the newest scrape against the oldest one kept within the
    window (scrapes older than it are dropped), so with the page refreshing every few seconds "recent" means about
    the last ``window_s`` seconds, like PromQL's ``histogram_quantile(q, rate(...[5m]))``, rather than the few
    requests of one refresh interval. Without an earlier scrape, without an observation since it, or after a restart,
    it falls back to the counts since the service started. One history serves every browser session of the page
    process (thread-safe); ``clock`` is monotonic seconds.
    """

    def __init__(
        self, window_s: float = RECENT_WINDOW_S, *, max_kept: int = 1000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window_s = window_s
        self._clock = clock
        self._max_kept = max_kept
        self._scrapes: dict[str, deque[tuple[float, MetricsSnapshot]]] = {}
        self._lock = threading.Lock()

    def summarise(self, service: Service, snapshot: MetricsSnapshot) -> tuple[LatencySummary, ...]:
        """Keep ``snapshot`` as ``service``'s newest scrape and summarise each of its measures the service exposes."""
        now = self._clock()
        with self._lock:
            kept = self._scrapes.setdefault(service.base_url, deque(maxlen=self._max_kept))
            while kept and now - kept[0][0] > self.window_s:
                kept.popleft()
            earlier = kept[0] if kept else None
            kept.append((now, snapshot))
        summaries = []
        for measure in service.measures:
            current = snapshot.histograms.get(measure)
            if current is None:
                continue
            histogram, window_s = current, None
            if earlier is not None:
                before = earlier[1].histograms.get(measure)
                # a series absent or empty then (a route's first request came later) counted nothing then
                recent = current.since(before) if before is not None and before.count > 0 else current
                if recent is not None and recent.count > 0:
                    histogram, window_s = recent, now - earlier[0]
            summaries.append(
                LatencySummary(
                    measure,
                    histogram_quantile(0.5, histogram),
                    histogram_quantile(0.95, histogram),
                    round(histogram.count),
                    window_s,
                )
            )
        return tuple(summaries)


# ----- the admin routes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdminStatus:
    """``GET /admin/status`` (also the answer of unload and load), as docs/operations.md describes it.

    ``load_seconds`` the last load and warm-up (s); ``loaded_at`` when it ended (Unix time, s); ``uptime_s`` of the
    process; ``rss_bytes`` its resident memory; ``gpus`` None without a GPU; ``in_flight`` the model requests being
    served or waiting, ``max_queued`` how many may wait (``<PREFIX>_MAX_QUEUED_REQUESTS``).
    """

    service: str
    state: str
    model_id: str | None = None
    owned_by: str | None = None
    device: str | None = None
    load_seconds: float | None = None
    loaded_at: float | None = None
    uptime_s: float | None = None
    rss_bytes: float | None = None
    gpus: tuple[GpuUsage, ...] | None = None
    in_flight: int | None = None
    max_queued: int | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> AdminStatus:
        """Read the JSON body; missing or null fields become None. Raises ValueError when it is not an object
        with a ``state``."""
        if not isinstance(body, Mapping) or "state" not in body:
            raise ValueError(f"not an admin status: {str(body)[:200]}")
        model = body.get("model") or {}
        memory = body.get("memory") or {}
        queue = body.get("queue") or {}
        gpus = body.get("gpus")
        return cls(
            service=str(body.get("service", "")),
            state=str(body["state"]),
            model_id=model.get("id"),
            owned_by=model.get("owned_by"),
            device=model.get("device"),
            load_seconds=body.get("load_seconds"),
            loaded_at=body.get("loaded_at"),
            uptime_s=body.get("uptime_s"),
            rss_bytes=memory.get("rss_bytes"),
            gpus=None if gpus is None else tuple(_gpu_from_json(n, gpu) for n, gpu in enumerate(gpus)),
            in_flight=queue.get("in_flight"),
            max_queued=queue.get("max_queued"),
        )


def _gpu_from_json(position: int, gpu: Mapping[str, Any]) -> GpuUsage:
    return GpuUsage(
        index=int(gpu.get("index", position)),
        name=str(gpu.get("name", "")),
        memory_used_bytes=float(gpu.get("memory_used_bytes") or 0.0),
        memory_total_bytes=float(gpu.get("memory_total_bytes") or 0.0),
        utilization=gpu.get("utilization"),
    )


class AdminActionError(Exception):
    """``POST /admin/model/unload`` or ``/load`` did not succeed.

    ``service`` and ``action`` say what was asked; ``status_code`` what the service answered (None when it did not
    answer); ``code`` and ``message`` its error (OpenAI's shape); ``kind`` sorts it: ``unauthorized`` (401, a wrong
    admin key), ``disabled`` (403, the service was started without ``<PREFIX>_ADMIN_API_KEY``), ``conflict`` (409,
    e.g. a load or unload under way), ``server_error`` (5xx, e.g. the load failed), ``rejected`` (another answer),
    ``unreachable``, ``timeout``.
    """

    def __init__(
        self,
        service: Service,
        action: Action,
        kind: ActionFailureKind,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
    ) -> None:
        answered = f"HTTP {status_code}{f' {code}' if code else ''}: " if status_code is not None else ""
        super().__init__(f"{service.title} {action} failed at {service.base_url}: {answered}{message}")
        self.service, self.action, self.kind, self.message = service, action, kind, message
        self.status_code, self.code = status_code, code


def _failure_kind(status_code: int) -> ActionFailureKind:
    kinds: dict[int, ActionFailureKind] = {401: "unauthorized", 403: "disabled", 409: "conflict"}
    return kinds.get(status_code, "server_error" if status_code >= 500 else "rejected")


def _error_of(response: httpx2.Response) -> tuple[str | None, str]:
    """``(code, message)`` of an error answer in OpenAI's shape, else ``(None, the start of the body)``."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        return error.get("code"), str(error.get("message") or error)
    return None, response.text[:300] or response.reason_phrase


# ----- what the page shows ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceReport:
    """One service now, from ``/ready``, ``/metrics`` and (with the admin key) ``/admin/status``.

    ``state`` and ``detail`` (why it is not ready, or why it is down) and ``progress`` (of a download, 0-1) come from
    ``/ready``; the rest from ``/admin/status`` when it answered, else from ``/metrics``: ``rss_bytes`` resident
    memory, ``uptime_s``, ``in_flight`` and ``max_queued`` model requests (``max_queued`` only from the status),
    ``gpus``. ``latencies`` one summary per measure the service exposes; ``problems`` what could not be read, in words.
    """

    service: Service
    state: State
    model_id: str | None = None
    detail: str | None = None
    progress: float | None = None
    model_loaded: bool | None = None
    rss_bytes: float | None = None
    uptime_s: float | None = None
    in_flight: int | None = None
    max_queued: int | None = None
    latencies: tuple[LatencySummary, ...] = ()
    gpus: tuple[GpuUsage, ...] = ()
    admin: AdminStatus | None = None
    problems: tuple[str, ...] = ()


class AdminClient:
    """Reads and drives the services' ``/ready``, ``/metrics`` and ``/admin`` routes over one HTTP client.

    ``admin_key`` is sent as ``Authorization: Bearer`` to the admin routes only (None: they are not called);
    ``probe_timeout_s`` bounds each read, ``action_timeout_s`` an unload or load (a load answers once the model is
    loaded and warmed up). ``history`` keeps earlier scrapes for recent latency; share one between clients.
    """

    def __init__(
        self,
        *,
        admin_key: str | None = None,
        history: ScrapeHistory | None = None,
        probe_timeout_s: float = PROBE_TIMEOUT_S,
        action_timeout_s: float = 120.0,
        http_client: httpx2.Client | None = None,
    ) -> None:
        self.admin_key = admin_key
        self.history = history if history is not None else ScrapeHistory()
        self.probe_timeout_s = probe_timeout_s
        self.action_timeout_s = action_timeout_s
        self._http = http_client if http_client is not None else httpx2.Client()

    @classmethod
    def from_settings(cls, settings: FrontendSettings, history: ScrapeHistory | None = None) -> AdminClient:
        """The admin key from ``FRONTEND_ADMIN_API_KEY``; an action waits up to ``FRONTEND_READ_TIMEOUT_S``."""
        key = settings.admin_api_key.get_secret_value() if settings.admin_api_key else None
        return cls(admin_key=key or None, history=history, action_timeout_s=settings.read_timeout_s)

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"} if self.admin_key else {}

    def report(self, service: Service) -> ServiceReport:
        """The service now; never raises: a service that does not answer ``/ready`` is ``down``."""
        try:
            ready = self._http.get(f"{service.base_url}/ready", timeout=self.probe_timeout_s)
        except httpx2.HTTPError as err:
            return ServiceReport(service, "down", detail=f"no answer at {service.base_url}/ready ({_describe(err)})")
        body = _json_object(ready)
        state = body.get("status")
        if ready.status_code not in (200, 503) or state not in STATES:
            return ServiceReport(service, "down", detail=f"/ready answered HTTP {ready.status_code}")
        problems: list[str] = []
        metrics = self._metrics(service, problems)
        admin = self._admin_status(service, problems) if self.admin_key else None
        latencies = self.history.summarise(service, metrics) if metrics is not None else ()
        metrics = metrics or MetricsSnapshot()
        started_at = metrics.started_at
        uptime_s = admin.uptime_s if admin and admin.uptime_s is not None else None
        if uptime_s is None and started_at is not None:
            uptime_s = max(0.0, time.time() - started_at)
        in_flight = admin.in_flight if admin and admin.in_flight is not None else metrics.in_flight
        return ServiceReport(
            service,
            state,
            model_id=body.get("model") or (admin.model_id if admin else None) or metrics.model_id,
            detail=body.get("detail"),
            progress=body.get("progress"),
            model_loaded=metrics.model_loaded,
            rss_bytes=admin.rss_bytes if admin and admin.rss_bytes is not None else metrics.rss_bytes,
            uptime_s=uptime_s,
            in_flight=None if in_flight is None else round(in_flight),
            max_queued=admin.max_queued if admin else None,
            latencies=latencies,
            gpus=admin.gpus if admin and admin.gpus is not None else metrics.gpus,
            admin=admin,
            problems=tuple(problems),
        )

    def _metrics(self, service: Service, problems: list[str]) -> MetricsSnapshot | None:
        try:
            response = self._http.get(f"{service.base_url}/metrics", timeout=self.probe_timeout_s)
        except httpx2.HTTPError as err:
            problems.append(f"/metrics: no answer ({_describe(err)})")
            return None
        if response.status_code != 200:
            problems.append(f"/metrics answered HTTP {response.status_code}")
            return None
        try:
            return parse_metrics(response.text, service.measures)
        except ValueError as err:
            problems.append(f"/metrics is not Prometheus text ({err})")
            return None

    def _admin_status(self, service: Service, problems: list[str]) -> AdminStatus | None:
        try:
            response = self._http.get(
                f"{service.base_url}/admin/status", headers=self._headers(), timeout=self.probe_timeout_s
            )
        except httpx2.HTTPError as err:
            problems.append(f"/admin/status: no answer ({_describe(err)})")
            return None
        if response.status_code != 200:
            _, message = _error_of(response)
            hint = {
                401: "the admin key was refused: FRONTEND_ADMIN_API_KEY differs from the service's",
                403: f"the service has no admin key: start it with {service.admin_key_variable}",
            }.get(response.status_code, message)
            problems.append(f"/admin/status answered HTTP {response.status_code}: {hint}")
            return None
        try:
            return AdminStatus.from_json(response.json())
        except ValueError as err:
            problems.append(f"/admin/status: {err}")
            return None

    def unload(self, service: Service) -> AdminStatus:
        """``POST /admin/model/unload``: the service waits for the requests using its model, frees it, answers its
        status (``unloaded``). Raises AdminActionError."""
        return self._act(service, "unload")

    def load(self, service: Service) -> AdminStatus:
        """``POST /admin/model/load``: the service loads and warms its model up, answers its status once ready
        (waits up to ``action_timeout_s``). Raises AdminActionError."""
        return self._act(service, "load")

    def _act(self, service: Service, action: Action) -> AdminStatus:
        if not self.admin_key:
            raise AdminActionError(service, action, "disabled", "no admin key: set FRONTEND_ADMIN_API_KEY")
        timeout = httpx2.Timeout(self.action_timeout_s, connect=self.probe_timeout_s)
        try:
            response = self._http.post(
                f"{service.base_url}/admin/model/{action}", headers=self._headers(), timeout=timeout
            )
        except httpx2.TimeoutException as err:
            raise AdminActionError(
                service, action, "timeout", f"no answer in {self.action_timeout_s:.0f} s ({type(err).__name__})"
            ) from err
        except httpx2.HTTPError as err:
            raise AdminActionError(service, action, "unreachable", f"cannot connect ({err})") from err
        if response.status_code != 200:
            code, message = _error_of(response)
            raise AdminActionError(
                service,
                action,
                _failure_kind(response.status_code),
                message,
                status_code=response.status_code,
                code=code,
            )
        try:
            return AdminStatus.from_json(response.json())
        except ValueError as err:
            raise AdminActionError(
                service, action, "rejected", f"unexpected answer: {err}", status_code=response.status_code
            ) from err


def _describe(err: Exception) -> str:
    return str(err) or type(err).__name__


def _json_object(response: httpx2.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
