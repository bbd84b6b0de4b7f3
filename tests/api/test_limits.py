"""Bounded input (DESIGN.md, promise 10): a body over CONVEYOR_MAX_BODY_BYTES is a 413 before
it is read (uploads keep their own limit), and each input that once gave a 500 now gets a 4xx
naming its field, with no task row written."""

import io

import pytest

from app import models
from app.extensions import db
from tests.api.conftest import bearer

pytestmark = pytest.mark.embedded

LIMIT = 64 * 1024


@pytest.fixture
def settings(settings):
    return {**settings, "CONVEYOR_MAX_BODY_BYTES": str(LIMIT)}


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    body = response.get_json()
    assert set(body) == {"code", "status", "message", "errors"} and body["status"] == status
    return body


def _count() -> int:
    db.session.rollback()
    return db.session.query(models.Task).count()


def _post_raw(client, path: str, raw: str, key: str):
    return client.post(
        path, data=raw.encode("utf-8", "surrogatepass"), content_type="application/json", headers=bearer(key)
    )


class Stream(io.RawIOBase):
    """A request body of `size` bytes that counts what the app reads of it."""

    def __init__(self, size: int):
        self.size, self.position, self.read_bytes = size, 0, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True  # the test client measures the stream

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = offset if whence == 0 else self.size + offset
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.size - self.position)
        buffer[:count] = b" " * count
        self.position += count
        self.read_bytes += count
        return count


def test_a_body_over_the_limit_is_413_before_it_is_read(backend, client, keys):
    body = Stream(200 * 2**20)
    response = client.post(
        "/api/tasks",
        input_stream=body,
        content_type="application/json",
        headers=bearer(keys["a_member"]),
    )
    error = _error(response, 413)
    assert error["code"] == "too_large" and error["message"].endswith(f"limit of {LIMIT} bytes")
    assert body.read_bytes == 0
    assert _count() == 0


def test_a_chunked_body_is_read_only_up_to_the_limit(backend, client, keys):
    body = Stream(200 * 2**20)
    response = client.post(
        "/api/tasks",
        input_stream=body,
        content_type="application/json",
        headers={**bearer(keys["a_member"]), "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},  # what a server sets for chunked bodies
    )
    _error(response, 413)
    assert body.read_bytes <= 2 * LIMIT
    assert _count() == 0


def test_a_body_under_the_limit_is_read(backend, client, keys):
    padding = "x" * (LIMIT - 200)
    response = client.post(
        "/api/tasks", json={"type": "noop", "params": {"echo": padding}}, headers=bearer(keys["a_member"])
    )
    assert response.status_code == 202, response.get_data(as_text=True)[:500]


def test_uploads_keep_their_own_larger_limit(backend, client, keys):
    cues = "".join(f"{i}\n00:00:{i % 60:02d}.000 --> 00:00:{i % 60:02d}.500\nline {i}\n\n" for i in range(4000))
    data = ("WEBVTT\n\n" + cues).encode()
    assert len(data) > 2 * LIMIT
    made = client.post(
        "/api/uploads",
        data={"file": (io.BytesIO(data), "long.vtt")},
        headers=bearer(keys["a_member"]),
        content_type="multipart/form-data",
    )
    assert made.status_code == 201, made.get_data(as_text=True)[:500]
    assert made.get_json()["size"] == len(data)


def test_a_dashboard_form_over_the_limit_is_413(backend, client):
    response = client.post("/dashboard/signin", data={"api_key": "x" * (2 * LIMIT)})
    assert response.status_code == 413
    assert "text/html" in response.content_type


NESTED = '{"type": "noop", "params": {"echo": ' + "[" * 5000 + "]" * 5000 + "}}"
HUGE_INT = '{"type": "noop", "params": {"echo": ' + "7" * 5000 + "}}"


@pytest.mark.parametrize(
    ("raw", "status", "path"),
    [
        ('{"type": "noop", "params": {"echo": "a\\u0000b"}}', 422, ["params", "echo"]),
        ('{"type": "noop", "params": {"a\\u0000": 1}}', 422, ["params", "a\\u0000"]),
        ('{"type": "noop", "params": {"echo": "\\ud800"}}', 422, ["params", "echo"]),
        ('{"type": "noop", "params": {"\\udfff": 1}}', 422, ["params", "\\udfff"]),
        ('{"type": "noop", "params": {"echo": [1, NaN]}}', 422, ["params", "echo", "1"]),
        ('{"type": "noop", "params": {"echo": 1e999}}', 422, ["params", "echo"]),
        ('{"type": "noop", "params": {"echo": ' + "[" * 70 + "]" * 70 + "}}", 422, ["params", "_schema"]),
        (HUGE_INT, 400, ["json"]),
        (NESTED, 400, ["json"]),
        ('{"type": "noop", "run_at": "9999-12-31T20:00:00-14:00"}', 422, ["run_at"]),
        ('{"type": "noop", "run_at": "0001-01-01T00:00:00+14:00"}', 422, ["run_at"]),
        ('{"type": "no\\u0000op"}', 422, ["type"]),
    ],
    ids=[
        "nul",
        "nul-key",
        "surrogate",
        "surrogate-key",
        "nan",
        "infinity",
        "deep-params",
        "huge-int",
        "nested-5000",
        "run-at-9999",
        "run-at-1",
        "nul-type",
    ],
)
def test_submit_refuses_what_cannot_be_stored_naming_the_field(backend, client, keys, raw, status, path):
    body = _error(_post_raw(client, "/api/tasks", raw, keys["a_member"]), status)
    node = body["errors"]
    for name in path:
        assert name in node, body
        node = node[name]
    assert _count() == 0


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ('{"params": {"echo": "a\\u0000b"}}', ["params", "echo"]),
        ('{"params": {"echo": {"\\ud800": 1}}}', ["params", "echo", "\\ud800"]),
        ('{"params": {"echo": ' + "[" * 70 + "]" * 70 + "}}", ["params", "_schema"]),
        ('{"run_at": "9999-12-31T23:00:00-14:00"}', ["run_at"]),
    ],
)
def test_typed_endpoints_refuse_the_same(backend, client, keys, raw, path):
    body = _error(_post_raw(client, "/api/noop/generate", raw, keys["a_member"]), 422)
    node = body["errors"]
    for name in path:
        assert name in node, body
        node = node[name]
    assert _count() == 0


