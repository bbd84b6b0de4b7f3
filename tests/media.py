"""Sample media for tests, made with the real ffmpeg and espeak-ng: a test-pattern video with
speech or a tone and optional subtitles, speech WAVs, and SRT files; and reading media back
(ffprobe's JSON, a duration, one frame).

These build their own argv on purpose instead of using `processors.providers.ffmpeg`, so a bug
there cannot also bend the media its tests check against.
"""

from __future__ import annotations

import json
import pathlib
import subprocess

from PIL import Image

FFMPEG = ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
# Container -> the subtitle codec it can hold.
SUBTITLE_CODECS = {".mp4": "mov_text", ".mov": "mov_text", ".mkv": "subrip"}

Cue = tuple[float, float, str]  # start s, end s, text


def make_speech_wav(path: str | pathlib.Path, text: str, voice: str = "en", speed: int = 175) -> pathlib.Path:
    """Speak `text` with espeak-ng into a WAV file (22.05 kHz mono)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text])
    return path


def write_srt(path: str | pathlib.Path, cues: list[Cue]) -> pathlib.Path:
    """Write cues as a SubRip file."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blocks = [f"{n}\n{_srt_time(start)} --> {_srt_time(end)}\n{text}\n" for n, (start, end, text) in enumerate(cues, 1)]
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path


def make_video(
    path: str | pathlib.Path,
    seconds: float,
    size: tuple[int, int] = (1280, 720),
    speech_text: str | None = None,
    subtitles: list[Cue] | None = None,
    fps: int = 25,
    language: str = "eng",
) -> pathlib.Path:
    """Make an H.264/AAC test-pattern video of `seconds`: speech (espeak-ng) or a 440 Hz tone,
    and, given cues, an embedded subtitle stream (mov_text in .mp4, subrip in .mkv)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    argv = [*FFMPEG, "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}"]
    argv += _audio_input(path, speech_text)
    maps = ["-map", "0:v", "-map", "1:a"]
    if subtitles:
        argv += ["-i", str(write_srt(path.with_suffix(".srt"), subtitles))]
        maps += ["-map", "2:s", "-c:s", SUBTITLE_CODECS[path.suffix], "-metadata:s:s:0", f"language={language}"]
    argv += [*maps, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    # apad: speech shorter than the video is padded with silence; -t then sets the length.
    argv += ["-af", "apad", "-c:a", "aac", "-b:a", "96k", "-ar", "44100", "-t", f"{seconds:.3f}", str(path)]
    _run(argv)
    return path


def make_tone_wav(path: str | pathlib.Path, seconds: float, frequency: int = 440, rate: int = 44100) -> pathlib.Path:
    """Make a mono sine-tone WAV of `seconds`."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    source = f"sine=frequency={frequency}:sample_rate={rate}:duration={seconds}"
    _run([*FFMPEG, "-f", "lavfi", "-i", source, "-c:a", "pcm_s16le", str(path)])
    return path


def probe(path: str | pathlib.Path) -> dict:
    """Return ffprobe's own JSON for a file (format and streams)."""
    argv = ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)]
    return json.loads(subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout)


def duration(path: str | pathlib.Path) -> float:
    """Return a file's duration in seconds, as ffprobe reads it."""
    return float(probe(path)["format"]["duration"])


def frame(video: str | pathlib.Path, seconds: float, out: pathlib.Path) -> Image.Image:
    """Return the video's frame at `seconds` as RGB pixels (written to `out` on the way)."""
    argv = ["ffmpeg", "-v", "error", "-y", "-ss", f"{seconds:.3f}", "-i", str(video), "-frames:v", "1", str(out)]
    subprocess.run(argv, check=True, timeout=30)
    with Image.open(out) as image:
        return image.convert("RGB")


def _audio_input(path: pathlib.Path, speech_text: str | None) -> list[str]:
    if speech_text is None:
        return ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
    return ["-i", str(make_speech_wav(path.with_name(path.stem + "-speech.wav"), speech_text))]


def _srt_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d},{millis:03d}"


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
