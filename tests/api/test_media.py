"""Media helpers: the shipped fonts, the voices of the configured providers, and uploads
(content checked, size limited, scoped to the account, usable as a task source)."""

import hashlib
import io
import uuid

import pytest

from app import models, runtime
from app.extensions import db
from tests import media
from tests.api.conftest import bearer
from tests.fakes import openai_server

pytestmark = pytest.mark.embedded


def _upload(client, key: str, data: bytes, filename: str):
    return client.post(
        "/api/uploads",
        data={"file": (io.BytesIO(data), filename)},
        headers=bearer(key),
        content_type="multipart/form-data",
    )


def test_fonts_are_listed_and_served(backend, client, keys):
    member = bearer(keys["a_member"])
    listed = client.get("/api/fonts", headers=member).get_json()
    assert {f["name"] for f in listed} >= {"open-sans", "lato", "bebas-neue", "dejavu-sans"}
    for font in listed:
        assert font["license"] and font["url"] == f"/api/fonts/{font['name']}"
        served = client.get(font["url"], headers=member)
        # TrueType starts with 00 01 00 00, OpenType CFF with "OTTO".
        assert served.status_code == 200 and served.data[:4] in (b"\x00\x01\x00\x00", b"OTTO"), font["name"]
        served.close()
    missing = client.get("/api/fonts/comic-sans", headers=member)
    assert missing.status_code == 404 and "GET /api/fonts" in missing.get_json()["message"]
    schema = client.get("/api/task-types", headers=member).get_json()
    clip = next(t for t in schema if t["type"] == "video_clip")
    assert set(clip["params_schema"]["properties"]["font_family"]["enum"]) == {f["name"] for f in listed}


def test_voices_of_espeak_without_keys(backend, client, keys):
    answer = client.get("/api/voices", headers=bearer(keys["a_member"])).get_json()
    assert answer["problems"] == []
    providers = {v["provider"] for v in answer["items"]}
    assert providers == {"espeak"}
    assert any(v["id"] == "en-us" for v in answer["items"])


def test_voices_include_openai_when_configured(backend, settings, keys):
    import app as app_package

    with openai_server.OpenAIServer() as server:
        configured = app_package.create_app({**settings, **server.settings()})
        with configured.app_context():
            answer = configured.test_client().get("/api/voices", headers=bearer(keys["a_member"])).get_json()
            db.session.remove()
    assert {v["provider"] for v in answer["items"]} == {"espeak", "openai"}
    assert {"alloy", "nova"} <= {v["id"] for v in answer["items"] if v["provider"] == "openai"}


def test_upload_is_sniffed_stored_and_scoped(backend, client, keys, tmp_path):
    video = media.make_video(tmp_path / "clip.mp4", 1, size=(160, 120)).read_bytes()
    # The name lies; the content decides.
    made = _upload(client, keys["a_member"], video, "../../holiday.txt")
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert body["kind"] == "video" and body["mime"] == "video/mp4" and body["filename"] == "holiday.mp4"
    assert body["size"] == len(video) and body["sha256"] == hashlib.sha256(video).hexdigest()
    assert body["source"] == {"upload_id": body["id"]}
    member = bearer(keys["a_member"])
    assert client.get(f"/api/uploads/{body['id']}", headers=member).get_json()["id"] == body["id"]
    with client.get(body["url"], headers={**member, "Range": "bytes=0-7"}) as part:
        assert part.status_code == 206 and part.data == video[:8]
    listed = client.get("/api/uploads", headers=member).get_json()
    assert [u["id"] for u in listed["items"]] == [body["id"]] and listed["meta"]["total"] == 1
    for stranger in ("b_member", "b_admin"):
        assert client.get(f"/api/uploads/{body['id']}", headers=bearer(keys[stranger])).status_code == 404
        assert client.get(body["url"], headers=bearer(keys[stranger])).status_code == 404
        assert client.delete(f"/api/uploads/{body['id']}", headers=bearer(keys[stranger])).status_code == 404
    row = db.session.get(models.Upload, uuid.UUID(body["id"]))
    assert runtime.current().storage.exists(row.storage_key) and row.storage_key.endswith(".mp4")
    assert client.delete(f"/api/uploads/{body['id']}", headers=member).status_code == 204
    assert not runtime.current().storage.exists(row.storage_key)
    assert client.get(f"/api/uploads/{body['id']}", headers=member).status_code == 404


@pytest.mark.parametrize(
    ("data", "kind", "mime"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "image", "image/png"),
        (b"WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n", "subtitles", "text/vtt"),
        (b"1\n00:00:00,000 --> 00:00:01,000\nhi\n", "subtitles", "application/x-subrip"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(32), "audio", "audio/wav"),
    ],
)
def test_upload_kinds_by_content(backend, client, keys, data, kind, mime):
    made = _upload(client, keys["a_member"], data, "whatever.bin")
    assert made.status_code == 201 and (made.get_json()["kind"], made.get_json()["mime"]) == (kind, mime)


def test_upload_refusals_store_nothing(backend, settings, keys):
    import app as app_package

    small = app_package.create_app({**settings, "CONVEYOR_UPLOAD_MAX_BYTES": "1000"})
    with small.app_context():
        client = small.test_client()
        too_big = _upload(client, keys["a_member"], b"\x89PNG\r\n\x1a\n" + bytes(5000), "big.png")
        assert too_big.status_code == 413 and too_big.get_json()["errors"] == {"file": ["too large"]}
        # Over the limit only by the file, not by the whole body: the storage check catches it.
        near = _upload(client, keys["a_member"], b"\x89PNG\r\n\x1a\n" + bytes(1200), "near.png")
        assert near.status_code == 413
        script = _upload(client, keys["a_member"], b"#!/bin/sh\nrm -rf /\n", "movie.mp4")
        assert script.status_code == 415 and "file" in script.get_json()["errors"]
        missing = client.post("/api/uploads", data={}, headers=bearer(keys["a_member"]))
        assert missing.status_code == 422 and "file" in missing.get_json()["errors"]
        assert db.session.query(models.Upload).count() == 0
        assert runtime.current().storage.list("uploads/") == []
        db.session.remove()


def test_task_source_must_be_an_upload_of_the_account(backend, client, keys, tmp_path):
    video = media.make_video(tmp_path / "clip.mp4", 1, size=(160, 120)).read_bytes()
    mine = _upload(client, keys["a_member"], video, "a.mp4").get_json()
    theirs = _upload(client, keys["b_member"], video, "b.mp4").get_json()
    subtitles = _upload(client, keys["a_member"], b"WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n", "s.vtt").get_json()
    member = bearer(keys["a_member"])
    cases = [
        ({"source": theirs["source"]}, {"source": {"upload_id": ["no such upload in this account"]}}),
        (
            {"source": {"upload_id": subtitles["id"]}},
            {"source": {"upload_id": ["the upload is subtitles; this field takes video"]}},
        ),
        (
            {"source": {**mine["source"], "subtitles_upload_id": mine["id"]}},
            {"source": {"subtitles_upload_id": ["the upload is video; this field takes subtitles"]}},
        ),
    ]
    before = db.session.query(models.Task).count()
    for params, errors in cases:
        refused = client.post("/api/clips/generate", json={"params": params}, headers=member)
        assert refused.status_code == 422, refused.get_json()
        assert refused.get_json()["errors"] == {"params": errors}
    assert db.session.query(models.Task).count() == before
    accepted = client.post("/api/clips/generate", json={"params": {"source": mine["source"]}}, headers=member)
    assert accepted.status_code == 202, accepted.get_json()
