"""A fake OpenAI-compatible server for tests: chat completions, image generation, speech-to-text
and text-to-speech in OpenAI's wire format, good enough for the real openai SDK.

    from tests.fakes import openai_server

    with openai_server.OpenAIServer() as server:
        settings = {**app_settings, **server.settings()}   # OPENAI_API_KEY, OPENAI_BASE_URL

Default answers (see `tests.fakes` for queue/on/requests):

- `POST /v1/chat/completions`: a chat.completion whose content is `server.chat(body)`; the
  default builds a minimal JSON instance of the request's `json_schema` response format (every
  string "text", number 1, array one item), else answers "ok". Set your own with
  `OpenAIServer(chat=lambda body: {...})` (a str is sent as is, anything else as JSON), or
  queue exact replies with `chat_reply(content, refusal=..., finish_reason=...)`. A request with
  `"stream": true` gets the same answer as `chat_stream(...)` chunks (usage in a last chunk
  when `stream_options.include_usage` is set); `stream_only_error()` is DashScope's refusal of a
  request that does not stream.
- `POST /v1/images/generations`: `n` real PNGs of the requested size (Pillow) as b64_json,
  with `revised_prompt` "Revised: <prompt>".
- `POST /v1/audio/transcriptions` (multipart): `server.transcript_text` spread evenly over the
  uploaded audio's duration (ffprobe; 0.4 s a word if unreadable), as verbose_json with words
  and segments (one per sentence), json or text, as asked.
- `POST /v1/audio/speech`: a sine tone as real wav/pcm/mp3/flac/opus/aac, about 0.3 s a word.
  An unknown voice gets OpenAI's 400.

A request whose bearer key is not `server.api_key` gets OpenAI's 401 (invalid_api_key). Errors
in OpenAI's shape: `error(status, message, code=..., retry_after=...)`, and
`content_policy_error()` for an image refusal.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import re
import time
from collections.abc import Callable
from typing import Any

from PIL import Image

from tests import fakes

DEFAULT_TRANSCRIPT = "Hello and welcome. This is a fake transcript for tests. It ends here."
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse")
_AUDIO_TYPES = {
    "wav": "audio/wav",
    "pcm": "audio/pcm",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "opus": "audio/ogg",
    "aac": "audio/aac",
}
_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error"}


class OpenAIServer(fakes.FakeServer):
    """The fake; `chat` makes chat answers' content from the request body."""

    ROUTES = (
        ("POST", "/v1/chat/completions", "chat_completions"),
        ("POST", "/v1/images/generations", "images"),
        ("POST", "/v1/audio/transcriptions", "transcriptions"),
        ("POST", "/v1/audio/speech", "speech"),
    )

    def __init__(
        self,
        api_key: str = "sk-fake-test-key-0123456789",
        *,
        chat: Callable[[dict], Any] | None = None,
        transcript_text: str = DEFAULT_TRANSCRIPT,
    ):
        super().__init__()
        self.api_key = api_key
        self.chat = chat or example_answer
        self.transcript_text = transcript_text

    def settings(self) -> dict:
        """Return the settings that point the openai adapters at this fake."""
        return {"OPENAI_API_KEY": self.api_key, "OPENAI_BASE_URL": f"{self.url}/v1"}

    def check_auth(self, request: fakes.Request) -> fakes.Response | None:
        if request.headers.get("authorization") == f"Bearer {self.api_key}":
            return None
        given = request.headers.get("authorization", "").removeprefix("Bearer ")
        shown = f"{given[:3]}***{given[-4:]}" if given else "none"
        return error(401, f"Incorrect API key provided: {shown}.", code="invalid_api_key")

    # Default responders
    def chat_completions(self, request: fakes.Request) -> fakes.Response:
        body = request.json or {}
        model = body.get("model", "fake-model")
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return chat_stream(self.chat(body), model=model, usage=usage)
        return chat_reply(self.chat(body), model=model, prompt=body.get("messages"))

    def images(self, request: fakes.Request) -> fakes.Response:
        body = request.json or {}
        if not body.get("prompt"):
            return error(400, "You must provide a prompt.", param="prompt")
        size = body.get("size") or "1024x1024"
        if not re.fullmatch(r"\d{2,4}x\d{2,4}", size):
            return error(400, f"Invalid value: '{size}'. Supported values are: '1024x1024', ...", param="size")
        image = {"b64_json": base64.b64encode(png(size)).decode(), "revised_prompt": f"Revised: {body['prompt']}"}
        return fakes.Response(json={"created": int(time.time()), "data": [image] * int(body.get("n") or 1)})

    def transcriptions(self, request: fakes.Request) -> fakes.Response:
        if "file" not in request.files:
            return error(400, "You must provide a file.", param="file")
        duration = fakes.media_duration(request.files["file"][1])
        answer = transcription(self.transcript_text, duration)
        form = request.form.get("response_format", "json")
        if form == "verbose_json":
            return fakes.Response(json=answer)
        if form == "json":
            return fakes.Response(json={"text": answer["text"]})
        return fakes.Response(body=answer["text"].encode(), content_type="text/plain")

    def speech(self, request: fakes.Request) -> fakes.Response:
        body = request.json or {}
        if body.get("voice") not in VOICES:
            return error(400, f"Invalid value for 'voice': {body.get('voice')!r}.", param="voice")
        form = body.get("response_format") or "mp3"
        if form not in _AUDIO_TYPES:
            return error(400, f"Invalid value for 'response_format': {form!r}.", param="response_format")
        words = len(str(body.get("input", "")).split())
        seconds = round(min(30.0, max(0.5, 0.3 * words / float(body.get("speed") or 1.0))), 1)
        return fakes.Response(body=fakes.encoded(form, seconds, 24000), content_type=_AUDIO_TYPES[form])


