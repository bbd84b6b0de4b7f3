"""The spec against the code: schemathesis generates requests for every operation in
`/api/openapi.json` (bounded examples) and checks that none gets a 5xx and every response
matches the spec. Also: the docs pages and their locally served assets."""

import hypothesis
import pytest
import schemathesis
from schemathesis.specs.openapi import checks

from tests.api.conftest import bearer

pytestmark = pytest.mark.embedded


EXAMPLES = 8  # per operation: enough to find a mismatch, bounded for CI


def test_every_operation_keeps_to_the_spec(backend, app, keys):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    headers = bearer(keys["a_admin"])
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        def check(case):
            # SSE streams stay open while a task waits: ask for the JSON form.
            if case.path.endswith("/events"):
                case.query = {**(case.query or {}), "format": "json"}
            # Not checked: that every schema-valid request is accepted. Some rules are the
            # service's, not the schema's (a type that exists, a pool or a type but not both),
            # and those answer 422 naming the field, which the other checks still validate.
            case.call_and_validate(headers=headers, excluded_checks=[checks.positive_data_acceptance])

        check()
        checked.append(operation.label)
    assert len(checked) >= 15, checked


def test_spec_is_openapi_3_1_with_bearer_auth(backend, client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert spec["security"] == [{"bearerAuth": []}]
    assert "SleepSubmit" in spec["components"]["schemas"], "each typed endpoint has its own request schema"


def test_docs_pages_load_their_assets_locally(backend, client):
    for page, asset in (
        ("/api/docs", "/api/static/vendor/swagger-ui/swagger-ui-bundle.js"),
        ("/api/redoc", "/api/static/vendor/redoc/redoc.standalone.js"),
    ):
        html = client.get(page).get_data(as_text=True)
        assert asset in html and "https://" not in html.split("<body")[0], page
        with client.get(asset) as response:
            assert response.status_code == 200 and len(response.data) > 100_000
