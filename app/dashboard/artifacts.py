"""How the task page shows each artifact inline: video and audio players, images, a quiz
rendered as questions, documentation HTML in a sandboxed frame, JSON pretty-printed, text as
is; anything else as a download link. Artifact files are served with a sandboxing CSP, so an
HTML document (or an SVG) runs no script and reaches nothing of the dashboard's."""

import contextlib
import json

import flask

from app import models, runtime

# Sent with every artifact file: an opened HTML artifact is a sandboxed document.
SANDBOX = (
    "sandbox; default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; "
    "font-src 'self' data:; frame-ancestors 'self'"
)
# Larger JSON or text artifacts are offered as downloads instead of shown.
INLINE_MAX_BYTES = 256 * 1024


def view(artifact: models.Artifact) -> dict:
    """Return how to show `artifact`: its `viewer`, `url`, and `content` when shown as text."""
    viewer = viewer_of(artifact)
    shown = {"artifact": artifact, "viewer": viewer, "url": url(artifact), "content": None}
    if viewer in ("quiz", "json", "text"):
        if artifact.size > INLINE_MAX_BYTES:
            shown["viewer"] = "download"
            return shown
        text = _read(artifact)
        shown["content"] = _content(viewer, text)
        if shown["content"] is None:
            shown.update(viewer="text", content=text)
    return shown


def viewer_of(artifact: models.Artifact) -> str:
    """Return the viewer for an artifact, from its kind and MIME type."""
    mime = (artifact.mime or "").split(";")[0].strip().lower()
    if artifact.kind == "quiz" and mime == "application/json":
        return "quiz"
    for prefix, viewer in (("video/", "video"), ("audio/", "audio"), ("image/", "image")):
        if mime.startswith(prefix):
            return viewer
    if mime == "text/html":
        return "html"
    if mime == "application/json" or mime.endswith("+json"):
        return "json"
    if mime.startswith("text/"):
        return "text"
    return "download"


def url(artifact: models.Artifact) -> str:
    """Return the dashboard URL of the artifact's file."""
    return flask.url_for("dashboard.tasks.artifact_file", task_id=artifact.task_id, artifact_id=artifact.id)


def _read(artifact: models.Artifact) -> str:
    store = runtime.current().storage
    with contextlib.closing(store.read_range(artifact.storage_key)) as chunks:
        return b"".join(chunks).decode("utf-8", errors="replace")


def _content(viewer: str, text: str):
    """Return the parsed content to show, or None to show the text as is."""
    if viewer == "text":
        return text
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    if viewer == "quiz":
        return parsed if isinstance(parsed, dict) and isinstance(parsed.get("questions"), list) else None
    return json.dumps(parsed, indent=2, ensure_ascii=False)
