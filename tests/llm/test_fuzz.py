"""Property-based fuzzing of the LLM service's OpenAPI schema (schemathesis), in-process, with the real model.

Every operation is exercised with schema-valid and schema-invalid requests, with every default check: no 5xx,
status codes, content types, headers and bodies as documented (JSON and the event stream), invalid data
refused. Only the expectation of ``positive_data_acceptance`` (schema-valid -> 2xx) also allows 400, for what
the schema cannot know: the configured max_tokens limit and context window (the service's settings).

The app is the real embedded SmolLM2 with a 256-token window, replies of at most 4 tokens and one thread (no
OpenMP spinning on a busy 2-core machine), so the hundred-odd generations stay quick. The schema is built from
the app's own ``openapi()`` at import (no model loaded then); schemathesis's ASGI transport runs the app's
lifespan (load + warm-up) for each operation in-process. ``derandomize``: the same examples on every run.
"""

from __future__ import annotations

import schemathesis
from llm_test_helpers import make_settings
from schema_fuzz import app_schema, fuzz_settings

from llm_service.main import create_app

MAX_EXAMPLES = 30

ACCEPTED_STATUSES = ["2xx", "400"]
app = create_app(make_settings(n_ctx=256, max_tokens_limit=4, default_max_tokens=4, max_generation_s=5.0, n_threads=1))
schema = app_schema(app, ACCEPTED_STATUSES)


@schema.parametrize()
@fuzz_settings(MAX_EXAMPLES)
def test_the_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    case.call_and_validate()
