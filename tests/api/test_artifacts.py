"""Artifact listing and download, with HTTP Range so a browser can seek in a video; deleting a
task removes its files."""

import pytest

from app import models, runtime
from app.extensions import db
from app.services import tasks as task_service
from tests.api.conftest import bearer

pytestmark = pytest.mark.embedded


def _finished_task_with_artifact(caller_key: str, client, tmp_path) -> tuple[str, str, bytes, str]:
    """A task that ended with one stored artifact, as the runner leaves it (row and object)."""
    task_id = client.post("/api/tasks", json={"type": "noop"}, headers=bearer(caller_key)).get_json()["task_id"]
    task = db.session.get(models.Task, task_service.get(task_id, None).id)
    task.status, task.finished_at = "succeeded", models.utcnow()
    content = bytes(range(256)) * 40
    made = tmp_path / "clip.mp4"
    made.write_bytes(content)
    key = f"tasks/{task_id}/1/clip.mp4"
    runtime.current().storage.put_file(key, made, mime="video/mp4")
    artifact = models.Artifact(
        task_id=task.id,
        attempt=1,
        kind="video",
        name="clip.mp4",
        storage_key=key,
        mime="video/mp4",
        size=len(content),
        meta={"duration": 1.5},
    )
    db.session.add(artifact)
    db.session.commit()
    return task_id, str(artifact.id), content, key


def test_list_download_and_range(backend, client, keys, tmp_path):
    member = bearer(keys["a_member"])
    task_id, artifact_id, content, _ = _finished_task_with_artifact(keys["a_member"], client, tmp_path)
    listed = client.get(f"/api/tasks/{task_id}/artifacts", headers=member).get_json()
    assert [(a["name"], a["size"], a["metadata"]) for a in listed] == [("clip.mp4", len(content), {"duration": 1.5})]
    assert listed[0]["url"] == f"/api/tasks/{task_id}/artifacts/{artifact_id}"
    with client.get(listed[0]["url"], headers=member) as whole:
        assert whole.status_code == 200 and whole.data == content and whole.mimetype == "video/mp4"
        assert whole.headers["Accept-Ranges"] == "bytes"
    with client.get(listed[0]["url"], headers={**member, "Range": "bytes=100-199"}) as part:
        assert part.status_code == 206 and part.data == content[100:200]
        assert part.headers["Content-Range"] == f"bytes 100-199/{len(content)}"
    with client.get(listed[0]["url"], headers={**member, "Range": "bytes=-10"}) as tail:
        assert tail.status_code == 206 and tail.data == content[-10:]
    with client.get(listed[0]["url"], headers={**member, "Range": "bytes=0-0", "If-Range": '"stale"'}) as stale:
        assert stale.status_code == 200 and stale.data == content  # a changed file: send it whole
    with client.get(listed[0]["url"], headers={**member, "Range": f"bytes={len(content) + 10}-"}) as beyond:
        assert beyond.status_code == 416 and beyond.get_json()["code"] == "requested_range_not_satisfiable"
        assert beyond.headers["Content-Range"] == f"bytes */{len(content)}"
    assert client.get(listed[0]["url"], headers=bearer(keys["b_member"])).status_code == 404


def test_delete_removes_rows_and_files(backend, client, keys, tmp_path):
    task_id, _artifact_id, _content, key = _finished_task_with_artifact(keys["a_member"], client, tmp_path)
    assert runtime.current().storage.exists(key)
    assert client.delete(f"/api/tasks/{task_id}", headers=bearer(keys["a_member"])).status_code == 204
    assert not runtime.current().storage.exists(key)
    assert runtime.current().storage.list(f"tasks/{task_id}/") == []
    db.session.rollback()
    assert db.session.query(models.Artifact).count() == 0
    assert db.session.query(models.TaskEvent).count() == 0
