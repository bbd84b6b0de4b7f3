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
from collections.abc import Iterator
from typing import Any, TypeVar

import openai
import pydantic
from PIL import Image

from processors import base, errors
from processors.providers import retry
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
    Raises InvalidAnswer (a PermanentError with `.problems`) when the answer does not validate,
    PermanentError with the provider's text on a refusal, and the `retry.call` errors.
    """
    model = model or settings["CONVEYOR_LLM_MODEL"]
    server = settings.get("OPENAI_BASE_URL") or "openai"
    with client(settings) as sdk:
        for form in FORMATS[FORMATS.index(_FORMAT_OF.get(server, FORMATS[0])) :]:
            try:
                raw = retry.call(
                    lambda form=form: _ask(sdk, form, model, messages, model_class),
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
            return _chat_answer(raw, model_class) if form == "json_schema" else _text_answer(raw, model_class)
    raise errors.PermanentError("openai chat: the server refused every way of asking for JSON: " + ", ".join(FORMATS))


class _FormatRefused(Exception):
    """The server does not take this `response_format` (not a provider failure: not retried)."""


def _ask(sdk: openai.OpenAI, form: str, model: str, messages: list[dict], model_class: type[M]) -> Any:
    try:
        if form == "json_schema":
            return sdk.chat.completions.with_raw_response.parse(
                model=model, messages=messages, response_format=model_class
            )
        schema = json.dumps(model_class.model_json_schema(), separators=(",", ":"))
        asked = [*messages, {"role": "system", "content": SCHEMA_PROMPT.format(schema=schema)}]
        options = {"response_format": {"type": "json_object"}} if form == "json_object" else {}
        return sdk.chat.completions.with_raw_response.create(model=model, messages=asked, **options)
    except openai.APIStatusError as exc:
        if form != "prompt" and exc.status_code in (400, 422, 500, 501) and _refuses_the_type(exc, form):
            raise _FormatRefused(str(exc)[:500]) from exc
        raise


def _refuses_the_type(exc: openai.APIStatusError, form: str) -> bool:
    """Whether the error says the server does not take this kind of `response_format` (not that
    it takes it and finds fault with our schema, which OpenAI words "Invalid schema for ...")."""
    text = f"{exc.message} {exc.response.text if exc.response is not None else ''}".lower()
    if "invalid schema" in text:
        return False
    return form in text or "response_format.type" in text or "response_format type" in text


def _text_answer(raw: Any, model_class: type[M]) -> ChatAnswer:
    """Validate an answer asked for in JSON mode or by the prompt: its content as JSON."""
    body = raw.http_response.json()
    content, usage = _first_content(body), _usage(body)
    completion = raw.parse()
    choice = completion.choices[0] if completion.choices else None
    if choice is not None and choice.finish_reason == "length":
        raise InvalidAnswer(["the answer was cut off at the token limit"], content, usage)
    if not (content or "").strip():
        raise InvalidAnswer(["the answer was empty"], content, usage)
    try:
        value = model_class.model_validate_json(_unfenced(content))
    except pydantic.ValidationError as exc:
        raise InvalidAnswer(_problems(exc), content, usage) from exc
    return ChatAnswer(value, usage, completion.model, content)


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

    speed: 0.25-4.0. model: overrides CONVEYOR_TTS_MODEL.
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
    return _write(pathlib.Path(out_path), audio)


def voices() -> list[_voices.Voice]:
    """Return OpenAI's speech voices."""
    return [_voices.Voice(id=name, name=name.title(), provider="openai") for name in VOICES]


def _chat_answer(raw: Any, model_class: type[M]) -> ChatAnswer:
    body = raw.http_response.json()
    content, usage = _first_content(body), _usage(body)
    try:
        completion = raw.parse()
    except pydantic.ValidationError as exc:
        raise InvalidAnswer(_problems(exc), content, usage) from exc
    except openai.LengthFinishReasonError as exc:
        raise InvalidAnswer(["the answer was cut off at the token limit"], content, usage) from exc
    except openai.ContentFilterFinishReasonError as exc:
        raise errors.PermanentError("openai chat: the answer was withheld by the content filter") from exc
    message = completion.choices[0].message if completion.choices else None
    if message is not None and message.refusal:
        raise errors.PermanentError(f"openai chat: the model refused: {message.refusal}")
    if message is None or message.parsed is None:
        raise InvalidAnswer(["the answer was empty"], content, usage)
    return ChatAnswer(message.parsed, usage, completion.model, content or "")


def _first_content(body: Any) -> str | None:
    try:
        return body["choices"][0]["message"].get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        return None


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
    words = [Word(w.word, float(w.start), float(w.end)) for w in (answer.words or [])]
    segments = [Segment(s.text.strip(), float(s.start), float(s.end)) for s in (answer.segments or [])]
    duration = getattr(answer, "duration", None)
    return Transcript(
        text=answer.text,
        language=getattr(answer, "language", None),
        duration=float(duration) if duration is not None else None,
        words=words,
        segments=segments,
    )


def _write(path: pathlib.Path, data: bytes) -> pathlib.Path:
    # Write beside the target and rename, so a reader never sees half a file.
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(data)
    partial.replace(path)
    return path
