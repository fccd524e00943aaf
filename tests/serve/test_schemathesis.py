"""The service against its own OpenAPI schema: schemathesis generates requests for every
operation, valid ones and invalid ones, and checks that none is a server error and that every
response has a documented status, content type, headers and body. The app runs in process, with
the API key, so the write endpoints are exercised too; examples are bounded so the whole run
stays well under a minute.

(schemathesis' own pytest plugin does not run under pytest 9, so its strategies are driven with
hypothesis directly, one test per operation and generation mode.)
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import API_KEY

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
OPERATIONS = [
    ("GET", "/health"),
    ("GET", "/version"),
    ("GET", "/recommend/{user_id}"),
    ("POST", "/recommend"),
    ("GET", "/similar/{item_id}"),
    ("GET", "/search"),
    ("POST", "/events"),
    ("POST", "/items"),
    ("POST", "/admin/reload"),
]
#: Each operation with valid and with invalid requests (/health and /version take nothing to
#: get wrong).
CASES = [
    (method, path, mode)
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if not (path in ("/health", "/version") and mode == GenerationMode.NEGATIVE)
]


def test_the_operations_tested_are_all_the_schema_has(app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    found = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert found == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_every_answer_is_documented_and_none_is_a_server_error(
    app: FastAPI, method: str, path: str, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operation = schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    def conforms(case: schemathesis.Case) -> None:
        case.call_and_validate(headers={"X-API-Key": API_KEY}, checks=CHECKS)

    conforms()
