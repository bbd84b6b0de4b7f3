"""espeak-ng, the offline text-to-speech that needs no key: speaking text into a 22.05 kHz mono
WAV and listing the installed voices.

The text goes to espeak-ng in a file, never through a shell or the command line, so nothing in
it can be read as an option. The program runs in a process group of its own, registered with
the task's context, and is killed when the task is cancelled.
"""

from __future__ import annotations

import functools
import pathlib
import subprocess
import tempfile

from processors import base, errors
from processors.providers import process
from processors.providers import voices as _voices

PROGRAM = "espeak-ng"
RATE_RANGE = (80, 450)  # words per minute espeak-ng accepts
PITCH_RANGE = (0, 99)
_POLL = 0.1  # seconds between looks at cancel while espeak-ng runs
_KILL_GRACE = 0.5
_GENDERS = {"M": "male", "F": "female"}


def speak(
    text: str,
    voice: str,
    out_wav: str | pathlib.Path,
    *,
    rate_wpm: int = 175,
    pitch: int = 50,
    ctx: base.Context | None = None,
) -> pathlib.Path:
    """Speak `text` with espeak-ng voice `voice` into the WAV file `out_wav`; return its path.

    rate_wpm: words per minute, 80-450. pitch: 0-99, 50 is the voice's own.
    ctx: when given, the process is tracked and killed (raising `Cancelled`) on cancel.
    Raises PermanentError for an unknown voice, bad settings, empty text or a missing program.
    """
    _check(text, voice, rate_wpm, pitch)
    out_wav = pathlib.Path(out_wav)
    with tempfile.TemporaryDirectory(prefix="espeak-") as scratch:
        text_file = pathlib.Path(scratch, "text.txt")
        text_file.write_text(text, encoding="utf-8")
        # -b 1: the text is UTF-8; -w: write a WAV instead of playing it.
        argv = [PROGRAM, "-b", "1", "-v", voice, "-s", str(rate_wpm), "-p", str(pitch)]
        argv += ["-w", str(out_wav), "-f", str(text_file)]
        try:
            _run(argv, ctx)
        except BaseException:
            out_wav.unlink(missing_ok=True)  # never leave a partial file behind
            raise
    return out_wav


def voices() -> list[_voices.Voice]:
    """Return the installed espeak-ng voices (ids like "en-us")."""
    found: dict[str, _voices.Voice] = {}
    for line in _listing().splitlines()[1:]:
        voice = _parse_voice(line, taken=found)
        if voice is not None:
            found[voice.id] = voice
    return list(found.values())


def _listing() -> str:
    try:
        done = subprocess.run([PROGRAM, "--voices"], capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError as exc:
        raise errors.PermanentError(f"{PROGRAM} is not installed") from exc
    if done.returncode != 0:
        raise errors.PermanentError(f"{PROGRAM} --voices failed: {done.stderr.strip()}")
    return done.stdout


@functools.cache
def _known_voices() -> frozenset[str]:
    """Return the names `-v` takes: each voice's id, its language and its file's name."""
    names = set()
    for line in _listing().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 5:
            names.update({fields[1].lower(), fields[4].lower(), fields[4].rpartition("/")[2].lower()})
    return frozenset(names)


def _parse_voice(line: str, taken: dict) -> _voices.Voice | None:
    # Columns: Pty Language Age/Gender VoiceName File [Other Languages]; names use _ for spaces.
    fields = line.split()
    if len(fields) < 5:
        return None
    language, age_gender, name, file = fields[1:5]
    # Two voices may share a language ("yue"); `-v` takes the voice file's name as well.
    voice_id = language if language not in taken else file.rpartition("/")[2].lower()
    gender = _GENDERS.get(age_gender.rpartition("/")[2])
    return _voices.Voice(voice_id, name.replace("_", " "), "espeak", language=language, gender=gender)


def _check(text: str, voice: str, rate_wpm: int, pitch: int) -> None:
    if not text.strip():
        raise errors.PermanentError("espeak-ng: there is no text to speak")
    # A voice name starting with "-" would be read as an option.
    if not voice or voice.startswith("-") or any(c.isspace() for c in voice):
        raise errors.PermanentError(f"espeak-ng: {voice!r} is not a voice name")
    # espeak-ng itself falls back silently on a name it half-knows ("no-such-voice" speaks
    # Norwegian), so the name is checked against the installed voices (a `+variant` may follow).
    if voice.partition("+")[0].lower() not in _known_voices():
        raise errors.PermanentError(f"espeak-ng has no voice {voice!r}; GET /api/voices lists them")
    if not RATE_RANGE[0] <= rate_wpm <= RATE_RANGE[1]:
        raise errors.PermanentError(f"espeak-ng: rate {rate_wpm} wpm is outside {RATE_RANGE[0]}-{RATE_RANGE[1]}")
    if not PITCH_RANGE[0] <= pitch <= PITCH_RANGE[1]:
        raise errors.PermanentError(f"espeak-ng: pitch {pitch} is outside {PITCH_RANGE[0]}-{PITCH_RANGE[1]}")


def _run(argv: list[str], ctx: base.Context | None) -> None:
    if ctx is not None:
        ctx.check()
    child = process.start(argv)
    try:
        if ctx is not None:
            ctx.track(child)
        _wait(child, ctx)
    except BaseException:
        # Cancel, a soft timeout or anything else: espeak-ng must not outlive the call.
        process.kill_group(child, _KILL_GRACE)
        raise
    finally:
        if ctx is not None:
            ctx.untrack(child)
        stderr = child.stderr.read().decode("utf-8", "replace").strip() if child.stderr else ""
        if child.stderr:
            child.stderr.close()
    if child.returncode != 0:
        raise errors.PermanentError(f"espeak-ng failed (exit {child.returncode}): {stderr or 'no message'}")


def _wait(child: subprocess.Popen, ctx: base.Context | None) -> None:
    while True:
        try:
            child.wait(_POLL)
            return
        except subprocess.TimeoutExpired:
            if ctx is not None:
                ctx.check()
