"""Property-based fuzzing of the TTS service's OpenAPI schema (schemathesis), in-process, with the real voice.

Every operation is exercised with schema-valid and schema-invalid requests, with every default check: no 5xx,
status codes, content types, headers and bodies as documented, invalid data refused. Only the expectation of
``positive_data_acceptance`` (schema-valid -> 2xx) also allows what the schema cannot know: blank input and
unknown voices (400), input over TTS_MAX_INPUT_CHARS (413, set to 200 here so that every synthesis is short).

The schema is built from the app's own ``openapi()`` at import (no model loaded then); schemathesis's ASGI
transport runs the app's lifespan (the embedded Piper voice, loaded and warmed up) for each operation,
in-process. ``derandomize``: the same examples on every run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from schema_fuzz import app_schema, fuzz_settings

from tts_service.main import create_app

from .conftest import make_settings

MAX_EXAMPLES = 40

ACCEPTED_STATUSES = ["2xx", "400", "413"]
app = create_app(make_settings(Path(tempfile.gettempdir()) / "voice-agent-tts-fuzz", max_input_chars=200))
schema = app_schema(app, ACCEPTED_STATUSES)


@schema.parametrize()
@fuzz_settings(MAX_EXAMPLES)
def test_the_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    case.call_and_validate()
