"""Property-based fuzzing of the STT service's OpenAPI schema (schemathesis), in-process, with the real model.

Every operation of the document is exercised with schema-valid and schema-invalid requests; every default check
runs: no 5xx, status codes, content types, headers and bodies as documented, invalid data refused. Only the
expectation of ``positive_data_acceptance`` (schema-valid -> 2xx) is widened, to the refusals a schema cannot
express: bytes that are not decodable audio (415), a language the model does not know (400), the configured
size and duration limits (413). Random bytes are hardly ever audio, so a second, plain Hypothesis test sends
generated form fields with a real spoken clip, so that they reach the model too.

How it runs: the schema is built from the app's own ``openapi()`` at import (no model is loaded then); the
cases are sent to the app in-process through schemathesis's ASGI transport, which runs the app's lifespan
(the real tiny.en model, loaded and warmed up) for each operation and ends it after (schemathesis's pytest
plugin). ``derandomize``: the same examples on every run, so the suite stays deterministic.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from schema_fuzz import app_schema, fuzz_settings
from stt_helpers import OPEN_ACCESS, TRANSCRIPTIONS, assert_openai_error

from stt_service.config import Settings
from stt_service.main import create_app

MAX_EXAMPLES = 40
FIELD_EXAMPLES = 25  # each one that is valid is a real transcription (about 0.5 s)

ACCEPTED_STATUSES = ["2xx", "400", "413", "415"]
app = create_app(Settings(cache_dir=Path(tempfile.gettempdir()) / "voice-agent-stt-fuzz", **OPEN_ACCESS))
schema = app_schema(app, ACCEPTED_STATUSES)


@schema.parametrize()
@fuzz_settings(MAX_EXAMPLES)
def test_the_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    case.call_and_validate()


SPEECH_CLIP = (Path(__file__).parents[1] / "data" / "ask_not_what_your_country_can_do_for_you.wav").read_bytes()

FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "model": st.text(max_size=300),
        "language": st.one_of(st.sampled_from(["en", "EN", "fr", "xx", "", "e", "eng"]), st.text(max_size=4)),
        "prompt": st.text(max_size=2100),
        "response_format": st.sampled_from(["json", "text", "srt", "verbose_json", "vtt", "docx", ""]),
        "temperature": st.one_of(st.floats(-1.0, 2.0).map(str), st.sampled_from(["0", "1", "nan", "inf", "x"])),
        "timestamp_granularities[]": st.lists(st.sampled_from(["segment", "word", "char"]), max_size=3),
    },
)


@given(fields=FIELDS)
@settings(max_examples=FIELD_EXAMPLES, deadline=None, derandomize=True, database=None)
def test_generated_fields_with_real_speech_get_200_or_a_400(client: TestClient, fields: dict[str, object]) -> None:
    response = client.post(TRANSCRIPTIONS, files={"file": ("speech.wav", SPEECH_CLIP, "audio/wav")}, data=fields)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert_openai_error(response, 400)
    elif fields.get("response_format", "json") in ("json", "verbose_json"):
        assert "country" in response.json()["text"].lower()
    else:
        assert response.text.strip() or fields.get("response_format") == "text"
