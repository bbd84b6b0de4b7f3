"""The `image` type against the fake OpenAI images API over real HTTP: a PNG of exactly the asked
size per image, with a thumbnail and the provider's metadata; and, through the API and a real
worker, a content-policy refusal fails after one attempt while a server error is retried.
"""

import json
import pathlib
import uuid

import PIL.Image
import pytest

from app import config
from processors import base, image
from tests.api import conftest as api_fixtures
from tests.fakes import openai_server
from tests.queue import helpers

IMAGES = "/v1/images/generations"
PROMPT = "an otter floating on its back, holding a pebble"
# Short backoff so the retried attempt comes at once; the type's own policy keeps its 3 attempts.
POLICIES = {"image": {"backoff_base": 0.1, "backoff_cap": 0.2}}

# The API's fixtures (a test client, callers' keys), for the tests through a worker.
client = api_fixtures.client
keys = api_fixtures.keys


@pytest.fixture
def openai_fake():
    """The fake images API, stopped after the test."""
    with openai_server.OpenAIServer() as fake:
        yield fake


@pytest.fixture
def settings(settings, openai_fake) -> dict:
    """The scenario's settings pointed at the fake, with no retries inside an attempt."""
    extra = {"CONVEYOR_PROVIDER_RETRIES": "0", "CONVEYOR_POLICIES": json.dumps(POLICIES)}
    return {**settings, **openai_fake.settings(), **extra}


def _run(params: dict, openai_fake, tmp_path) -> tuple[dict, base.Context]:
    settings = config.load({"CONVEYOR_VAR_DIR": str(tmp_path / "var")}, openai_fake.settings())
    ctx = base.Context("task-image", 1, tmp_path / "work", settings=settings)
    result = image.ImageProcessor().run(image.ImageProcessor.load_params(params), ctx)
    return result, ctx


def _kinds(ctx: base.Context, kind: str) -> list[dict]:
    return [item for item in ctx.artifacts if item["kind"] == kind]


@pytest.mark.parametrize("size", image.SIZES)
def test_each_size_gives_a_png_of_exactly_that_size(size, openai_fake, tmp_path):
    result, ctx = _run({"prompt": PROMPT, "size": size}, openai_fake, tmp_path)

    (stored,) = _kinds(ctx, "image")
    with PIL.Image.open(stored["path"]) as picture:
        assert picture.format == "PNG"
        assert f"{picture.width}x{picture.height}" == size
    assert stored["mime"] == "image/png"
    assert (result["count"], result["images"][0]["size"]) == (1, size)
    (request,) = openai_fake.requests_to(IMAGES)
    assert (request.json["size"], request.json["n"], request.json["prompt"]) == (size, 1, PROMPT)


def test_two_images_with_thumbnails_metadata_and_progress_per_image(openai_fake, tmp_path):
    result, ctx = _run({"prompt": PROMPT, "size": "1024x1792", "n": 2, "quality": "hd"}, openai_fake, tmp_path)

    assert len(openai_fake.requests_to(IMAGES)) == 2, "one provider call per image"
    pictures, thumbnails, metadata = _kinds(ctx, "image"), _kinds(ctx, "thumbnail"), _kinds(ctx, "metadata")
    assert [p["name"] for p in pictures] == ["image-1.png", "image-2.png"]
    assert len(thumbnails) == 2 and len(metadata) == 2
    for picture, thumbnail in zip(pictures, thumbnails, strict=True):
        with PIL.Image.open(thumbnail["path"]) as small:
            assert small.format == "PNG" and max(small.size) <= 256
            assert max(small.size) == 256, "the thumbnail is as large as the limit allows"
            assert abs(small.width / small.height - 1024 / 1792) < 0.01, "the thumbnail keeps the aspect"
        assert thumbnail["metadata"] == {"of": picture["name"], "width": small.width, "height": small.height}
    for item in metadata:
        saved = json.loads(pathlib.Path(item["path"]).read_text())
        assert saved["model"] == "dall-e-3" and saved["revised_prompt"] == f"Revised: {PROMPT}"
        assert (saved["width"], saved["height"], saved["quality"]) == (1024, 1792, "hd")
    assert result["model"] == "dall-e-3" and result["count"] == 2
    assert [item["revised_prompt"] for item in result["images"]] == [f"Revised: {PROMPT}"] * 2

    ready = [(percent, message) for percent, _, message in ctx.reports if message and "ready" in message]
    assert ready == [(50.0, "image 1 of 2 ready"), (100.0, "image 2 of 2 ready")]


def _submit(client, keys) -> uuid.UUID:
    answer = client.post(
        "/api/image/generate", json={"params": {"prompt": PROMPT}}, headers=api_fixtures.bearer(keys["a_member"])
    )
    assert answer.status_code == 202, answer.get_json()
    return uuid.UUID(answer.get_json()["task_id"])


def test_a_refusal_fails_at_once_without_a_retry(backend, client, keys, processes, openai_fake):
    reason = "Your request was rejected as a result of our safety system: otters may not juggle."
    openai_fake.queue(IMAGES, openai_server.content_policy_error(reason))
    processes.worker("io", concurrency=1)

    row = helpers.wait_status(_submit(client, keys), ("succeeded", "failed"), timeout=60)

    assert row.status == "failed" and (row.attempt, row.max_attempts) == (1, 3)
    assert reason in row.error["message"] and row.error["retryable"] is False
    assert helpers.statuses(row.id) == ["queued", "running", "failed"]
    detail = client.get(f"/api/tasks/{row.id}", headers=api_fixtures.bearer(keys["a_member"])).get_json()
    assert [a["attempt"] for a in detail["attempts"]] == [1] and detail["artifacts"] == []
    assert len(openai_fake.requests_to(IMAGES)) == 1


def test_a_server_error_is_retried_by_the_policy(backend, client, keys, processes, openai_fake):
    openai_fake.queue(IMAGES, openai_server.error(500, "The server had an error while processing your request."))
    processes.worker("io", concurrency=1)

    row = helpers.wait_status(_submit(client, keys), ("succeeded", "failed"), timeout=60)

    assert row.status == "succeeded" and row.attempt == 2, row.error
    assert len(openai_fake.requests_to(IMAGES)) == 2
    detail = client.get(f"/api/tasks/{row.id}", headers=api_fixtures.bearer(keys["a_member"])).get_json()
    first, second = detail["attempts"]
    assert first["outcome"] == "retrying" and "HTTP 500" in first["error"]["message"]
    assert second["outcome"] == "succeeded"
    kinds = sorted((a["kind"], a["attempt"]) for a in detail["artifacts"])
    assert kinds == [("image", 2), ("metadata", 2), ("thumbnail", 2)]
