"""Media helpers: the caption fonts (`/api/fonts`), the voices of the configured speech
providers (`/api/voices`) and uploads (`/api/uploads`), whose reference a task takes as its
`source`."""

import flask

from app import runtime
from app.api import auth, files, parsing, schemas
from app.api import tasks as tasks_api
from app.api.errors import ErrorSchema
from app.services import errors as service_errors
from app.services import uploads as upload_service
from processors import fonts
from processors.providers import voices

blueprint = parsing.Blueprint("media", __name__, url_prefix="/api", description="Fonts, voices and uploads")
blueprint.before_request(auth.authenticate)

# Room for the multipart envelope around the file; the file itself is held to the exact limit.
MULTIPART_SLACK = 64 * 1024
UPLOAD_NOT_FOUND = {"description": "no such upload in your account"}
FILE = {"schema": {"type": "string", "format": "binary"}}


@blueprint.route("/fonts", methods=["GET"])
@blueprint.response(200, schemas.Font(many=True))
def list_fonts():
    """The caption fonts shipped with Conveyor (open-licensed)"""
    return list(fonts.FONTS.values())


@blueprint.route("/fonts/<name>", methods=["GET"])
@blueprint.response(200, description="the font file")
@blueprint.alt_response(404, schema=ErrorSchema, description="no such font")
@blueprint.doc(responses={200: {"content": {mime: FILE for mime in ("font/ttf", "font/otf")}}})
def font_file(name: str):
    """Download a caption font's file (for previews with CSS `@font-face`)"""
    font = fonts.FONTS.get(name)
    if font is None:
        flask.abort(404, f"no font {name!r}; GET /api/fonts lists them")
    return flask.send_file(font.path, mimetype=font.mime, download_name=font.file, max_age=86400)


@blueprint.route("/voices", methods=["GET"])
@blueprint.response(200, schemas.VoiceList)
def list_voices():
    """The voices of the configured speech providers (espeak-ng always; OpenAI and ElevenLabs
    when their keys are set)"""
    found = voices.list_voices(runtime.current().settings)
    return {"items": found.voices, "problems": found.problems}


@blueprint.route("/uploads", methods=["POST"])
@blueprint.arguments(schemas.UploadForm(), location="files")
@blueprint.response(201, schemas.Upload)
@blueprint.alt_response(413, schema=ErrorSchema, description="larger than CONVEYOR_UPLOAD_MAX_BYTES")
@blueprint.alt_response(415, schema=ErrorSchema, description="not a video, audio, image or subtitle file")
def upload(form: dict):
    """Upload a source file (multipart field `file`); use the answer's `source` as a task's
    `source` param. The content decides the kind, not the name."""
    _refuse_other_parts()
    caller = auth.caller()
    given = form["file"]
    return upload_service.create(
        given.stream, given.filename or "", account_id=caller.account_id, user_id=caller.user_id
    )


def _refuse_other_parts() -> None:
    # The form has one part, `file`: another is a 422 naming it, as unknown JSON fields are.
    others = sorted(set(flask.request.form) | (set(flask.request.files) - {"file"}))
    if others:
        unknown = {name: ["Unknown field."] for name in others}
        raise service_errors.Invalid("invalid request: " + ", ".join(others), unknown)


@blueprint.before_request
def _limit_upload_body():
    # Set before the form is parsed, so an oversized body is refused as it arrives (413).
    if flask.request.endpoint == "media.upload":
        limit = runtime.current().settings["CONVEYOR_UPLOAD_MAX_BYTES"]
        flask.request.max_content_length = limit + MULTIPART_SLACK


@blueprint.route("/uploads", methods=["GET"])
@blueprint.arguments(schemas.PageQuery(), location="query")
@blueprint.response(200, schemas.UploadPage)
def list_uploads(query: dict):
    """Your account's uploads, newest first"""
    account_id = auth.caller().account_id
    page, size = query["page"], query["page_size"]
    total = upload_service.count(account_id)
    items = upload_service.find(account_id, limit=size, offset=(page - 1) * size)
    return tasks_api.page_body(items, page, size, total)


@blueprint.route("/uploads/<upload_id>", methods=["GET"])
@blueprint.response(200, schemas.Upload)
@blueprint.alt_response(404, schema=ErrorSchema, **UPLOAD_NOT_FOUND)
def get_upload(upload_id: str):
    """Read an upload's description"""
    return upload_service.get(upload_id, auth.caller().account_id)


@blueprint.route("/uploads/<upload_id>/file", methods=["GET"])
@blueprint.response(200, description="the file, with the type its content says; `Range` requests get 206")
@blueprint.alt_response(404, schema=ErrorSchema, **UPLOAD_NOT_FOUND)
@blueprint.doc(responses={200: {"content": {"*/*": FILE}}})
def upload_file(upload_id: str):
    """Download an uploaded file (HTTP Range supported)"""
    found = upload_service.get(upload_id, auth.caller().account_id)
    return files.send(runtime.current().storage, found.storage_key, found.mime, found.filename, found.sha256[:32])


@blueprint.route("/uploads/<upload_id>", methods=["DELETE"])
@blueprint.response(204)
@blueprint.alt_response(404, schema=ErrorSchema, **UPLOAD_NOT_FOUND)
def delete_upload(upload_id: str):
    """Delete an upload (tasks that already copied it are not affected)"""
    upload_service.delete(upload_id, auth.caller().account_id)
