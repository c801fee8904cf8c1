"""``GET /metrics``: the Prometheus metrics every service shares (HTTP, refusals, model, process, GPUs).

Each app keeps its metrics in a ``CollectorRegistry`` of its own (``app.state.metrics.registry``), not in
prometheus_client's global one: tests build many apps in one process, and a service's numbers must stay its own.
The service-specific metrics (``stt_*``, ``llm_*``, ``tts_*``, ``conversation_*``) register in the same registry;
docs/operations.md lists them all with their types and units.

HTTP requests are counted and timed by ``prometheus-fastapi-instrumentator`` per route template (a path no route
matches is not counted, so scanners cannot grow the label set). Its in-progress gauge is not used: in version 8.1 it
registers in the global registry whatever registry it is given (two apps in one process collide), so the requests
in flight are read from the guard's own count (``guard.Admission``), which is also the number that matters here:
model requests being served or waiting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, Info, PlatformCollector, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator import metrics as http_metrics

from .guard import Admission

logger = logging.getLogger(__name__)

HTTP_DURATION_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
"""From a ``/ready`` poll (ms) to a long transcription or reply stream (a minute or two)."""
LATENCY_BUCKETS_S = (0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10)
"""Time to first token / first audio / reply: the range a conversation lives in, finest below a second."""


@dataclass(frozen=True)
class GpuStatus:
    """One NVIDIA GPU as NVML reports it at the moment of the call."""

    index: int
    name: str
    memory_used_bytes: int
    memory_total_bytes: int
    utilization: float
    """Fraction of the last sample period during which a kernel ran, 0 to 1."""


class GpuCollector(Collector):
    """``gpu_memory_used_bytes``, ``gpu_memory_total_bytes`` and ``gpu_utilization_ratio`` per GPU, read from NVML
    (package ``nvidia-ml-py``, module ``pynvml``) at each scrape. ``create`` returns None without a GPU."""

    def __init__(self, nvml: Any) -> None:
        self._nvml = nvml

    @classmethod
    def create(cls) -> GpuCollector | None:
        """A collector when ``pynvml`` imports and NVML finds at least one GPU; None otherwise (CPU machines)."""
        try:
            import pynvml
        except ImportError:
            return None
        try:
            pynvml.nvmlInit()
            if pynvml.nvmlDeviceGetCount() == 0:
                return None
        except pynvml.NVMLError as err:  # no driver, no device
            logger.debug("no GPU metrics: %s", err)
            return None
        return cls(pynvml)

    def gpus(self) -> list[GpuStatus]:
        """Every GPU's memory and utilisation now."""
        nvml = self._nvml
        found = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            name = nvml.nvmlDeviceGetName(handle)
            found.append(
                GpuStatus(
                    index=index,
                    name=name.decode() if isinstance(name, bytes) else str(name),
                    memory_used_bytes=int(memory.used),
                    memory_total_bytes=int(memory.total),
                    utilization=nvml.nvmlDeviceGetUtilizationRates(handle).gpu / 100,
                )
            )
        return found

    def collect(self) -> Iterator[Metric]:
        labels = ["gpu", "name"]
        used = GaugeMetricFamily("gpu_memory_used_bytes", "GPU memory in use (all processes).", labels=labels)
        total = GaugeMetricFamily("gpu_memory_total_bytes", "GPU memory in all.", labels=labels)
        busy = GaugeMetricFamily("gpu_utilization_ratio", "Fraction of time a kernel ran, 0 to 1.", labels=labels)
        try:
            gpus = self.gpus()
        except self._nvml.NVMLError as err:  # a GPU lost mid-run: the scrape goes on without it
            logger.warning("GPU metrics unavailable: %s", err)
            gpus = []
        for gpu in gpus:
            label_values = [str(gpu.index), gpu.name]
            used.add_metric(label_values, gpu.memory_used_bytes)
            total.add_metric(label_values, gpu.memory_total_bytes)
            busy.add_metric(label_values, gpu.utilization)
        yield from (used, total, busy)


class ServiceMetrics:
    """The metrics every service exposes, kept on ``app.state.metrics``; ``registry`` takes the service's own.

    - ``http_requests_total{handler,method,status}``, ``http_request_duration_seconds{handler,method}``
      (``instrument``), ``http_requests_in_flight`` (model requests in the service, from ``Admission``),
      ``http_requests_refused_total{reason}`` (``api_key``, ``rate_limit``, ``queue_full``; counted by the guard);
    - ``model_loaded`` (0/1), ``model_info{model,owned_by,device}``, ``model_load_seconds`` (``mark_loaded``);
    - ``process_*`` (RSS, CPU seconds, open files; Linux ``/proc``) and ``python_info``;
    - ``gpu_*`` when an NVIDIA GPU is present (``GpuCollector``).
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.process = ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.gpu = GpuCollector.create()
        if self.gpu is not None:
            self.registry.register(self.gpu)
        self.started_at = time.time()
        self.refused = Counter(
            "http_requests_refused",
            "Requests refused by the guard before their route: api_key (401), rate_limit (429), queue_full (503).",
            ["reason"],
            registry=self.registry,
        )
        for reason in ("api_key", "rate_limit", "queue_full"):
            self.refused.labels(reason)  # present at 0 from the start, so rate() sees the first refusal
        self.model_loaded = Gauge(
            "model_loaded", "1 while the model is loaded and warmed up, else 0.", registry=self.registry
        )
        self.model_info = Info("model", "The model loaded last.", registry=self.registry)
        self.model_load_seconds = Gauge(
            "model_load_seconds", "Seconds the last load and warm-up of the model took.", registry=self.registry
        )

    def instrument(self, app: FastAPI, admission: Admission) -> None:
        """Count and time ``app``'s HTTP requests, gauge ``admission``'s requests in flight, add ``GET /metrics``."""
        in_flight = Gauge(
            "http_requests_in_flight",
            "Model requests (POST /v1/...) being served or waiting, counted until their last byte.",
            registry=self.registry,
        )
        in_flight.set_function(lambda: admission.in_flight)
        instrumentator = Instrumentator(
            should_group_status_codes=False,
            should_ignore_untemplated=True,
            excluded_handlers=["^/metrics$"],
            registry=self.registry,
        )
        instrumentator.add(
            http_metrics.requests(registry=self.registry),
            http_metrics.latency(should_include_status=False, buckets=HTTP_DURATION_BUCKETS_S, registry=self.registry),
        )
        instrumentator.instrument(app).expose(
            app,
            tags=["health"],
            summary="Prometheus metrics (text format); open like /health",
            response_class=PlainTextResponse,  # documents text/plain, the type the route answers with
            response_description="Prometheus' text exposition format",
        )

    def mark_loaded(self, model_id: str, owned_by: str, device: str, load_s: float) -> None:
        self.model_info.info({"model": model_id, "owned_by": owned_by, "device": device})
        self.model_load_seconds.set(load_s)
        self.model_loaded.set(1)

    def mark_unloaded(self) -> None:
        self.model_loaded.set(0)

    def rss_bytes(self) -> float | None:
        """The process's resident memory now, as ``process_resident_memory_bytes`` shows it (None off Linux)."""
        for family in self.process.collect():
            if family.name == "process_resident_memory_bytes":
                return float(family.samples[0].value)
        return None
