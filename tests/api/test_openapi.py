"""The spec against the code: schemathesis runs over the whole of `/api/openapi.json` as its
command line would (`schemathesis run`: the coverage phase's edge cases, fuzzing with valid
and invalid data, and stateful sequences that follow the spec's links), with all its checks
but one, and must find no failure (no 5xx, documented status codes, content types, headers
and schemas, invalid data refused, auth not ignored, deleted resources gone, created ones
available). Every failure is collected, so one run lists them all. Also: the spec passes
openapi-spec-validator, and the docs pages load their locally served assets."""

import pytest
import schemathesis
from openapi_spec_validator import validate as validate_spec
from schemathesis import engine
from schemathesis.engine import events

from tests.api.conftest import bearer
from tests.dashboard.conftest import server  # noqa: F401 - the app on 127.0.0.1, over real HTTP

pytestmark = pytest.mark.embedded

EXAMPLES = 10  # per operation and phase: about 3,700 cases in all, under a minute per backend
MIN_CASES = 1000
# Not checked: that every schema-valid request is accepted. Some rules are the service's, not
# the schema's (a type that exists, a pool or a type but not both, an upload id of this
# account, a task in a state that allows the action), and those answer 4xx naming the field,
# which the other checks still validate.
EXCLUDED = ["positive_data_acceptance"]


# Over real HTTP, not schemathesis' WSGI transport: in schemathesis 4.32 the checks that send
# requests of their own (`ignored_auth`, ...) pass `max_redirects` to Werkzeug's test client,
# which refuses it, and the transport leaves file responses unclosed.
@pytest.mark.timeout(900)
def test_every_operation_keeps_to_the_spec(backend, app, server, keys):  # noqa: F811
    schema = schemathesis.openapi.from_url(f"{server}/api/openapi.json")
    schema.config.update(headers=bearer(keys["a_operator"]))
    schema.config.generation.update(max_examples=EXAMPLES, deterministic=True, database="none")
    schema.config.checks.update(excluded_check_names=EXCLUDED)
    schema.config.cache.enabled = False  # no `.schemathesis/` cache left in the checkout
    found: dict[str, str] = {}
    cases = 0
    for event in engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            cases += len(event.recorder.cases)
            _record(found, event)
        elif isinstance(event, events.NonFatalError | events.FatalError):
            found.setdefault(f"{type(event).__name__} {getattr(event, 'label', '')}", str(event.info)[:2000])
    assert cases >= MIN_CASES
    assert not found, "\n\n".join(f"{key}\n{detail}" for key, detail in sorted(found.items()))


def _record(found: dict, event: events.ScenarioFinished) -> None:
    for checks in event.recorder.checks.values():
        for check in checks:
            if check.failure_info is not None:
                failure = check.failure_info.failure
                detail = f"{failure.message[:600]}\n  reproduce: {check.failure_info.code_sample[:800]}"
                found.setdefault(f"{event.label} [{event.phase}] {check.name}: {failure.title}", detail)


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
