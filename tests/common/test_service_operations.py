"""What every service shares for operators (``service_common.metrics``, ``admin``, ``lifecycle.ModelLife``), on a
stand-in engine: ``/metrics`` counts requests and refusals, the admin routes' key rule, unload/load round trips,
an unload that waits for the requests using the model, GPU metrics from NVML.

The same things on the real models are tested in each service's tier (``test_<service>_operations.py``)."""

from __future__ import annotations

import sys
import threading
import time
import types
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient
from scrape import scrape

from service_common.health import Readiness
from service_common.lifecycle import create_service_app, model_worker, ready_engine
from service_common.settings import ServiceSettings
from service_common.worker import ModelWorker

ADMIN = {"Authorization": "Bearer admin-key"}


class Slow:
    """A stand-in engine whose ``wait`` blocks until the test releases it."""

    owned_by = "tests"
    device = "cpu"

    def __init__(self) -> None:
        self.model_id = "slow"
        self.release = threading.Event()
        self.started = threading.Event()
        self.closed_on: str | None = None

    def wait(self) -> str:
        self.started.set()
        self.release.wait(10)
        return "done"

    def close(self) -> None:
        self.closed_on = threading.current_thread().name


router = APIRouter()
EngineDep = Annotated[Slow, Depends(ready_engine)]
WorkerDep = Annotated[ModelWorker, Depends(model_worker)]


@router.post("/v1/work")
async def work(engine: EngineDep, worker: WorkerDep) -> dict[str, str]:
    return {"result": await worker.run(engine.wait)}


def make_app(*, engine: Slow | None = None, **settings: Any) -> tuple[Any, list[Slow]]:
    loaded: list[Slow] = []

    def load(_: ServiceSettings, __: Readiness) -> Slow:
        model = Slow()
        model.release.set()
        loaded.append(model)
        return model

    app = create_service_app(
        name="slow",
        title="slow",
        description="slow",
        version="0",
        settings=ServiceSettings(**settings),
        load=load,
        warm_up=lambda model, _: None,
        router=router,
        engine=engine,
    )
    return app, loaded


@pytest.fixture
def admin_client() -> Iterator[tuple[TestClient, list[Slow]]]:
    app, loaded = make_app(admin_api_key="admin-key")
    with TestClient(app) as client:
        yield client, loaded


def test_metrics_are_open_and_count_requests_by_route_and_the_guards_refusals() -> None:
    app, _ = make_app(api_key="client-key", max_queued_requests=0)
    with TestClient(app) as client:
        before = scrape(client)  # no key needed, like /health
        assert before.value("model_loaded") == 1
        assert before.value("model_info", model="slow", owned_by="tests", device="cpu") == 1
        assert before.value("process_resident_memory_bytes") > 10_000_000
        assert before.type_of("http_request_duration_seconds") == "histogram"
        assert client.post("/v1/work").status_code == 401
        assert client.post("/v1/work", headers={"Authorization": "Bearer client-key"}).status_code == 200
        client.get("/no/such/route")  # not a route: not counted (scanners cannot grow the label set)
        after = scrape(client)
    assert after.value("http_requests_refused_total", reason="api_key") == 1
    assert after.value("http_requests_total", handler="/v1/work", method="POST", status="401") == 1
    assert after.value("http_requests_total", handler="/v1/work", method="POST", status="200") == 1
    assert after.value("http_request_duration_seconds_count", handler="/v1/work") == 2
    assert not [sample for sample in after.samples if sample.labels.get("handler") == "/no/such/route"]
    assert after.value("http_requests_in_flight") == 0


def test_a_request_over_the_queue_limit_is_counted_as_refused_and_in_flight_requests_are_gauged() -> None:
    engine = Slow()
    app, _ = make_app(engine=engine, max_queued_requests=0)
    with TestClient(app) as client:
        first = threading.Thread(target=client.post, args=("/v1/work",))
        first.start()
        assert engine.started.wait(5)
        assert scrape(client).value("http_requests_in_flight") == 1
        assert client.post("/v1/work").status_code == 503
        engine.release.set()
        first.join(5)
        after = scrape(client)
    assert after.value("http_requests_refused_total", reason="queue_full") == 1
    assert after.value("http_requests_in_flight") == 0


def test_without_an_admin_key_the_admin_routes_answer_403_in_openai_shape() -> None:
    app, _ = make_app()
    with TestClient(app) as client:
        for method, path in [("GET", "/admin/status"), ("POST", "/admin/model/unload"), ("POST", "/admin/model/load")]:
            response = client.request(method, path, headers=ADMIN)
            assert response.status_code == 403, path
            assert response.json()["error"]["code"] == "admin_disabled"
            assert "ADMIN_API_KEY" in response.json()["error"]["message"]
        assert client.get("/ready").json()["status"] == "ready"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer client-key"}])
