"""OpenAI-compatible services through the openai SDK: structured chat answers, images,
speech-to-text with word timestamps, and text-to-speech.

One `base_url` serves OpenAI, Azure, Ollama, vLLM or llama.cpp. Settings: OPENAI_API_KEY,
OPENAI_BASE_URL (unset: api.openai.com), CONVEYOR_PROVIDER_TIMEOUT_SECONDS,
CONVEYOR_PROVIDER_RETRIES and the default models CONVEYOR_LLM_MODEL, CONVEYOR_IMAGE_MODEL,
CONVEYOR_STT_MODEL, CONVEYOR_TTS_MODEL. Every call goes through `retry.call` with the SDK's own
retries off; failures come out as RetryableError or PermanentError.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import io
import json
import pathlib
import re
import tempfile
from collections.abc import Iterator
from typing import Any, TypeVar

import openai
import pydantic
from openai.lib._parsing._completions import type_to_response_format_param
from PIL import Image

from processors import base, errors
from processors.providers import ffmpeg, retry
from processors.providers import voices as _voices

M = TypeVar("M", bound=pydantic.BaseModel)

# The voices of OpenAI's speech endpoint; compatible servers may offer others, which `speak`
# passes through unchecked.
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class InvalidAnswer(errors.PermanentError):
    """The model's answer is not valid JSON for the requested schema."""

    def __init__(self, problems: list[str], content: str | None = None, usage: dict | None = None):
        super().__init__("the model's answer does not match the schema: " + "; ".join(problems))
        self.problems = problems
        self.content = content
        self.usage = usage or {}


@dataclasses.dataclass(frozen=True)
class ChatAnswer:
    """A validated structured answer, its token usage and the model that gave it."""

    value: Any
    usage: dict
    model: str
    content: str


@dataclasses.dataclass(frozen=True)
class GeneratedImage:
    png_bytes: bytes
    revised_prompt: str | None
    model: str


@dataclasses.dataclass(frozen=True)
class Word:
    text: str
    start: float
    end: float


@dataclasses.dataclass(frozen=True)
class Segment:
    text: str
    start: float
    end: float


@dataclasses.dataclass(frozen=True)
class Transcript:
    """Speech-to-text output; times are float seconds from the start of the audio."""

    text: str
    language: str | None
    duration: float | None
    words: list[Word]
    segments: list[Segment]


@contextlib.contextmanager
def client(settings: dict) -> Iterator[openai.OpenAI]:
    """Yield an SDK client for the configured server, with the SDK's own retries off."""
    key = settings.get("OPENAI_API_KEY")
    if not key:
        # Servers that check no key (Ollama, llama.cpp) still need some value here.
        raise errors.PermanentError("OPENAI_API_KEY is not set (any value works for a server that needs no key)")
    sdk = openai.OpenAI(
        api_key=key,
        base_url=settings.get("OPENAI_BASE_URL") or None,
        timeout=float(settings.get("CONVEYOR_PROVIDER_TIMEOUT_SECONDS", 120.0)),
        max_retries=0,
    )
    with sdk:
        yield sdk


# How a structured answer is asked for, best first: a strict JSON schema (OpenAI, vLLM, recent
# llama.cpp and Ollama), JSON mode with the schema in the prompt (servers that answer
# `response_format type must be one of "text" or "json_object"`), the schema in the prompt
# alone (servers that accept neither, e.g. LM Studio's "'response_format.type' must be
# 'json_schema' or 'text'" for JSON mode, or older builds). A server's refusal moves it down for
# the rest of the process; every answer is validated against the schema either way.
FORMATS = ("json_schema", "json_object", "prompt")
_FORMAT_OF: dict[str, str] = {}
SCHEMA_PROMPT = (
    "Answer with one JSON object only, no prose and no code fence, that validates against this JSON Schema:\n{schema}"
)
# Servers that answer only streamed requests (DashScope's "This model only support stream mode,
# please enable the stream parameter"): asked with stream=True from their first refusal on.
_STREAM_ONLY: set[str] = set()
_STREAM_REFUSAL = re.compile(r"only supports? stream|enable the stream", re.IGNORECASE)


