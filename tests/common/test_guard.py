"""The shared gate of every service (``service_common.guard`` through ``build_app``): API keys, rate limit,
bounded waiting, CORS, and the OpenAPI document that describes them. A tiny app stands in for a service."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import SettingsConfigDict

from service_common.app import build_app
from service_common.schemas import ERROR_RESPONSES
from service_common.settings import ServiceSettings

KEYS = ("sk-first-0123456789", "sk-second-9876543210")


class GuardSettings(ServiceSettings):
    """Explicit values only (no environment variables leak in)."""

    model_config = SettingsConfigDict(env_prefix="GUARD_TEST_")

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, *_sources, **_named):  # type: ignore[no-untyped-def]
        return (init_settings,)


class Body(BaseModel):
    n: int = Field(ge=0, le=10)


def make_app(**settings: Any) -> tuple[FastAPI, threading.Event]:
    """An app with a quick GET, a POST that waits for ``gate`` (like a queued model call) and a gated stream."""
    gate = threading.Event()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.readiness.mark_ready("test-model", "tests")
        yield

    app = build_app(title="t", description="t", version="0", lifespan=lifespan, settings=GuardSettings(**settings))

    @app.get("/v1/thing")
    async def thing() -> dict[str, str]:
        return {"ok": "yes"}

    @app.post("/v1/work", responses=ERROR_RESPONSES)
    async def work(body: Body) -> dict[str, int]:
        await asyncio.to_thread(gate.wait, 30)
        return {"n": body.n}

    @app.post("/v1/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first "
            await asyncio.to_thread(gate.wait, 30)
            yield b"last"

        return StreamingResponse(chunks(), media_type="text/plain")

    return app, gate


def assert_openai_error(response: Any, status: int, error_type: str, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "code", "param"}
    assert (body["error"]["type"], body["error"]["code"]) == (error_type, code)
    assert body["error"]["message"]
    return dict(body["error"])


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# --- API keys -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed() -> Iterator[TestClient]:
    app, gate = make_app(api_key=",".join(KEYS))
    gate.set()
    with TestClient(app) as client:
        yield client


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {KEYS[0]}"},
        {"Authorization": KEYS[0]},
        {"Authorization": "Bearer sk-wrong"},
        {"Authorization": f"Bearer {KEYS[0]}x"},
        {"Authorization": f"Bearer {KEYS[0][:-1]}"},
        {"Authorization": f"Bearer {KEYS[0]},{KEYS[1]}"},
        {"X-API-Key": KEYS[0]},
    ],
    ids=[
        "no-header",
        "empty",
        "scheme-only",
        "scheme-and-space",
        "basic-scheme",
        "no-scheme",
        "wrong-key",
        "key-plus-a-character",
        "key-minus-a-character",
        "both-keys-at-once",
        "other-header",
    ],
)
def test_a_request_without_a_valid_key_is_401(keyed: TestClient, headers: dict[str, str]) -> None:
    for method, path, body in (("GET", "/v1/thing", None), ("POST", "/v1/work", {"n": 1})):
        response = keyed.request(method, path, headers=headers, json=body)
        assert_openai_error(response, 401, "invalid_request_error", "invalid_api_key")
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
@pytest.mark.parametrize("key", KEYS, ids=["first-key", "second-key"])
def test_each_configured_key_is_let_in(keyed: TestClient, key: str, scheme: str) -> None:
    headers = {"Authorization": f"{scheme} {key}"}
    assert keyed.get("/v1/thing", headers=headers).json() == {"ok": "yes"}
    assert keyed.post("/v1/work", headers=headers, json={"n": 3}).json() == {"n": 3}
    assert keyed.get("/v1/models", headers=headers).status_code == 200


def test_validation_comes_after_the_key(keyed: TestClient) -> None:
    assert_openai_error(keyed.post("/v1/work", json={"n": 99}), 401, "invalid_request_error", "invalid_api_key")
    response = keyed.post("/v1/work", headers=bearer(KEYS[0]), json={"n": 99})
    assert_openai_error(response, 400, "invalid_request_error", "invalid_request")


@pytest.mark.parametrize("path", ["/health", "/ready", "/docs", "/openapi.json", "/redoc"])
def test_health_ready_and_docs_stay_open(keyed: TestClient, path: str) -> None:
    assert keyed.get(path).status_code == 200


def test_an_unknown_path_under_v1_needs_the_key_too(keyed: TestClient) -> None:
    assert keyed.get("/v1/nothing").status_code == 401
    assert keyed.get("/v1/nothing", headers=bearer(KEYS[1])).status_code == 404


def test_keys_never_reach_the_logs_nor_the_settings_repr(caplog: pytest.LogCaptureFixture) -> None:
    wrong = "sk-wrong-but-secret-too"
    caplog.set_level(logging.DEBUG)
    settings = GuardSettings(api_key=",".join(KEYS), rate_limit="2/minute")
    logging.getLogger("tests").info("settings: %r / %s / %s", settings, settings, settings.model_dump())
    app, gate = make_app(api_key=",".join(KEYS), rate_limit="2/minute")
    gate.set()
    with TestClient(app) as client:
        for headers in ({}, bearer(wrong), bearer(KEYS[0]), bearer(KEYS[1])):
            for _ in range(3):  # the third request of a good key is rate-limited: that refusal is logged too
                client.post("/v1/work", headers=headers, json={"n": 1})
    assert any(record.levelno >= logging.WARNING and "401" in record.getMessage() for record in caplog.records)
    assert any("429" in record.getMessage() for record in caplog.records)
    logged = caplog.text + "".join(repr(record.args) + repr(record.__dict__) for record in caplog.records)
    for secret in (*KEYS, wrong):
        assert secret not in logged
        assert secret not in repr(settings) and secret not in str(settings.model_dump())
        assert secret not in settings.model_dump_json()
    assert settings.api_keys == KEYS


def test_without_keys_everything_is_open() -> None:
    app, gate = make_app()
    gate.set()
    with TestClient(app) as client:
        assert client.get("/v1/thing").status_code == 200
        assert client.post("/v1/work", json={"n": 2}, headers=bearer("anything")).status_code == 200


@pytest.mark.parametrize("value", [",", " , ,"])
def test_an_empty_key_list_is_refused_at_start(value: str) -> None:
    with pytest.raises(ValidationError, match="API key list is empty"):
        GuardSettings(api_key=value)


# --- rate limit ---------------------------------------------------------------------------------------------------


def test_the_rate_limit_is_per_key_with_429_and_retry_after() -> None:
    app, gate = make_app(api_key=",".join(KEYS), rate_limit="3/minute")
    gate.set()
    with TestClient(app) as client:
        statuses = [client.get("/v1/thing", headers=bearer(KEYS[0])).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        refused = client.post("/v1/work", headers=bearer(KEYS[0]), json={"n": 1})
        error = assert_openai_error(refused, 429, "requests", "rate_limit_exceeded")
        assert "3/minute" in error["message"]
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        # the other key has its own budget; 401s spend none; /health is not counted
        assert client.get("/v1/thing", headers=bearer(KEYS[1])).status_code == 200
        assert client.get("/v1/thing", headers=bearer("sk-wrong")).status_code == 401
        assert all(client.get("/health").status_code == 200 for _ in range(5))


def test_without_keys_the_rate_limit_is_per_client_address() -> None:
    app, gate = make_app(rate_limit="2/second;3/minute")
    gate.set()
    with TestClient(app) as client:
        assert [client.get("/v1/thing").status_code for _ in range(2)] == [200, 200]
        assert_openai_error(client.get("/v1/thing"), 429, "requests", "rate_limit_exceeded")
    with TestClient(app, client=("10.0.0.2", 5000)) as other:
        assert other.get("/v1/thing").status_code == 200


def test_a_rate_limit_window_refills() -> None:
    app, gate = make_app(rate_limit="1/second")
    gate.set()
    with TestClient(app) as client:
        assert client.get("/v1/thing").status_code == 200
        refused = client.get("/v1/thing")
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        time.sleep(1.05)
        assert client.get("/v1/thing").status_code == 200


@pytest.mark.parametrize("value", ["sixty per minute", "60/fortnight", "/minute", "abc"])
def test_a_malformed_rate_limit_is_refused_at_start(value: str) -> None:
    with pytest.raises(ValidationError, match="not a rate limit"):
        GuardSettings(rate_limit=value)


# --- bounded waiting ----------------------------------------------------------------------------------------------


def wait_for(condition: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_requests_beyond_the_queue_get_503_with_retry_after_and_the_admitted_ones_succeed() -> None:
    app, gate = make_app(max_queued_requests=2)
    admission = app.state.admission
    with TestClient(app) as client:
        results: dict[int, Any] = {}

        def post(index: int) -> None:
            results[index] = client.post("/v1/work", json={"n": index})

        admitted = [threading.Thread(target=post, args=(index,)) for index in range(3)]  # 1 served + 2 waiting
        for thread in admitted:
            thread.start()
        wait_for(lambda: admission.in_flight == 3)
        for index in range(3, 6):
            post(index)  # answered at once, without waiting for the gate
            error = assert_openai_error(results[index], 503, "server_error", "overloaded")
            assert "busy" in error["message"]
            assert results[index].headers["retry-after"] == "2"
        assert client.get("/v1/thing").status_code == 200  # only POSTs queue for the model
        assert client.get("/ready").status_code == 200
        gate.set()
        for thread in admitted:
            thread.join(timeout=30)
        assert [results[index].json() for index in range(3)] == [{"n": 0}, {"n": 1}, {"n": 2}]
        assert admission.in_flight == 0
        assert client.post("/v1/work", json={"n": 7}).status_code == 200  # room again


def test_a_stream_holds_its_place_until_its_last_byte() -> None:
    app, gate = make_app(max_queued_requests=0)
    admission = app.state.admission
    with TestClient(app) as client:
        with client.stream("POST", "/v1/stream") as response:
            assert response.status_code == 200
            chunks = response.iter_raw()
            assert next(chunks) == b"first "
            assert admission.in_flight == 1
            assert_openai_error(client.post("/v1/work", json={"n": 1}), 503, "server_error", "overloaded")
            gate.set()
            assert b"".join(chunks) == b"last"
        wait_for(lambda: admission.in_flight == 0)
        assert client.post("/v1/work", json={"n": 1}).status_code == 200


def test_refused_and_invalid_requests_give_their_place_back() -> None:
    app, gate = make_app(max_queued_requests=0)
    gate.set()
    with TestClient(app) as client:
        for _ in range(3):
            assert client.post("/v1/work", json={"n": 99}).status_code == 400
            assert (
                client.post("/v1/work", content=b"{", headers={"content-type": "application/json"}).status_code == 400
            )
        assert app.state.admission.in_flight == 0
        assert client.post("/v1/work", json={"n": 1}).status_code == 200


# --- CORS ---------------------------------------------------------------------------------------------------------

ALLOWED = "http://localhost:8501"


def preflight(client: TestClient, origin: str) -> Any:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    return client.options("/v1/work", headers=headers)


def test_cors_headers_only_for_allowed_origins() -> None:
    app, gate = make_app(cors_origins=f"{ALLOWED}, https://agent.example.org/", api_key=KEYS[0])
    gate.set()
    with TestClient(app) as client:
        for origin in (ALLOWED, "https://agent.example.org"):
            allowed = preflight(client, origin)  # no key needed: browsers send preflights without credentials
            assert allowed.status_code == 200
            assert allowed.headers["access-control-allow-origin"] == origin
            assert "POST" in allowed.headers["access-control-allow-methods"]
            assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        refused = preflight(client, "https://evil.example.com")
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers
        # simple requests: the header is added for an allowed origin only, also on errors
        ok = client.get("/v1/thing", headers={"Origin": ALLOWED, **bearer(KEYS[0])})
        assert ok.headers["access-control-allow-origin"] == ALLOWED
        assert "retry-after" in ok.headers["access-control-expose-headers"].lower()
        unauthorised = client.get("/v1/thing", headers={"Origin": ALLOWED})
        assert unauthorised.status_code == 401 and unauthorised.headers["access-control-allow-origin"] == ALLOWED
        assert "access-control-allow-origin" not in client.get("/v1/thing", headers={"Origin": "https://x.org"}).headers


def test_no_cors_headers_by_default() -> None:
    app, gate = make_app()
    gate.set()
    with TestClient(app) as client:
        assert "access-control-allow-origin" not in preflight(client, ALLOWED).headers
        assert "access-control-allow-origin" not in client.get("/v1/thing", headers={"Origin": ALLOWED}).headers


def test_cors_origins_read_from_the_environment_as_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    class EnvSettings(ServiceSettings):
        model_config = SettingsConfigDict(env_prefix="GUARD_ENV_")

    monkeypatch.setenv("GUARD_ENV_CORS_ORIGINS", "http://a.org, http://b.org/")
    monkeypatch.setenv("GUARD_ENV_API_KEY", "k1,k2")
    monkeypatch.setenv("GUARD_ENV_MAX_QUEUED_REQUESTS", "3")
    settings = EnvSettings()
    assert settings.cors_origins == ["http://a.org", "http://b.org"]
    assert settings.api_keys == ("k1", "k2") and settings.max_queued_requests == 3
    monkeypatch.setenv("GUARD_ENV_CORS_ORIGINS", "")
    assert EnvSettings().cors_origins == []


# --- the OpenAPI document -----------------------------------------------------------------------------------------


def operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_openapi_has_no_422_but_400_in_openai_shape() -> None:
    app, _ = make_app()
    with TestClient(app) as client:
        schema = client.get("/openapi.json").json()
    assert all("422" not in operation["responses"] for _, _, operation in operations(schema))
    assert not {"HTTPValidationError", "ValidationError"} & set(schema["components"]["schemas"])
    work = schema["paths"]["/v1/work"]["post"]["responses"]
    assert work["400"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
    assert "overloaded" in work["503"]["description"] and "Retry-After" in work["503"]["headers"]
    assert "ErrorResponse" in schema["components"]["schemas"]
    assert "securitySchemes" not in schema["components"]
    assert all("401" not in operation["responses"] for _, _, operation in operations(schema))


def test_openapi_documents_the_key_and_the_rate_limit_when_set() -> None:
    app, _ = make_app(api_key=KEYS[0], rate_limit="5/second")
    with TestClient(app) as client:
        schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["APIKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "One of the keys in this service's <PREFIX>_API_KEY variable.",
    }
    for path, _, operation in operations(schema):
        guarded = path.startswith("/v1/")
        assert ("401" in operation["responses"]) == guarded
        assert ("429" in operation["responses"]) == guarded
        assert (operation.get("security") == [{"APIKey": []}]) == guarded