def test_the_admin_routes_refuse_a_missing_or_wrong_key_with_401(headers: dict[str, str]) -> None:
    app, _ = make_app(admin_api_key="admin-key", api_key="client-key")
    with TestClient(app) as client:
        response = client.post("/admin/model/unload", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
        assert client.get("/ready").json()["status"] == "ready"  # nothing was unloaded


def test_the_status_names_the_model_memory_queue_and_uptime(admin_client: tuple[TestClient, list[Slow]]) -> None:
    client, _ = admin_client
    status = client.get("/admin/status", headers=ADMIN).json()
    assert status["service"] == "slow" and status["state"] == "ready"
    assert status["model"] == {"id": "slow", "owned_by": "tests", "device": "cpu"}
    assert status["load_seconds"] >= 0 and status["uptime_s"] >= 0
    assert status["memory"]["rss_bytes"] > 10_000_000
    assert status["queue"] == {"in_flight": 0, "max_queued": 8}
    assert status["gpus"] is None  # this machine has no NVIDIA GPU


def test_unload_frees_the_model_on_its_worker_and_load_brings_a_fresh_one_back(
    admin_client: tuple[TestClient, list[Slow]],
) -> None:
    client, loaded = admin_client
    unloaded = client.post("/admin/model/unload", headers=ADMIN)
    assert unloaded.status_code == 200 and unloaded.json()["state"] == "unloaded" and unloaded.json()["model"] is None
    assert loaded[0].closed_on is not None and loaded[0].closed_on.startswith("slow-model")
    ready = client.get("/ready")
    assert ready.status_code == 503 and ready.json()["status"] == "unloaded"
    refused = client.post("/v1/work")
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "model_not_ready"
    assert "unloaded" in refused.json()["error"]["message"]
    assert scrape(client).value("model_loaded") == 0
    assert client.post("/admin/model/unload", headers=ADMIN).json()["state"] == "unloaded"  # idempotent

    assert client.post("/admin/model/load", headers=ADMIN).json()["state"] == "ready"
    assert len(loaded) == 2 and client.post("/v1/work").json() == {"result": "done"}
    assert scrape(client).value("model_loaded") == 1
    assert client.post("/admin/model/load", headers=ADMIN).status_code == 200 and len(loaded) == 2  # idempotent


def test_an_unload_waits_for_the_request_using_the_model_and_new_ones_are_refused_meanwhile() -> None:
    engine = Slow()
    app, _ = make_app(engine=engine, admin_api_key="admin-key")
    with TestClient(app) as client:
        results: dict[str, Any] = {}
        working = threading.Thread(target=lambda: results.update(work=client.post("/v1/work")))
        working.start()
        assert engine.started.wait(5)
        unloading = threading.Thread(
            target=lambda: results.update(unload=client.post("/admin/model/unload", headers=ADMIN))
        )
        unloading.start()
        deadline = time.monotonic() + 5
        while client.get("/ready").json()["status"] != "unloaded" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert client.post("/v1/work").status_code == 503  # unloading: no new request gets the model
        assert "unload" not in results  # still waiting for the request in progress
        engine.release.set()
        working.join(5)
        unloading.join(5)
        assert results["work"].json() == {"result": "done"}  # the request in progress was served to its end
        assert results["unload"].json()["state"] == "unloaded"
        assert engine.closed_on is None  # injected: the test's, never closed by the service
        assert client.post("/admin/model/load", headers=ADMIN).json()["state"] == "ready"
        assert client.post("/v1/work").json() == {"result": "done"}  # the injected engine is back


def test_an_unload_that_times_out_leaves_the_model_ready_with_409() -> None:
    engine = Slow()
    app, _ = make_app(engine=engine, admin_api_key="admin-key")
    app.state.model.unload_wait_s = 0.2
    with TestClient(app) as client:
        working = threading.Thread(target=client.post, args=("/v1/work",))
        working.start()
        assert engine.started.wait(5)
        response = client.post("/admin/model/unload", headers=ADMIN)
        assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"
        assert client.get("/ready").json()["status"] == "ready"
        engine.release.set()
        working.join(5)


class FakeNvml(types.ModuleType):
    """NVML as nvidia-ml-py's ``pynvml`` exposes it, with one 80 GB GPU at 25 % memory and 40 % utilisation."""

    class NVMLError(Exception):
        pass

    def __init__(self) -> None:
        super().__init__("pynvml")

    def nvmlInit(self) -> None:  # NVML's own names
        pass

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetName(self, handle: int) -> str:
        return "NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:
        return types.SimpleNamespace(used=20 * 10**9, total=80 * 10**9, free=60 * 10**9)

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        return types.SimpleNamespace(gpu=40, memory=10)


def test_with_a_gpu_its_memory_and_utilisation_are_in_the_metrics_and_the_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml())
    app, _ = make_app(admin_api_key="admin-key")
    with TestClient(app) as client:
        metrics = scrape(client)
        status = client.get("/admin/status", headers=ADMIN).json()
    assert metrics.value("gpu_memory_used_bytes", gpu="0") == 20e9
    assert metrics.value("gpu_memory_total_bytes", gpu="0") == 80e9
    assert metrics.value("gpu_utilization_ratio", gpu="0") == pytest.approx(0.4)
    assert status["gpus"] == [
        {
            "index": 0,
            "name": "NVIDIA H100 80GB HBM3",
            "memory_used_bytes": 20 * 10**9,
            "memory_total_bytes": 80 * 10**9,
            "utilization": 0.4,
        }
    ]


def test_without_a_gpu_there_are_no_gpu_metrics() -> None:
    app, _ = make_app()
    with TestClient(app) as client:
        assert not [name for name in scrape(client).families if name.startswith("gpu_")]
