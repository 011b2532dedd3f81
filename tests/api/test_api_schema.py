"""Schemathesis runs every operation of the API's own schema with generated input, against the
live test server with a real token: no answer may be a 5xx, and every answer must match the
schema (status, content type, body)."""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from delegations import services
from tests.factories import make_user, submit_request

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

EXAMPLES_PER_OPERATION = 14
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_every_operation_answers_generated_input_within_its_schema(
    live_server, rq_queue, repository, people, settings_override
):
    # An owner's token, so the owners' operations run their real paths too; and a request in
    # the queue, so lists have something in them.
    submit_request(repository, people["bob"])
    _, secret = services.api_token_create(user=people["alice"], name="fuzz", expires_days=1)
    headers = {"Authorization": f"Bearer {secret}"}
    raw = requests.get(f"{live_server.url}/api/v1/schema/?format=json", headers=headers, timeout=30)
    assert raw.status_code == 200, raw.text
    schema = schemathesis.openapi.from_dict(raw.json())

    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 19
    examples = 0
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case) -> None:
            nonlocal examples
            examples += 1
            case.call_and_validate(base_url=live_server.url, headers=headers, checks=CHECKS)

        run()
    assert examples >= 200


@pytest.fixture
def settings_override(settings):
    # Hundreds of calls in a few seconds from one token: the limit is not what is tested here.
    settings.PORTAL_API_RATE = "100000/minute"
    make_user("carol", teams=("qa",))
