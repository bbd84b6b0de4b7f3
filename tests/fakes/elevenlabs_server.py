"""A fake ElevenLabs server for tests: text-to-speech and the voice listings, in the wire format
the official SDK (2.x) speaks.

    from tests.fakes import elevenlabs_server

    with elevenlabs_server.ElevenLabsServer() as server:
        settings = {**app_settings, **server.settings()}   # ELEVENLABS_API_KEY, ELEVENLABS_BASE_URL

Default answers (see `tests.fakes` for queue/on/requests):

- `POST /v1/text-to-speech/{voice_id}`: a sine tone in the `output_format` query parameter's
  codec: mp3_* (real MP3, made with ffmpeg), pcm_<rate> (raw PCM), wav_<rate>; an unknown voice
  gets 404 voice_not_found.
- `GET /v2/voices` (what `client.voices.search()` calls; paged by `page_size` and
  `next_page_token`) and `GET /v1/voices` (`client.voices.get_all()`): `server.voices`.

A request whose `xi-api-key` header is not `server.api_key` gets ElevenLabs' 401
(invalid_api_key). Errors in ElevenLabs' shape: `error(status, message, status_name=...)`.
"""

from __future__ import annotations

import copy

from tests import fakes

DEFAULT_VOICES = (
    {
        "voice_id": "21m00Tcm4TlvDq8ikWAM",
        "name": "Rachel",
        "category": "premade",
        "labels": {"accent": "american", "gender": "female", "language": "en"},
    },
    {
        "voice_id": "pNInz6obpgDQGcFmaJgB",
        "name": "Adam",
        "category": "premade",
        "labels": {"accent": "american", "gender": "male"},
        "verified_languages": [{"language": "en", "model_id": "eleven_multilingual_v2", "accent": "american"}],
    },
    {
        "voice_id": "XB0fDUnXU5powFXDhCwa",
        "name": "Charlotte",
        "category": "premade",
        "labels": {"accent": "swedish", "gender": "female", "language": "sv"},
    },
)


class ElevenLabsServer(fakes.FakeServer):
    """The fake; `voices` is the account's voice list (dicts in the API's shape)."""

    ROUTES = (
        ("POST", "/v1/text-to-speech/{voice_id}", "text_to_speech"),
        ("GET", "/v2/voices", "voices_v2"),
        ("GET", "/v1/voices", "voices_v1"),
    )

    def __init__(self, api_key: str = "fake-elevenlabs-key-0123", voices: list[dict] | None = None):
        super().__init__()
        self.api_key = api_key
        self.voices = copy.deepcopy(list(DEFAULT_VOICES) if voices is None else voices)

    def settings(self) -> dict:
        """Return the settings that point the ElevenLabs adapter at this fake."""
        return {"ELEVENLABS_API_KEY": self.api_key, "ELEVENLABS_BASE_URL": self.url}

    def check_auth(self, request: fakes.Request) -> fakes.Response | None:
        if request.headers.get("xi-api-key") == self.api_key:
            return None
        return error(401, "Invalid API key", status_name="invalid_api_key")

    # Default responders
    def text_to_speech(self, request: fakes.Request) -> fakes.Response:
        voice_id = request.params["voice_id"]
        if voice_id not in {voice["voice_id"] for voice in self.voices}:
            message = f"A voice with the voice_id {voice_id} was not found."
            return error(404, message, status_name="voice_not_found")
        text = str((request.json or {}).get("text", ""))
        if not text.strip():
            return error(400, "Text must not be empty.", status_name="invalid_text")
        output_format = request.query.get("output_format", ["mp3_44100_128"])[0]
        return _audio(output_format, seconds=round(min(30.0, max(0.5, 0.3 * len(text.split()))), 1))

    def voices_v2(self, request: fakes.Request) -> fakes.Response:
        size = int(request.query.get("page_size", ["10"])[0])
        start = int(request.query.get("next_page_token", ["0"])[0])
        page = self.voices[start : start + size]
        more = start + size < len(self.voices)
        return fakes.Response(
            json={
                "voices": page,
                "has_more": more,
                "total_count": len(self.voices),
                "next_page_token": str(start + size) if more else None,
            }
        )

    def voices_v1(self, request: fakes.Request) -> fakes.Response:
        return fakes.Response(json={"voices": self.voices})


def error(status: int, message: str, *, status_name: str = "error", retry_after: float | None = None) -> fakes.Response:
    """Return an error answer in ElevenLabs' shape: {"detail": {"status", "message"}}."""
    headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
    return fakes.Response(status, json={"detail": {"status": status_name, "message": message}}, headers=headers)


def _audio(output_format: str, seconds: float) -> fakes.Response:
    codec, _, rest = output_format.partition("_")
    rate = int(rest.split("_")[0]) if rest.split("_")[0].isdigit() else 44100
    if codec == "mp3":
        return fakes.Response(body=fakes.encoded("mp3", seconds, rate), content_type="audio/mpeg")
    if codec in ("pcm", "wav"):
        content_type = "audio/pcm" if codec == "pcm" else "audio/wav"
        return fakes.Response(body=fakes.encoded(codec, seconds, rate), content_type=content_type)
    return error(400, f"Unsupported output format {output_format} (fake server)", status_name="invalid_output_format")