def chat_reply(
    content: Any,
    *,
    model: str = "fake-model",
    refusal: str | None = None,
    finish_reason: str = "stop",
    prompt: Any = None,
) -> fakes.Response:
    """Return a chat.completion answer; `content` is sent as is if a str, else as JSON."""
    text = content if isinstance(content, str) or content is None else json.dumps(content)
    if refusal is not None:
        text = None
    prompt_tokens = len(json.dumps(prompt).split()) if prompt else 10
    completion_tokens = len((text or refusal or "").split())
    message = {"role": "assistant", "content": text, "refusal": refusal, "annotations": []}
    return fakes.Response(
        json={
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "system_fingerprint": "fp_fake",
        }
    )


def chat_stream(
    content: Any,
    *,
    model: str = "fake-model",
    refusal: str | None = None,
    finish_reason: str = "stop",
    usage: bool = True,
    pieces: int = 3,
) -> fakes.Response:
    """Return a chat answer as server-sent `chat.completion.chunk` events ending in `[DONE]`, in
    OpenAI's streaming shape: a first delta with the role, the content (or refusal) split into
    `pieces` deltas, a delta with the finish_reason, then, if `usage`, a chunk with no choices
    and the usage (what `stream_options: {"include_usage": true}` adds)."""
    text = content if isinstance(content, str) or content is None else json.dumps(content)
    said = refusal if refusal is not None else text or ""
    size = max(1, -(-len(said) // pieces))
    key = "refusal" if refusal is not None else "content"
    deltas = [{"role": "assistant", "content": ""}] + [{key: said[i : i + size]} for i in range(0, len(said), size)]
    choices = [[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}] for delta in deltas]
    choices.append([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish_reason}])
    head = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
    chunks = [{**head, "choices": c} for c in choices]
    if usage:
        words = len(said.split())
        chunks.append(
            {
                **head,
                "choices": [],
                "usage": {"prompt_tokens": 10, "completion_tokens": words, "total_tokens": 10 + words},
            }
        )
    return sse(chunks)


def sse(events: list[dict]) -> fakes.Response:
    """Return `events` as a `text/event-stream` body of `data:` lines ending in `data: [DONE]`."""
    lines = [f"data: {json.dumps(event)}\n\n" for event in events] + ["data: [DONE]\n\n"]
    return fakes.Response(body="".join(lines).encode(), content_type="text/event-stream")


