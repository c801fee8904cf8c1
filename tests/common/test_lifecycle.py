"""The model's life every service shares (``service_common.lifecycle``): load on the worker thread, warm-up, ready,
engine dependency, shutdown."""

from __future__ import annotations

import threading
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient

from service_common.health import Readiness
from service_common.lifecycle import create_service_app, model_worker, ready_engine
from service_common.settings import ServiceSettings
from service_common.worker import ModelWorker


class Echo:
    """A stand-in engine that records which thread each call came from."""

    owned_by = "tests"

    def __init__(self, model_id: str = "echo") -> None:
        self.model_id = model_id
        self.threads: dict[str, str] = {}
        self.closed = 0

    def warm_up(self) -> None:
        self.threads["warm_up"] = threading.current_thread().name

    def close(self) -> None:
        self.closed += 1
        self.threads["close"] = threading.current_thread().name

    def say(self, text: str) -> str:
        return f"{self.model_id}: {text}"


router = APIRouter()
EngineDep = Annotated[Echo, Depends(ready_engine)]
WorkerDep = Annotated[ModelWorker, Depends(model_worker)]


@router.get("/say/{text}")
async def say(text: str, engine: EngineDep, worker: WorkerDep) -> dict[str, str]:
    return {"text": await worker.run(engine.say, text)}


def make_app(engine: Echo | None = None, fail: str | None = None) -> tuple[Any, list[Echo]]:
    loaded: list[Echo] = []

    def load(settings: ServiceSettings, readiness: Readiness) -> Echo:
        if fail == "load":
            raise OSError("no such model\n  (second line)")
        model = Echo("loaded")
        model.threads["load"] = threading.current_thread().name
        loaded.append(model)
        return model

    def warm_up(model: Echo, settings: ServiceSettings) -> None:
        if fail == "warm_up":
            raise ValueError("the model cannot speak this language")
        model.warm_up()

    app = create_service_app(
        name="echo",
        title="echo",
        description="echo",
        version="0",
        settings=ServiceSettings(),
        load=load,
        warm_up=warm_up,
        router=router,
        engine=engine,
    )
    return app, loaded


def test_the_engine_is_loaded_warmed_up_and_closed_on_its_worker_thread() -> None:
    app, loaded = make_app()
    with TestClient(app) as client:
        assert client.get("/ready").json()["status"] == "ready"
        assert client.get("/say/hi").json() == {"text": "loaded: hi"}
        assert [model["id"] for model in client.get("/v1/models").json()["data"]] == ["loaded"]
        assert app.state.engine is loaded[0]
    [model] = loaded
    assert model.closed == 1
    assert set(model.threads) == {"load", "warm_up", "close"}
    assert len(set(model.threads.values())) == 1 and model.threads["load"].startswith("echo-model")


def test_an_injected_engine_is_not_loaded_and_not_closed() -> None:
    injected = Echo("injected")
    app, loaded = make_app(engine=injected)
    with TestClient(app) as client:
        assert client.get("/say/hi").json() == {"text": "injected: hi"}
    assert loaded == []
    assert "warm_up" in injected.threads and injected.closed == 0


def test_before_the_lifespan_ran_the_engine_dependency_answers_503_in_openai_shape() -> None:
    app, _ = make_app(engine=Echo())
    response = TestClient(app).get("/say/hi")  # no ``with``: the lifespan never ran
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "model_not_ready"


@pytest.mark.parametrize("fail", ["load", "warm_up"])
def test_a_failed_start_marks_readiness_failed_in_one_line_and_shuts_the_worker_down_once(
    fail: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutdowns: list[ModelWorker] = []
    original = ModelWorker.shutdown

    def counted(worker: ModelWorker) -> None:
        shutdowns.append(worker)
        original(worker)

    monkeypatch.setattr(ModelWorker, "shutdown", counted)
    app, loaded = make_app(fail=fail)
    with pytest.raises((OSError, ValueError)), TestClient(app):
        pass
    readiness = app.state.readiness
    assert readiness.state == "failed"
    assert "\n" not in readiness.detail and readiness.detail.startswith(("OSError: no such", "ValueError: the model"))
    assert len(shutdowns) == 1
    assert all(model.closed == 0 for model in loaded)  # never ready: nothing to close
