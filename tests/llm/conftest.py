"""LLM service fixtures: the real app with the embedded SmolLM2-135M model (loading takes well under a second).

Module-scoped, so at most one model (and one model worker thread) is alive at a time.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from llm_test_helpers import make_settings

from llm_service.main import create_app


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    """The real app (lifespan: load + warm-up) with n_ctx=2048."""
    with TestClient(create_app(make_settings())) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def small_ctx_client() -> Iterator[TestClient]:
    """The real app with a 512-token context window, to exercise history trimming."""
    with TestClient(create_app(make_settings(n_ctx=512, default_max_tokens=64))) as test_client:
        yield test_client
