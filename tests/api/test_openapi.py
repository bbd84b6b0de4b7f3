"""The spec against the code: schemathesis generates requests for every operation in
`/api/openapi.json`, valid ones and invalid ones, and checks every response with all its
checks (no 5xx, documented status codes, content types, headers and schemas, invalid data
refused, auth not ignored). Every failure is collected, so one run lists them all. Also: the
spec passes openapi-spec-validator, and the docs pages load their locally served assets."""

import hypothesis
import pytest
import schemathesis
from openapi_spec_validator import validate as validate_spec
from schemathesis.core import failures
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi import checks

from tests.api.conftest import bearer

pytestmark = pytest.mark.embedded

# Per operation and generation mode: about 27 operations x 2 modes x 20 = over 1,000 cases.
EXAMPLES = 20
MIN_CASES = 1000
# Not checked: that every schema-valid request is accepted. Some rules are the service's, not
# the schema's (a type that exists, a pool or a type but not both, an upload id of this
# account), and those answer 422 naming the field, which the other checks still validate.
EXCLUDED = [checks.positive_data_acceptance]


@pytest.mark.timeout(600)
def test_every_operation_keeps_to_the_spec(backend, app, keys):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    headers = bearer(keys["a_admin"])
    found: dict[str, str] = {}
    cases = []
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _run(operation, mode, headers, found, cases)
    assert len(operations) >= 15, [op.label for op in operations]
    assert len(cases) >= MIN_CASES
    assert not found, "\n\n".join(f"{key}\n{detail}" for key, detail in sorted(found.items()))


def _run(operation, mode, headers, found: dict, cases: list) -> None:
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.generate],
    )
    def check(case):
        # SSE streams stay open while a task waits: ask for the JSON form.
        if case.path.endswith("/events") and isinstance(case.query, dict | None):
            case.query = {**(case.query or {}), "format": "json"}
        cases.append(case)
        try:
            case.call_and_validate(headers=headers, excluded_checks=EXCLUDED)
        except failures.FailureGroup as group:
            for failure in group.exceptions:
                _record(found, operation, mode, failure, case)
        except failures.Failure as failure:
            _record(found, operation, mode, failure, case)

    check()


def _record(found: dict, operation, mode, failure, case) -> None:
    key = f"{operation.label} [{mode}] {failure.title}"
    found.setdefault(key, f"{failure.message[:600]}\n  reproduce: {case.as_curl_command()[:600]}")


def test_spec_passes_the_openapi_validator(backend, client):
    validate_spec(client.get("/api/openapi.json").get_json())


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
