"""What the three services' schemathesis tests share: the schema of an in-process app and Hypothesis's settings."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig


def app_schema(app: Any, accepted_statuses: list[str]) -> Any:
    """The OpenAPI schema of FastAPI ``app``, its cases sent to the app in-process (schemathesis's ASGI transport).

    Built from ``app.openapi()``, so no model is loaded at import; the transport runs the app's lifespan per
    operation. Every default check runs; only ``positive_data_acceptance`` (schema-valid -> 2xx) also accepts
    ``accepted_statuses``, the refusals a schema cannot express (e.g. ``["2xx", "400", "413"]``).
    """
    # 403: the admin routes, off in these apps (no admin key); no other route answers it
    expected = [*accepted_statuses, "403"]
    config = SchemathesisConfig.from_dict({"checks": {"positive_data_acceptance": {"expected-statuses": expected}}})
    schema = schemathesis.openapi.from_dict(app.openapi(), config=config)
    schema.app = app  # what openapi.from_asgi does after fetching the document over ASGI (which would start the model)
    return schema


def fuzz_settings(max_examples: int) -> Any:
    """Hypothesis settings: ``max_examples`` per operation, the same examples on every run, no deadline (models)."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