def chat_json(
    settings: dict,
    messages: list[dict],
    model_class: type[M],
    *,
    model: str | None = None,
    ctx: base.Context | None = None,
) -> ChatAnswer:
    """Ask for an answer as JSON matching `model_class`; return it validated.

    messages: chat messages ({"role": ..., "content": ...}).
    model_class: a pydantic model; its JSON schema is sent as a strict `json_schema` format.
    model: overrides CONVEYOR_LLM_MODEL.
    The answer may come as one chat.completion or as streamed chunks (servers that stream
    whatever was asked, or that take only streamed requests); either is read the same way.
    Raises InvalidAnswer (a PermanentError with `.problems`) when the answer does not validate,
    PermanentError with the provider's text on a refusal, and the `retry.call` errors.
    """
    model = model or settings["CONVEYOR_LLM_MODEL"]
    server = settings.get("OPENAI_BASE_URL") or "openai"
    with client(settings) as sdk:
        for form in FORMATS[FORMATS.index(_FORMAT_OF.get(server, FORMATS[0])) :]:
            request = _request(form, model, messages, model_class)
            try:
                body = retry.call(
                    lambda form=form, request=request: _ask(sdk, server, form, request),
                    settings,
                    what="openai chat",
                    ctx=ctx,
                )
            except _FormatRefused as refused:
                if ctx is not None:
                    ctx.log(
                        f"openai chat: the server refused response_format {form}; trying the next way",
                        answer=str(refused),
                    )
                continue
            _FORMAT_OF[server] = form
            return _answer(body, model_class, model)
    raise errors.PermanentError("openai chat: the server refused every way of asking for JSON: " + ", ".join(FORMATS))


class _FormatRefused(Exception):
    """The server does not take this `response_format` (not a provider failure: not retried)."""


def _request(form: str, model: str, messages: list[dict], model_class: type[M]) -> dict:
    """Return the chat request's arguments for one way of asking for JSON."""
    if form == "json_schema":
        # The same strict schema `chat.completions.parse(response_format=model_class)` sends.
        return {"model": model, "messages": messages, "response_format": type_to_response_format_param(model_class)}
    schema = json.dumps(model_class.model_json_schema(), separators=(",", ":"))
    asked = [*messages, {"role": "system", "content": SCHEMA_PROMPT.format(schema=schema)}]
    options = {"response_format": {"type": "json_object"}} if form == "json_object" else {}
    return {"model": model, "messages": asked, **options}


def _ask(sdk: openai.OpenAI, server: str, form: str, request: dict) -> dict:
    """Send one chat request; return the answer as a chat.completion body."""
    try:
        return _post(sdk, server, request)
    except openai.APIStatusError as exc:
        if form != "prompt" and exc.status_code in (400, 422, 500, 501) and _refuses_the_type(exc, form):
            raise _FormatRefused(str(exc)[:500]) from exc
        raise


def _post(sdk: openai.OpenAI, server: str, request: dict) -> dict:
    """Post a chat request, streamed if the server takes only that; return the answer body."""
    if server not in _STREAM_ONLY:
        try:
            return _body(sdk.chat.completions.with_raw_response.create(**request).http_response)
        except openai.APIStatusError as exc:
            if exc.status_code != 400 or not _STREAM_REFUSAL.search(_error_text(exc)):
                raise
            _STREAM_ONLY.add(server)
    raw = sdk.chat.completions.with_raw_response.create(**request, stream=True, stream_options={"include_usage": True})
    return _body(raw.http_response)


def _refuses_the_type(exc: openai.APIStatusError, form: str) -> bool:
    """Whether the error says the server does not take this kind of `response_format` (not that
    it takes it and finds fault with our schema, which OpenAI words "Invalid schema for ...")."""
    text = _error_text(exc).lower()
    if "invalid schema" in text:
        return False
    return form in text or "response_format.type" in text or "response_format type" in text


def _error_text(exc: openai.APIStatusError) -> str:
    return f"{exc.message} {exc.response.text if exc.response is not None else ''}"


def _body(response: Any) -> dict:
    """Return a chat answer (the SDK's raw HTTP response) as one chat.completion body, joining
    the chunks of a streamed one."""
    text = response.read().decode("utf-8", errors="replace")
    if "text/event-stream" in response.headers.get("content-type", "") or text.lstrip().startswith("data:"):
        return _joined(_events(text))
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise InvalidAnswer(["the answer is not JSON: " + text[:200]], text) from exc
    return body if isinstance(body, dict) else {}


def _events(text: str) -> Iterator[dict]:
    """Yield the JSON objects of a server-sent event stream's `data:` lines, up to `[DONE]`."""
    for line in text.splitlines():
        if not line.startswith("data:"):
            continue  # comments, `event:` and `id:` lines, and the blank lines between events
        data = line[len("data:") :].strip()
        if data == "[DONE]":
            return
        with contextlib.suppress(ValueError):
            event = json.loads(data)
            if isinstance(event, dict):
                yield event


