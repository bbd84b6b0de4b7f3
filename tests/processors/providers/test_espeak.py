"""The espeak-ng adapter, with the real espeak-ng program."""

import os
import threading
import time
import wave

import pytest

from processors import base, errors
from processors.providers import espeak, process


def _wav(path) -> tuple[int, int, float]:
    with wave.open(str(path), "rb") as audio:
        return audio.getframerate(), audio.getnchannels(), audio.getnframes() / audio.getframerate()


def test_speak_writes_a_22khz_mono_wav(tmp_path):
    out = espeak.speak("Otters hold hands while they sleep, so they do not drift apart.", "en-us", tmp_path / "s.wav")

    rate, channels, seconds = _wav(out)
    assert (rate, channels) == (22050, 1)
    assert seconds > 0.5


def test_rate_changes_the_length(tmp_path):
    text = "Otters hold hands while they sleep, so they do not drift apart."
    slow = _wav(espeak.speak(text, "en-us", tmp_path / "slow.wav", rate_wpm=100))[2]
    fast = _wav(espeak.speak(text, "en-us", tmp_path / "fast.wav", rate_wpm=300))[2]

    assert slow > 2 * fast


def test_text_is_never_read_as_options_or_shell(tmp_path):
    marker = tmp_path / "pwned"
    text = f"--help -w {tmp_path}/other.wav; touch {marker} $(touch {marker}) `touch {marker}` \u00e9t\u00e9"

    out = espeak.speak(text, "en", tmp_path / "s.wav", ctx=base.Context("t", 1, tmp_path / "work"))

    assert _wav(out)[2] > 1.0
    assert not marker.exists()
    assert not (tmp_path / "other.wav").exists()


@pytest.mark.parametrize("voice", ["xx-nowhere", "no-such-voice"])  # espeak-ng itself speaks Norwegian for the second
def test_unknown_voice_is_permanent_and_leaves_no_file(tmp_path, voice):
    with pytest.raises(errors.PermanentError, match=f"espeak-ng has no voice '{voice}'"):
        espeak.speak("Hello.", voice, tmp_path / "s.wav")

    assert not (tmp_path / "s.wav").exists()


def test_variants_and_file_names_are_voices(tmp_path):
    espeak.speak("Hello.", "en+f3", tmp_path / "variant.wav")
    espeak.speak("Hello.", "gmw/en-US", tmp_path / "file.wav")
    assert (tmp_path / "variant.wav").stat().st_size > 1000 and (tmp_path / "file.wav").stat().st_size > 1000


@pytest.mark.parametrize(
    ("text", "voice", "rate", "pitch"),
    [
        ("", "en", 175, 50),
        ("Hi.", "-v", 175, 50),
        ("Hi.", "en us", 175, 50),
        ("Hi.", "en", 20, 50),
        ("Hi.", "en", 175, 120),
    ],
)
def test_bad_arguments_are_permanent(tmp_path, text, voice, rate, pitch):
    with pytest.raises(errors.PermanentError):
        espeak.speak(text, voice, tmp_path / "s.wav", rate_wpm=rate, pitch=pitch)


def test_cancel_kills_espeak(tmp_path):
    ctx = base.Context("t-cancel", 1, tmp_path / "work")
    text = "This is a rather long sentence for the cancel test. " * 2500
    out = tmp_path / "long.wav"
    outcome = {}

    def speak():
        try:
            espeak.speak(text, "en-us", out, ctx=ctx)
        except BaseException as exc:
            outcome["error"] = exc
        outcome["ended"] = time.monotonic()

    worker = threading.Thread(target=speak)
    worker.start()
    child = _wait_for_tracked(ctx)
    ctx.cancel()
    cancelled_at = time.monotonic()
    worker.join(10)

    assert not worker.is_alive()
    assert isinstance(outcome["error"], errors.Cancelled)
    assert outcome["ended"] - cancelled_at < 2
    assert child.poll() is not None  # reaped
    assert process.group_members(child.pid) == []
    assert ctx.tracked() == []
    assert not out.exists()


def test_voices_lists_the_installed_voices():
    listed = espeak.voices()

    by_id = {voice.id: voice for voice in listed}
    assert len(by_id) == len(listed) > 50
    us = by_id["en-us"]
    assert (us.name, us.language, us.provider) == ("English (America)", "en-us", "espeak")
    assert us.gender in ("male", "female")
    assert "English (Great Britain)" in {voice.name for voice in listed}


def test_missing_program_is_permanent(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no espeak-ng on the PATH

    with pytest.raises(errors.PermanentError, match="not installed"):
        espeak.speak("Hello.", "en", tmp_path / "s.wav")
    with pytest.raises(errors.PermanentError, match="not installed"):
        espeak.voices()


def _wait_for_tracked(ctx: base.Context):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        tracked = ctx.tracked()
        if tracked:
            # It leads its own process group, so a hard stop can kill everything it started.
            assert os.getpgid(tracked[0].pid) == tracked[0].pid
            return tracked[0]
        time.sleep(0.01)
    raise AssertionError("espeak-ng was never tracked")


def test_every_listed_voice_id_speaks(tmp_path):
    # Ids must be what `speak` takes, also where two voices share a language code.
    listed = espeak.voices()
    shared = [v for v in listed if v.id != v.language]
    for voice in [*shared, *listed[:3]]:
        assert _wav(espeak.speak("One.", voice.id, tmp_path / f"{voice.id}.wav"))[2] > 0.1
