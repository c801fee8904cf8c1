"""Which field a 400 names: the field at fault, never a pydantic type tag."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from service_common.app import build_app


class Part(BaseModel):
    text: str


class Body(BaseModel):
    content: str | list[Part]
    stop: str | list[str] | None = None
    n: int = Field(default=1, ge=1, le=3)
    top: float = Field(default=0.5, le=1.0)


@pytest.fixture(scope="module")
def client() -> TestClient:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield

    app = build_app(title="t", description="t", version="0", lifespan=lifespan)

    @app.post("/echo")
    async def echo(body: Body) -> dict[str, str]:
        return {"ok": "yes"}

    return TestClient(app)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"content": 7}, "content"),  # fits neither str nor list[Part]: two errors, one field
        ({"content": [{"nope": 1}]}, "content"),
        ({"content": "x", "stop": 3}, "stop"),
        ({"content": "x", "n": 9}, "n"),
        ({"content": "x", "n": 9, "top": 2}, "n"),  # two fields: the first is named, both are described
        ({}, "content"),
    ],
)
def test_the_param_is_the_field_at_fault(client: TestClient, body: dict, param: str) -> None:
    response = client.post("/echo", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_every_error_is_described(client: TestClient) -> None:
    message = client.post("/echo", json={"content": "x", "n": 9, "top": 2}).json()["error"]["message"]
    assert "n:" in message and "top:" in message
