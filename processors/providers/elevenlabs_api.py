"""ElevenLabs text-to-speech through the official SDK (2.x): speaking text into an audio file
and listing the account's voices.

Settings: ELEVENLABS_API_KEY, ELEVENLABS_BASE_URL (unset: the public API), ELEVENLABS_MODEL,
CONVEYOR_PROVIDER_TIMEOUT_SECONDS and CONVEYOR_PROVIDER_RETRIES. Calls go through `retry.call`
with the SDK's own retries off.
"""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import Generator, Iterator

import httpx
from elevenlabs.client import ElevenLabs

from processors import base, errors
from processors.providers import retry
from processors.providers import voices as _voices

DEFAULT_BASE_URL = "https://api.elevenlabs.io"
LIST_TIMEOUT = 15.0  # seconds; listing voices answers an API request, so it must not hang long
_PAGE_SIZE = 100
_MAX_PAGES = 20
# The SDK retries 408/409/429/5xx on its own unless told not to; retry.call decides instead.
_NO_RETRIES = {"max_retries": 0}


@contextlib.contextmanager
def client(settings: dict, timeout: float | None = None) -> Iterator[ElevenLabs]:
    """Yield an SDK client for the configured server; its HTTP connections close on exit."""
    key = settings.get("ELEVENLABS_API_KEY")
    if not key:
        raise errors.PermanentError("ELEVENLABS_API_KEY is not set")
    timeout = timeout or float(settings.get("CONVEYOR_PROVIDER_TIMEOUT_SECONDS", 120.0))
    # Our own httpx client, so the connections are closed when the call is done.
    with httpx.Client(timeout=timeout, follow_redirects=True) as http:
        base_url = (settings.get("ELEVENLABS_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        yield ElevenLabs(api_key=key, base_url=base_url, timeout=timeout, httpx_client=http)


def speak(
    settings: dict,
    text: str,
    voice_id: str,
    out_path: str | pathlib.Path,
    *,
    model: str | None = None,
    output_format: str = "mp3_44100_128",
    ctx: base.Context | None = None,
) -> pathlib.Path:
    """Speak `text` with ElevenLabs voice `voice_id` into `out_path`; return the path.

    model: overrides ELEVENLABS_MODEL. output_format: ElevenLabs' codec_rate_bitrate name
    ("mp3_44100_128", "pcm_22050", ...); the file holds exactly what the service sent.
    """
    out_path = pathlib.Path(out_path)
    model = model or settings.get("ELEVENLABS_MODEL")

    def request() -> int:
        # The audio streams in while we write it; a retry starts the file again.
        chunks = sdk.text_to_speech.convert(
            voice_id, text=text, model_id=model, output_format=output_format, request_options=_NO_RETRIES
        )
        return _write(out_path, chunks)

    with client(settings) as sdk:
        written = retry.call(request, settings, what="elevenlabs speech", ctx=ctx)
    if written == 0:
        out_path.unlink(missing_ok=True)
        raise errors.RetryableError("elevenlabs speech: the answer held no audio")
    return out_path


def voices(settings: dict, *, attempts: int | None = None) -> list[_voices.Voice]:
    """Return the voices the account can use, from the voices search API (all pages).

    attempts: overrides the retry count (listing for an API request uses 1).
    """
    found: list[_voices.Voice] = []
    token = None
    options = {**_NO_RETRIES, "timeout_in_seconds": LIST_TIMEOUT}
    with client(settings, timeout=LIST_TIMEOUT) as sdk:
        for _ in range(_MAX_PAGES):
            page = retry.call(
                lambda token=token: sdk.voices.search(
                    page_size=_PAGE_SIZE, next_page_token=token, request_options=options
                ),
                settings,
                what="elevenlabs voices",
                attempts=attempts,
            )
            found.extend(_voice(item) for item in page.voices)
            token = page.next_page_token
            if not page.has_more or not token:
                break
    return found


def _voice(item) -> _voices.Voice:
    labels = item.labels or {}
    language = labels.get("language")
    if not language and item.verified_languages:
        language = item.verified_languages[0].language
    return _voices.Voice(
        id=item.voice_id,
        name=item.name or item.voice_id,
        provider="elevenlabs",
        language=language,
        gender=labels.get("gender"),
    )


def _write(path: pathlib.Path, chunks: Generator[bytes, None, None]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    written = 0
    try:
        # closing(): the SDK's generator holds the HTTP stream open until it is closed.
        with partial.open("wb") as out, contextlib.closing(chunks):
            for chunk in chunks:
                out.write(chunk)
                written += len(chunk)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return written
