"""Schemathesis fuzzes /api/v1 from its own OpenAPI document: no server error, no answer off-schema.

The app is called in-process (WSGI) inside the test's rolled-back transaction, with a
county staff token (the widest scope, so every endpoint answers with data). Each
operation gets valid (positive) and invalid (negative) requests. The run is bounded:
a fixed number of examples per operation and mode, derandomized, no deadline.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.exchange_fixtures import *  # noqa: F403

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 30


def _operations(app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.slow
@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE], ids=str)
def test_api_matches_its_openapi_document(app, connection, token_for, mode):
    token = token_for("county_staff")[1]
    headers = {"Authorization": f"Bearer {token}"}
    checks = CHECKS + ([negative_data_rejection] if mode is schemathesis.GenerationMode.NEGATIVE else [])
    operations = _operations(app)
    assert {op.label for op in operations} >= {
        "GET /locate", "GET /areas", "GET /areas/{code}", "GET /cases", "POST /cases",
        "GET /cases/{case_ref}", "GET /categories",
    } or len(operations) >= 7
    for operation in operations:

        @given(case=operation.as_strategy(mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
        def run(case):
            case.call_and_validate(headers=headers, checks=checks)

        run()
