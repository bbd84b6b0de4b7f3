"""Artifact listing and download, with HTTP Range so a browser can seek in a video; deleting a
task removes its files."""

import pathlib

import pytest

from app import models, runtime
from app.extensions import db
from app.services import tasks as task_service
from tests.api.conftest import bearer

pytestmark = pytest.mark.embedded


def _finished_task_with_artifact(caller_key: str, client) -> tuple[str, str, bytes, pathlib.Path]:
    """A task that ended with one stored artifact, as the runner leaves it (row and file)."""
    task_id = client.post("/api/tasks", json={"type": "noop"}, headers=bearer(caller_key)).get_json()["task_id"]
    task = db.session.get(models.Task, task_service.get(task_id, None).id)
    task.status, task.finished_at = "succeeded", models.utcnow()
    content = bytes(range(256)) * 40
    root = pathlib.Path(runtime.current().settings["CONVEYOR_VAR_DIR"]) / "artifacts"
    path = root / task_id / "1" / "clip.mp4"
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    artifact = models.Artifact(
        task_id=task.id,
        attempt=1,
        kind="video",
        name="clip.mp4",
        storage_key=f"{task_id}/1/clip.mp4",
        mime="video/mp4",
        size=len(content),
        meta={"duration": 1.5},
    )
    db.session.add(artifact)
    db.session.commit()
    return task_id, str(artifact.id), content, path


def test_list_download_and_range(backend, client, keys):
    member = bearer(keys["a_member"])
    task_id, artifact_id, content, _ = _finished_task_with_artifact(keys["a_member"], client)
    listed = client.get(f"/api/tasks/{task_id}/artifacts", headers=member).get_json()
    assert [(a["name"], a["size"], a["metadata"]) for a in listed] == [("clip.mp4", len(content), {"duration": 1.5})]
    assert listed[0]["url"] == f"/api/tasks/{task_id}/artifacts/{artifact_id}"
    with client.get(listed[0]["url"], headers=member) as whole:
        assert whole.status_code == 200 and whole.data == content and whole.mimetype == "video/mp4"
        assert whole.headers["Accept-Ranges"] == "bytes"
    with client.get(listed[0]["url"], headers={**member, "Range": "bytes=100-199"}) as part:
        assert part.status_code == 206 and part.data == content[100:200]
        assert part.headers["Content-Range"] == f"bytes 100-199/{len(content)}"
    with client.get(listed[0]["url"], headers={**member, "Range": f"bytes={len(content) + 10}-"}) as beyond:
        assert beyond.status_code == 416
    assert client.get(listed[0]["url"], headers=bearer(keys["b_member"])).status_code == 404


def test_delete_removes_rows_and_files(backend, client, keys):
    task_id, _artifact_id, _content, path = _finished_task_with_artifact(keys["a_member"], client)
    assert client.delete(f"/api/tasks/{task_id}", headers=bearer(keys["a_member"])).status_code == 204
    assert not path.exists() and not path.parent.parent.exists()
    db.session.rollback()
    assert db.session.query(models.Artifact).count() == 0
    assert db.session.query(models.TaskEvent).count() == 0
