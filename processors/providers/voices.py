"""The voices a deployment can speak with, across its TTS providers: the shared `Voice` record
and `list_voices`, which backs `GET /api/voices`.

espeak-ng is listed whenever it is installed (the local default that needs no key), OpenAI's
fixed voices when OPENAI_API_KEY is set, ElevenLabs' voices from its API when
ELEVENLABS_API_KEY is set. A provider that fails to answer is reported in `problems`; the
others are still listed.
"""

from __future__ import annotations

import dataclasses

from processors import errors, providers
from processors.providers import elevenlabs_api, espeak, openai_api


@dataclasses.dataclass(frozen=True)
class Voice:
    """One voice of one provider; `id` is what that provider's `speak` takes."""

    id: str
    name: str
    provider: str
    language: str | None = None
    gender: str | None = None

    def to_dict(self) -> dict:
        """Return the voice as a JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class VoiceList:
    """The voices found, and one note per provider that could not be asked."""

    voices: list[Voice]
    problems: list[str]

    def to_dict(self) -> dict:
        """Return the list as a JSON-ready dict."""
        return {"voices": [voice.to_dict() for voice in self.voices], "problems": list(self.problems)}


def list_voices(settings: dict) -> VoiceList:
    """Return the voices of every configured TTS provider, with a note for each that failed."""
    found: list[Voice] = []
    problems: list[str] = []
    for name, lister in _LISTERS:
        unavailable = providers.availability([name], settings)[name]
        if unavailable is not None:
            if name == "espeak":  # the local default: its absence is worth saying
                problems.append(f"espeak: {unavailable}")
            continue
        try:
            found.extend(lister(settings))
        except errors.ProcessorError as exc:
            problems.append(f"{name}: {exc}")
    return VoiceList(found, problems)


def _espeak(settings: dict) -> list[Voice]:
    return espeak.voices()


def _openai(settings: dict) -> list[Voice]:
    return openai_api.voices()


def _elevenlabs(settings: dict) -> list[Voice]:
    # One attempt: this answers an API request, which should not sit through backoff waits.
    return elevenlabs_api.voices(settings, attempts=1)


_LISTERS = (("espeak", _espeak), ("openai", _openai), ("elevenlabs", _elevenlabs))
