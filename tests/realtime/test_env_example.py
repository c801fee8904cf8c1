"""The REALTIME_ settings are all documented in .env.example, and its example values are valid."""

from __future__ import annotations

from realtime_service.config import Settings


def test_env_example_documents_every_setting(assert_env_example_covers) -> None:  # type: ignore[no-untyped-def]
    assert_env_example_covers(Settings, "REALTIME_")
