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
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.exchange_fixtures import *  # noqa: F403
from tests.field_fixtures import category_id, grid_point, photo_dir  # noqa: F401
from tests.visits_fixtures import *  # noqa: F403
from tests.visits_fixtures import new_plan, stops_of
from webapp.visits import planning

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
@pytest.mark.parametrize(
    "mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE], ids=str
)
def test_api_matches_its_openapi_document(app, connection, token_for, mode):
    token = token_for("county_staff")[1]
    headers = {"Authorization": f"Bearer {token}"}
    checks = CHECKS + (
        [negative_data_rejection] if mode is schemathesis.GenerationMode.NEGATIVE else []
    )
    operations = _operations(app)
    assert {op.label for op in operations} >= {
        "GET /locate",
        "GET /areas",
        "GET /areas/{code}",
        "GET /cases",
        "POST /cases",
        "GET /cases/{case_ref}",
        "GET /categories",
    } or len(operations) >= 7
    for operation in operations:

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case):
            case.call_and_validate(headers=headers, checks=checks)

        run()


PHONE_PATHS = ("/field/", "/visits/")


@pytest.mark.slow
@pytest.mark.usefixtures("photo_dir")
@pytest.mark.parametrize(
    "mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE], ids=str
)
def test_phone_operations_reach_the_code_that_stores(
    app, session, connection, token_for, make_user, busy_place, mode
):
    """The phone's operations (/field, /visits) as the grid worker who walks a published plan.

    A county token mostly meets 403s and 404s there. Here, in positive mode, half the
    examples take the worker's own stop, case and plan ids and a point and category
    that exist, so fuzzed bodies get past the lookups to the code that stores
    reports, photos, sweeps and outcomes (and must still answer on-schema).
    """
    planner, planner_token = token_for("planner")
    worker, worker_token = token_for("grid_worker", busy_place.grid)
    plan = new_plan(session, app, planner, busy_place.village, [(worker.id, 20)], days=1)
    planning.publish(session, plan)
    stop_id, case_id = next(
        (s.id, s.case_id)
        for s in stops_of(session, plan.id)
        if s.user_id == worker.id and s.case_id
    )
    lon, lat = grid_point(session, busy_place.grid)
    real_path = {"stop_id": stop_id, "case_id": case_id, "plan_id": plan.id}
    real_body = {"lon": lon, "lat": lat, "category_id": category_id(session)}
    checks = CHECKS + (
        [negative_data_rejection] if mode is schemathesis.GenerationMode.NEGATIVE else []
    )
    operations = [op for op in _operations(app) if op.path.startswith(PHONE_PATHS)]
    assert len(operations) == 9
    for operation in operations:
        token = planner_token if "/plans/" in operation.path else worker_token
        headers = {"Authorization": f"Bearer {token}"}

        @given(case=operation.as_strategy(mode), real=st.booleans())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case, real):
            if real and mode is schemathesis.GenerationMode.POSITIVE:
                for name in case.path_parameters or {}:
                    case.path_parameters[name] = real_path[name]
                if isinstance(case.body, dict):
                    case.body.update({k: v for k, v in real_body.items() if k in case.body})
            case.call_and_validate(headers=headers, checks=checks)  # noqa: B023 (run at once)

        run()
