"""Providers: one adapter per outside service or tool. This module answers which providers a
deployment has configured, so a task type can be reported unavailable, with the reason, before
anyone submits it.
"""

import shutil

from processors import errors


def _binary(name: str):
    def check(settings: dict) -> str | None:
        return None if shutil.which(name) else f"the `{name}` program is not installed"

    return check


def _setting(key: str):
    def check(settings: dict) -> str | None:
        return None if settings.get(key) else f"{key} is not set"

    return check


# provider name -> check returning None when usable, else the reason it is not.
CHECKS = {
    "ffmpeg": _binary("ffmpeg"),
    "ffprobe": _binary("ffprobe"),
    "espeak": _binary("espeak-ng"),
    "openai": _setting("OPENAI_API_KEY"),
    "elevenlabs": _setting("ELEVENLABS_API_KEY"),
}


def voice_key(provider: str) -> dict[str, tuple[str, str]]:
    """Return what speaking with `provider` needs, as a `Processor.needs` entry: a paid voice's
    key (espeak-ng, a program, is among the types' own `providers`)."""
    return {} if provider == "espeak" else {provider: (f"speaking with {provider} needs its key", "")}


def require(needs: dict[str, tuple[str, str]], settings: dict) -> None:
    """Fail a run at once when a provider it needs is not configured.

    needs: provider name -> (why this run needs it, a hint appended when it is missing).
    Raises PermanentError "<why>: <reason it is not configured><hint>".
    """
    for name, missing in availability(tuple(needs), settings).items():
        if missing:
            why, hint = needs[name]
            raise errors.PermanentError(f"{why}: {missing}{hint}")


def availability(names: tuple[str, ...] | list[str], settings: dict) -> dict[str, str | None]:
    """Return, for each provider name, None if configured or the reason it is not."""
    result = {}
    for name in names:
        check = CHECKS.get(name)
        result[name] = check(settings) if check else f"unknown provider {name!r}"
    return result
