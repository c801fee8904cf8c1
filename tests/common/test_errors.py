"""Every error leaves in OpenAI's shape with the right status; /health and /ready behave."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from service_common.app import build_app
from service_common.errors import AudioDecodeError, InputTooLarge, ModelNotReady


class Body(BaseModel):
    n: int = Field(ge=0, le=10)


def make_app(ready: bool) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if ready:
            app.state.readiness.mark_ready("test-model", "tests")
        yield

    app = build_app(title="t", description="t", version="0", lifespan=lifespan)

    @app.post("/echo")
    async def echo(body: Body) -> Body:
        return body

    @app.get("/fail/{kind}")
    async def fail(kind: str) -> None:
        raise {
            "decode": AudioDecodeError("bad audio"),
            "large": InputTooLarge("too big"),
            "ready": ModelNotReady(),
            "bug": RuntimeError("boom"),
        }[kind]

    return app


def assert_openai_error(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert error["message"]
    return error


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("decode", 415, "audio_decode_error"),
        ("large", 413, "input_too_large"),
        ("ready", 503, "model_not_ready"),
        ("bug", 500, "internal_error"),
    ],
)
def test_domain_errors_map_to_status_and_shape(kind: str, status: int, code: str) -> None:
    with TestClient(make_app(True), raise_server_exceptions=False) as client:
        error = assert_openai_error(client.get(f"/fail/{kind}"), status)
        assert error["code"] == code


def test_validation_and_routing_errors_use_the_same_shape() -> None:
    with TestClient(make_app(True)) as client:
        error = assert_openai_error(client.post("/echo", json={"n": 99}), 400)
        assert error["param"] == "n"
        assert_openai_error(
            client.post("/echo", content=b"not json", headers={"content-type": "application/json"}), 400
        )
        assert_openai_error(client.get("/nowhere"), 404)
        assert_openai_error(client.delete("/echo"), 405)


def test_ready_is_503_until_the_model_is_marked_ready() -> None:
    with TestClient(make_app(False)) as client:
        assert client.get("/health").status_code == 200
        response = client.get("/ready")
        assert response.status_code == 503 and response.json()["status"] == "loading"
        assert client.get("/v1/models").json() == {"object": "list", "data": []}
    with TestClient(make_app(True)) as client:
        assert client.get("/ready").json()["status"] == "ready"
        models = client.get("/v1/models").json()
        assert models["data"][0]["id"] == "test-model" and models["data"][0]["object"] == "model"