# Alibaba DashScope's answer to a request without `stream: true` for a model that only streams
# (e.g. qwq-plus), as users quote it in FoundationAgents/OpenManus#216 and infiniflow/ragflow#5912.
STREAM_ONLY_MESSAGE = "This model only support stream mode, please enable the stream parameter to access the model. "


def stream_only_error() -> fakes.Response:
    """Return DashScope's 400 refusing a request that does not stream."""
    payload = {
        "error": {
            "code": "invalid_parameter_error",
            "param": None,
            "message": STREAM_ONLY_MESSAGE,
            "type": "invalid_request_error",
        },
        "id": "chatcmpl-7ed765de-de61-9a89-87f2-da9f2e39f825",
        "request_id": "7ed765de-de61-9a89-87f2-da9f2e39f825",
    }
    return fakes.Response(400, json=payload)


def error(
    status: int,
    message: str,
    *,
    type: str | None = None,
    code: str | None = None,
    param: str | None = None,
    retry_after: float | None = None,
    headers: dict[str, str] | None = None,
) -> fakes.Response:
    """Return an error answer in OpenAI's shape: {"error": {message, type, param, code}}."""
    headers = dict(headers or {})
    if retry_after is not None:
        headers["Retry-After"] = f"{retry_after:g}"
    kind = type or _ERROR_TYPES.get(status) or ("requests" if status == 429 else "server_error")
    payload = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return fakes.Response(status, json=payload, headers=headers)


def content_policy_error(
    message: str = "Your request was rejected as a result of our safety system.",
) -> fakes.Response:
    """Return the 400 OpenAI sends when an image prompt breaks its content policy."""
    return error(400, message, type="invalid_request_error", code="content_policy_violation")


def transcription(text: str, duration: float | None) -> dict:
    """Return a verbose_json transcription of `text`, its words spread evenly over `duration`."""
    words = text.split()
    step = (duration / len(words)) if duration and words else 0.4
    duration = duration or round(step * len(words), 3)
    timed = [
        {"word": w.strip(".,!?"), "start": round(i * step, 3), "end": round((i + 1) * step, 3)}
        for i, w in enumerate(words)
    ]
    segments, first = [], 0
    for i, word in enumerate(words):
        if word.endswith((".", "!", "?")) or i == len(words) - 1:
            segments.append(_segment(len(segments), " ".join(words[first : i + 1]), first * step, (i + 1) * step))
            first = i + 1
    return {
        "task": "transcribe",
        "language": "english",
        "duration": duration,
        "text": text,
        "words": timed,
        "segments": segments,
    }


def example_answer(body: dict) -> Any:
    """Return a minimal instance of the request's JSON schema response format, else "ok"."""
    form = body.get("response_format") or {}
    schema = (form.get("json_schema") or {}).get("schema") if isinstance(form, dict) else None
    if not schema:
        return "ok"
    return example(schema, schema.get("$defs", {}))


def example(schema: dict, defs: dict) -> Any:
    """Return a minimal value valid for a (strict, OpenAI-style) JSON schema."""
    if "$ref" in schema:
        return example(defs[schema["$ref"].rsplit("/", 1)[1]], defs)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return example(schema[key][0], defs)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type", "object")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        return {name: example(sub, defs) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [example(schema.get("items", {}), defs) for _ in range(max(1, schema.get("minItems", 1)))]
    return {"string": "text", "integer": 1, "number": 1.0, "boolean": True, "null": None}[kind]


@functools.cache
def png(size: str) -> bytes:
    """Return a real PNG of `size` ("WxH"), a flat colour."""
    width, height = (int(n) for n in size.split("x"))
    out = io.BytesIO()
    Image.new("RGB", (width, height), (40, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def _segment(index: int, text: str, start: float, end: float) -> dict:
    return {
        "id": index,
        "seek": 0,
        "start": round(start, 3),
        "end": round(end, 3),
        "text": " " + text,
        "tokens": [],
        "temperature": 0.0,
        "avg_logprob": -0.2,
        "compression_ratio": 1.2,
        "no_speech_prob": 0.01,
    }
