"""Schemathesis over the desk's OpenAPI spec: data that fits the spec and data that does not,
for every operation, and never a server error; statuses, content types and bodies as documented."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = {GenerationMode.POSITIVE: 50, GenerationMode.NEGATIVE: 30}


@pytest.fixture
def seeded(make_desk, sqlite_url):
    # The spec served without login (a test desk's setting; in production it needs a token).
    sqlite_desk = make_desk(sqlite_url, public_docs=True)
    # Something to find: detainers of every kind, so that ids 1-4 exist and the queue is not empty.
    sqlite_desk.intake(final_order=True, release_eligible_at="2014-03-06T17:00:00")
    sqlite_desk.intake(public_safety_risk=False)
    sqlite_desk.intake()
    sqlite_desk.intake(release_eligible_at="2014-03-06T17:00:00")
    return sqlite_desk


@pytest.mark.parametrize("mode", list(EXAMPLES), ids=str)
def test_no_server_errors_anywhere_in_the_spec(seeded, mode):
    api = schemathesis.openapi.from_asgi("/openapi.json", seeded.client.app)
    headers = seeded.headers("supervisor")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:

        @settings(
            max_examples=EXAMPLES[mode],
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def exercise(case):
            response = case.call(headers=headers)
            case.validate_response(response, checks=CHECKS)

        try:
            exercise()
        except Unsatisfiable:
            # An operation with no inputs (GET /health, /holds/overdue, …) has no invalid data to send.
            assert mode == GenerationMode.NEGATIVE, operation.label
