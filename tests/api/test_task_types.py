"""`/api/task-types`: each type with its params schema, policy and provider availability."""

import pytest

from tests.api.conftest import bearer

pytestmark = pytest.mark.embedded


def test_types_with_schema_policy_and_availability(backend, client, keys):
    types = {t["type"]: t for t in client.get("/api/task-types", headers=bearer(keys["a_member"])).get_json()}
    assert {"noop", "sleep", "flaky"} <= set(types)
    sleep = types["sleep"]
    assert sleep["endpoint"] == "/api/sleep/generate"
    assert sleep["params_schema"]["properties"]["seconds"]["type"] == "number"
    assert sleep["policy"]["pool"] in ("cpu", "io") and sleep["policy"]["max_attempts"] >= 1
    assert sleep["available"] is True and sleep["providers"] == []
    spec = client.get("/api/openapi.json").get_json()
    for name, described in types.items():
        assert described["endpoint"] in spec["paths"], name


def test_an_optional_llm_is_listed_without_making_the_type_unavailable(backend, client, keys):
    types = {t["type"]: t for t in client.get("/api/task-types", headers=bearer(keys["a_member"])).get_json()}
    explainer = types["explainer_video"]
    assert explainer["available"] is True  # a given script runs on espeak-ng, with no key
    openai = next(p for p in explainer["providers"] if p["name"] == "openai")
    assert openai == {"name": "openai", "configured": False, "required": False, "reason": "OPENAI_API_KEY is not set"}
    story = types["story"]
    assert story["available"] is False
    assert story["providers"] == [
        {"name": "openai", "configured": False, "required": True, "reason": "OPENAI_API_KEY is not set"}
    ]