def test_a_nul_in_the_idempotency_key_is_refused(backend, client, keys):
    headers = {**bearer(keys["a_member"]), "Idempotency-Key": "a\x00b"}
    body = _error(client.post("/api/tasks", json={"type": "noop"}, headers=headers), 422)
    assert "Idempotency-Key" in body["errors"]
    assert _count() == 0


@pytest.mark.parametrize("path", ["/api/tasks", "/api/tasks/queue/list"])
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("created_after=9999-12-31T20:00:00-14:00", "created_after"),
        ("created_after=0001-01-01T00:00:00%2B14:00", "created_after"),
        ("created_before=9999-12-31T20:00:00-14:00", "created_before"),
        ("created_before=0001-01-01T00:00:00%2B14:00", "created_before"),
        ("type=no%00op", "type"),
        ("after_all=1", "after_all"),
    ],
)
def test_list_filters_that_cannot_be_compared_are_refused(backend, client, keys, path, query, field):
    body = _error(client.get(f"{path}?{query}", headers=bearer(keys["a_admin"])), 422)
    assert field in body["errors"], body


@pytest.mark.parametrize("value", ["1e300", "1e999", "9" * 400])
def test_a_huge_stuck_after_is_refused(backend, client, keys, value):
    response = _post_raw(client, "/api/tasks/queue/cleanup", '{"stuck_after": ' + value + "}", keys["a_operator"])
    assert "stuck_after" in _error(response, 422)["errors"]


def test_a_huge_last_event_id_is_ignored(backend, client, keys):
    made = client.post("/api/tasks", json={"type": "noop"}, headers=bearer(keys["a_member"])).get_json()
    headers = {**bearer(keys["a_member"]), "Last-Event-ID": "9" * 5000}
    response = client.get(f"/api/tasks/{made['task_id']}/events?format=json", headers=headers)
    assert response.status_code == 200
    after = {**headers, "Last-Event-ID": "9" * 30}
    assert client.get(f"/api/tasks/{made['task_id']}/events?format=json", headers=after).status_code == 200


def test_an_upload_with_another_form_part_is_refused_naming_it(backend, client, keys):
    data = {"file": (io.BytesIO(b"WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n"), "a.vtt"), "extra": "1"}
    response = client.post(
        "/api/uploads", data=data, headers=bearer(keys["a_member"]), content_type="multipart/form-data"
    )
    assert "extra" in _error(response, 422)["errors"]


def test_a_typed_endpoint_needs_a_body_only_when_its_params_do(backend, client, keys):
    member = bearer(keys["a_member"])
    assert client.post("/api/noop/generate", headers=member).status_code == 202
    body = _error(client.post("/api/image/generate", headers=member), 422)
    assert "prompt" in body["errors"]["params"]


def test_a_repeat_with_bad_params_is_refused_not_replayed(backend, client, keys):
    headers = {**bearer(keys["a_member"]), "Idempotency-Key": "once"}
    first = client.post("/api/tasks", json={"type": "sleep", "params": {"seconds": 1}}, headers=headers)
    assert first.status_code == 202
    repeat = client.post("/api/tasks", json={"type": "sleep", "params": {"seconds": "soon"}}, headers=headers)
    assert "params" in _error(repeat, 422)["errors"]
    assert _count() == 1