def _joined(chunks: Iterator[dict]) -> dict:
    """Join chat.completion.chunk events into one chat.completion body: the first choice's
    content and refusal deltas in order, its last finish_reason, and the usage of the chunk
    that carries it (the last one, with stream_options include_usage)."""
    content, refusal, body = [], [], {"model": None, "usage": None}
    finish_reason = None
    for chunk in chunks:
        body["model"] = chunk.get("model") or body["model"]
        body["usage"] = chunk.get("usage") or body["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            content.append(delta.get("content") or "")
            refusal.append(delta.get("refusal") or "")
            finish_reason = choice.get("finish_reason") or finish_reason
    message = {"content": "".join(content) or None, "refusal": "".join(refusal) or None}
    return {**body, "choices": [{"message": message, "finish_reason": finish_reason}]}


def _answer(body: dict, model_class: type[M], model: str) -> ChatAnswer:
    """Validate a chat.completion body's first answer against `model_class`."""
    choices = body.get("choices") or [{}]
    message, finish_reason = choices[0].get("message") or {}, choices[0].get("finish_reason")
    content, usage = message.get("content"), _usage(body)
    if finish_reason == "length":
        raise InvalidAnswer(["the answer was cut off at the token limit"], content, usage)
    if finish_reason == "content_filter":
        raise errors.PermanentError("openai chat: the answer was withheld by the content filter")
    if message.get("refusal"):
        raise errors.PermanentError(f"openai chat: the model refused: {message['refusal']}")
    if not isinstance(content, str) or not content.strip():
        raise InvalidAnswer(["the answer was empty"], content, usage)
    try:
        value = model_class.model_validate_json(_unfenced(content))
    except pydantic.ValidationError as exc:
        raise InvalidAnswer(_problems(exc), content, usage) from exc
    return ChatAnswer(value, usage, body.get("model") or model, content)


def _unfenced(content: str) -> str:
    """Return the JSON inside a ```json fence, or the content as is."""
    text = content.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text.strip()


def generate_image(
    settings: dict,
    prompt: str,
    *,
    size: str,
    quality: str | None = None,
    style: str | None = None,
    model: str | None = None,
    ctx: base.Context | None = None,
) -> GeneratedImage:
    """Generate one image for `prompt` and return it as PNG bytes with the revised prompt.

    size: e.g. "1024x1024". quality, style: passed through when given ("hd", "vivid", ...).
    model: overrides CONVEYOR_IMAGE_MODEL.
    Raises PermanentError with the provider's message on a content-policy refusal.
    """
    model = model or settings["CONVEYOR_IMAGE_MODEL"]
    options: dict[str, Any] = {"model": model, "prompt": prompt, "size": size, "n": 1}
    options.update({k: v for k, v in {"quality": quality, "style": style}.items() if v})
    if not model.startswith("gpt-image"):
        options["response_format"] = "b64_json"  # gpt-image models always answer base64 and refuse the option
    with client(settings) as sdk:
        answer = retry.call(lambda: sdk.images.generate(**options), settings, what="openai image", ctx=ctx)
    image = (answer.data or [None])[0]
    if image is None or not image.b64_json:
        raise errors.PermanentError("openai image: the answer held no base64 image (does the server support b64_json?)")
    return GeneratedImage(_png(image.b64_json), image.revised_prompt, model)


def transcribe(
    settings: dict,
    audio_path: str | pathlib.Path,
    *,
    language: str | None = None,
    model: str | None = None,
    ctx: base.Context | None = None,
) -> Transcript:
    """Transcribe an audio file with word and segment timestamps.

    language: an ISO-639-1 hint ("en"); None lets the service detect it.
    model: overrides CONVEYOR_STT_MODEL.
    """
    audio_path = pathlib.Path(audio_path)
    if not audio_path.is_file():
        raise errors.PermanentError(f"openai transcription: {audio_path} does not exist")
    options: dict[str, Any] = {"model": model or settings["CONVEYOR_STT_MODEL"]}
    if language:
        options["language"] = language

    def request() -> Any:
        # Opened per attempt: a retry must send the whole file again.
        with audio_path.open("rb") as audio:
            return sdk.audio.transcriptions.create(
                file=audio, response_format="verbose_json", timestamp_granularities=["word", "segment"], **options
            )

    with client(settings) as sdk:
        answer = retry.call(request, settings, what="openai transcription", ctx=ctx)
    return _transcript(answer)


def speak(
    settings: dict,
    text: str,
    voice: str,
    out_path: str | pathlib.Path,
    *,
    model: str | None = None,
    speed: float = 1.0,
    response_format: str = "wav",
    ctx: base.Context | None = None,
) -> pathlib.Path:
    """Speak `text` with `voice` into `out_path` (audio in `response_format`); return the path.

    voice: one of VOICES, or any voice the server has (Kokoro-FastAPI's "af_bella", ...).
    speed: 0.25-4.0. model: overrides CONVEYOR_TTS_MODEL.
    A server that answers another container when asked for wav gets converted with ffmpeg, so
    a wav asked for is always a real wav.
    """
    options = {
        "model": model or settings["CONVEYOR_TTS_MODEL"],
        "input": text,
        "voice": voice,
        "speed": speed,
        "response_format": response_format,
    }
    with client(settings) as sdk:
        answer = retry.call(lambda: sdk.audio.speech.create(**options), settings, what="openai speech", ctx=ctx)
    audio = answer.content
    if not audio:
        raise errors.RetryableError("openai speech: the answer held no audio")
    if response_format == "wav" and not _is_wav(audio):
        return _as_wav(audio, pathlib.Path(out_path), ctx)
    return _write(pathlib.Path(out_path), audio)


def voices() -> list[_voices.Voice]:
    """Return OpenAI's speech voices."""
    return [_voices.Voice(id=name, name=name.title(), provider="openai") for name in VOICES]


def _usage(body: Any) -> dict:
    usage = body.get("usage") if isinstance(body, dict) else None
    usage = usage if isinstance(usage, dict) else {}
    return {key: usage.get(key) for key in ("prompt_tokens", "completion_tokens", "total_tokens")}


def _problems(exc: pydantic.ValidationError) -> list[str]:
    """Return one readable line per validation error, e.g. "questions.0.answer: Field required"."""
    problems = []
    for item in exc.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "answer"
        problems.append(f"{where}: {item['msg']}")
    return problems


def _png(b64: str) -> bytes:
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise errors.PermanentError("openai image: the image is not valid base64") from exc
    if data.startswith(_PNG_SIGNATURE):
        return data
    # Some servers answer JPEG or WebP whatever was asked: convert, so callers always get PNG.
    try:
        with Image.open(io.BytesIO(data)) as picture:
            out = io.BytesIO()
            picture.save(out, format="PNG")
    except OSError as exc:
        raise errors.PermanentError("openai image: the answer is not a readable image") from exc
    return out.getvalue()


def _transcript(answer: Any) -> Transcript:
    """Read a transcription answer: verbose_json with words and segments, verbose_json with
    segments only (vLLM, whisper.cpp, LocalAI, faster-whisper servers: words are then spread
    over each segment) or plain `{"text": ...}` (no timings at all)."""
    segments = [
        Segment(s.text.strip(), float(s.start), float(s.end))
        for s in (getattr(answer, "segments", None) or [])
        if s.start is not None and s.end is not None
    ]
    given = getattr(answer, "words", None) or []
    words = [Word(w.word, float(w.start), float(w.end)) for w in given] or _spread(segments)
    duration = getattr(answer, "duration", None)
    return Transcript(
        text=answer.text,
        language=getattr(answer, "language", None),
        duration=float(duration) if duration is not None else None,
        words=words,
        segments=segments,
    )


def _spread(segments: list[Segment]) -> list[Word]:
    """Time each segment's words evenly over the segment's span (an estimate, for servers that
    give no word timestamps)."""
    words = []
    for segment in segments:
        texts = segment.text.split()
        step = (segment.end - segment.start) / len(texts) if texts else 0.0
        words += [Word(t, segment.start + i * step, segment.start + (i + 1) * step) for i, t in enumerate(texts)]
    return words


def _is_wav(audio: bytes) -> bool:
    return audio[:4] == b"RIFF" and audio[8:12] == b"WAVE"


def _as_wav(audio: bytes, out_path: pathlib.Path, ctx: base.Context | None) -> pathlib.Path:
    """Write `audio` (mp3, ogg, ... bytes) converted to a 16-bit PCM wav at `out_path`."""
    with tempfile.TemporaryDirectory(prefix="openai-speech-") as scratch:
        source = pathlib.Path(scratch, "answer.audio")
        source.write_bytes(audio)
        # Without a task's context the conversion still runs, in a context of its own.
        ctx = ctx or base.Context("openai-speech", 1, pathlib.Path(scratch, "work"))
        converted = ffmpeg.to_audio(source, pathlib.Path(scratch, "answer.wav"), "wav", ctx)
        return _write(out_path, converted.read_bytes())


def _write(path: pathlib.Path, data: bytes) -> pathlib.Path:
    # Write beside the target and rename, so a reader never sees half a file.
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(data)
    partial.replace(path)
    return path
