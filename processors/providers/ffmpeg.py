"""ffmpeg and ffprobe: an argument builder, a runner that turns `-progress` output into task
progress and stops ffmpeg's process group on cancel, timeout or any escaping signal, a prober,
and the few conversions processors share.

We call the CLI (ffmpeg-python is unmaintained); every value is its own argv item, never part
of a shell string. A non-zero exit is an `FfmpegError` (a `PermanentError`: it is almost
always bad input) carrying ffmpeg's last stderr lines.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import pathlib
import queue
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from processors import base, errors
from processors.providers import process

STDERR_LINES = 20
KILL_GRACE = 1.0
PROBE_TIMEOUT = 60.0
_POLL = 0.1  # how often the runner looks at cancel and timeout while ffmpeg is quiet
_LEVEL1 = "\\':"  # option value escaping inside one filter's arguments
_LEVEL2 = "\\'[],;"  # filtergraph escaping around a whole filter description
PathLike = str | pathlib.Path
AUDIO_CODECS = {"mp3": "libmp3lame", "wav": "pcm_s16le", "ogg": "libvorbis"}


class FfmpegError(errors.PermanentError):
    """ffmpeg failed."""

    def __init__(self, returncode: int, stderr_tail: str):
        super().__init__(f"ffmpeg exited with status {returncode}: {stderr_tail or '(no error output)'}")
        self.returncode = returncode
        self.stderr_tail = stderr_tail


class Command:
    """One ffmpeg invocation: global options, inputs, an optional filter graph, outputs.

    Options are keyword arguments mapped to `-key value` in the order given; keys that are
    not Python names go through a dict (`**{"c:v": "libx264", "frames:v": 1}`). A value of
    True gives a bare flag (`re=True` -> `-re`), None or False leaves the option out, and a
    list or tuple repeats it (`map=["0:v", "1:a"]` -> `-map 0:v -map 1:a`).
    """

    def __init__(self) -> None:
        self._global: list[str] = []
        self._inputs: list[str] = []
        self._filter: list[str] = []
        self._outputs: list[str] = []

    def option(self, **opts: Any) -> Command:
        """Add global options (`loglevel`, `stats_period`, ...)."""
        self._global += _options(opts)
        return self

    def input(self, path: PathLike, *, ss: float | None = None, t: float | None = None, **opts: Any) -> Command:
        """Add an input, optionally seeking to `ss` and reading `t` seconds of it."""
        self._inputs += [*_options({"ss": _seconds(ss), "t": _seconds(t), **opts}), "-i", _path(path)]
        return self

    def filter_complex(self, graph: str) -> Command:
        """Set the `-filter_complex` graph (label its outputs and `map` them)."""
        self._filter = ["-filter_complex", graph]
        return self

    def output(self, path: PathLike, **opts: Any) -> Command:
        """Add an output with its options (`vf`, `af`, `map`, `vcodec`, `acodec`, `t`, ...)."""
        self._outputs += [*_options(opts), _path(path)]
        return self

    def args(self, *, progress: bool = False) -> list[str]:
        """Return the full argv; with `progress`, ffmpeg reports to stdout instead of stderr."""
        head = ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "warning"]
        if progress:
            head += ["-progress", "pipe:1", "-nostats"]
        return head + self._global + self._inputs + self._filter + self._outputs


def escape_filter_path(path: PathLike) -> str:
    """Escape a path for a filter argument (`subtitles=`, `ass=`) inside a filter graph."""
    text = _escape(str(path), _LEVEL1)
    return _escape(text, _LEVEL2)


def run(
    command: Command,
    ctx: base.Context,
    *,
    duration: float | None = None,
    on_progress: Callable[[float], None] | None = None,
    timeout: float | None = None,
) -> None:
    """Run ffmpeg, reporting progress and stopping its process group on cancel or timeout.

    duration: seconds of output expected; progress is ffmpeg's output time over it.
    on_progress: called in this thread with a fraction 0-1, only ever rising; 1.0 on success.
    timeout: seconds before ffmpeg is killed and a `RetryableError` raised.
    Raises `Cancelled` once `ctx` is cancelled, `FfmpegError` on a non-zero exit.
    """
    ctx.check()
    child = process.start(command.args(progress=True), stdout=subprocess.PIPE)
    pipes = _Pipes(child)
    progress = _Progress(duration, on_progress)
    try:
        ctx.track(child)
        _follow(child, ctx, pipes, progress, timeout)
    except BaseException:
        # Cancel, timeout, a SoftTimeout from SIGALRM or a failing callback: ffmpeg must not outlive us.
        process.kill_group(child, KILL_GRACE)
        raise
    finally:
        ctx.untrack(child)
        pipes.join()
    _check_exit(child.returncode, pipes.stderr_tail())
    progress.finish()


@dataclasses.dataclass(frozen=True)
class VideoStream:
    """A video stream; fps is the average frame rate."""

    index: int
    codec: str
    width: int
    height: int
    pix_fmt: str | None
    fps: float


@dataclasses.dataclass(frozen=True)
class AudioStream:
    """An audio stream."""

    index: int
    codec: str
    sample_rate: int
    channels: int


@dataclasses.dataclass(frozen=True)
class SubtitleStream:
    """A subtitle stream; language is its tag (`eng`) if any."""

    index: int
    codec: str
    language: str | None


@dataclasses.dataclass(frozen=True)
class Probe:
    """What ffprobe says about a media file; duration in seconds, size in bytes."""

    duration: float
    size: int
    format_name: str
    video: tuple[VideoStream, ...]
    audio: tuple[AudioStream, ...]
    subtitles: tuple[SubtitleStream, ...]


def probe(path: PathLike) -> Probe:
    """Describe a media file with ffprobe; raise `PermanentError` if it cannot be read."""
    argv = ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", _path(path)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT, stdin=subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise errors.PermanentError("ffprobe is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise errors.RetryableError(f"ffprobe timed out after {PROBE_TIMEOUT:g}s on {path}") from exc
    if done.returncode != 0:
        message = done.stderr.strip().splitlines()[-1:] or [f"status {done.returncode}"]
        raise errors.PermanentError(f"cannot read media file {path}: {message[0]}")
    return _parse_probe(json.loads(done.stdout))


def audio_duration(path: PathLike) -> float:
    """Return a media file's duration in seconds."""
    return probe(path).duration


def extract_frame(path: PathLike, at_seconds: float, out_png: PathLike, ctx: base.Context) -> pathlib.Path:
    """Save the video frame at `at_seconds` as a PNG."""
    run(Command().input(path, ss=at_seconds).output(out_png, **{"frames:v": 1}), ctx)
    return pathlib.Path(out_png)


def to_audio(src: PathLike, dst: PathLike, format: str, ctx: base.Context) -> pathlib.Path:
    """Convert a file's audio to `format` (mp3, wav or ogg), dropping any video."""
    command = Command().input(src).output(dst, vn=True, sn=True, acodec=audio_encoder(format))
    run(command, ctx)
    return pathlib.Path(dst)


def concat_audio(
    paths: Iterable[PathLike], dst: PathLike, ctx: base.Context, lengths: list[float] | None = None
) -> pathlib.Path:
    """Join audio files end to end into `dst`, encoded by its suffix (.mp3, .wav, .ogg).
    `lengths`: each input padded with silence to at least this many seconds."""
    paths = list(paths)
    if not paths:
        raise ValueError("concat_audio needs at least one input")
    command = Command()
    for path in paths:
        command.input(path)
    # The concat filter, unlike the concat demuxer, accepts inputs of different rates and layouts.
    if lengths is None:
        pads, labels = "", "".join(f"[{i}:a:0]" for i in range(len(paths)))
    else:
        pads = "".join(f"[{i}:a:0]apad=whole_dur={length:.3f}[p{i}];" for i, length in enumerate(lengths))
        labels = "".join(f"[p{i}]" for i in range(len(paths)))
    command.filter_complex(f"{pads}{labels}concat=n={len(paths)}:v=0:a=1[out]")
    dst = pathlib.Path(dst)
    run(command.output(dst, map="[out]", acodec=audio_encoder(dst.suffix.lstrip("."))), ctx)
    return dst


# Loudness (EBU R128): the level speech is brought to, the peak a gain may not pass (dBFS), and
# the most a quiet take is raised (a near-silent file is not blown up into noise).
VOICE_LUFS = -16.0
PEAK_LIMIT_DB = -1.0
MAX_GAIN_DB = 30.0
LOUDNESS_TOLERANCE = 0.2  # LU: off by more after the limiter, the gain is corrected once
_INTEGRATED = re.compile(r"lavfi\.r128\.I=(-?[\d.]+|-inf|nan)")


def loudness(path: PathLike, ctx: base.Context) -> float | None:
    """Return a file's integrated loudness in LUFS (EBU R128, ffmpeg's `ebur128`), or None when
    it is too short or too quiet to measure."""
    found = ctx.workdir / f"{pathlib.Path(path).stem}.loudness.txt"
    graph = f"ebur128=metadata=1,ametadata=mode=print:key=lavfi.r128.I:file={escape_filter_path(found)}"
    run(Command().input(path).output("-", af=graph, vn=True, f="null"), ctx)
    values = _INTEGRATED.findall(found.read_text(errors="replace")) if found.is_file() else []
    found.unlink(missing_ok=True)
    last = values[-1] if values else "nan"
    return None if last in ("-inf", "nan") or float(last) <= -69.0 else float(last)


def normalise_loudness(src: PathLike, dst: PathLike, ctx: base.Context, target: float = VOICE_LUFS) -> pathlib.Path:
    """Write `src` brought to `target` LUFS into `dst` (same rate and channels, 16-bit PCM for
    .wav): one measured gain for the whole file, so speech keeps its dynamics, and a limiter
    at PEAK_LIMIT_DB so the gain never clips (what the limiter takes away is made up once). A
    file too quiet to measure is copied as is."""
    dst = pathlib.Path(dst)
    measured = loudness(src, ctx)
    gain = 0.0 if measured is None else target - measured
    _gain(src, dst, gain, ctx)
    after = loudness(dst, ctx) if measured is not None else None
    if after is not None and abs(target - after) > LOUDNESS_TOLERANCE:  # the limiter took some away
        _gain(src, dst, gain + target - after, ctx)
    return dst


def _gain(src: PathLike, dst: pathlib.Path, gain: float, ctx: base.Context) -> None:
    gain = max(-MAX_GAIN_DB, min(MAX_GAIN_DB, gain))
    filters = f"volume={gain:.2f}dB,alimiter=limit={10 ** (PEAK_LIMIT_DB / 20):.3f}:level=false"
    run(Command().input(src).output(dst, af=filters, acodec=audio_encoder(dst.suffix.lstrip("."))), ctx)


def audio_encoder(format: str) -> str:
    """Return the encoder for an audio format; raise `PermanentError` if ffmpeg lacks it."""
    codec = AUDIO_CODECS.get(format.lower())
    if codec is None:
        raise errors.PermanentError(f"unsupported audio format {format!r}; use one of {', '.join(AUDIO_CODECS)}")
    if codec not in encoders():
        raise errors.PermanentError(f"this ffmpeg has no {codec} encoder for {format}")
    return codec


@functools.cache
def encoders() -> frozenset[str]:
    """Return the names of the encoders this ffmpeg has."""
    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-encoders"]
    try:
        listing = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=PROBE_TIMEOUT).stdout
    except FileNotFoundError as exc:
        raise errors.PermanentError("ffmpeg is not installed") from exc
    # Lines look like " A....D libmp3lame  libmp3lame MP3 ..." after a legend ending in "------".
    body = listing.split("------", 1)[-1]
    return frozenset(line.split()[1] for line in body.splitlines() if len(line.split()) > 1)


# Building arguments


def _options(opts: dict[str, Any]) -> list[str]:
    argv: list[str] = []
    for key, value in opts.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            if item is None or item is False:
                continue
            argv += [f"-{key}"] if item is True else [f"-{key}", _value(item)]
    return argv


def _value(value: Any) -> str:
    return _seconds(value) if isinstance(value, float) else str(value)


def _seconds(value: float | None) -> str | None:
    if value is None:
        return None
    # Fixed notation: str() would give "1e-05", which ffmpeg does not read as a time.
    return f"{float(value):.6f}".rstrip("0").rstrip(".") or "0"


def _path(path: PathLike) -> str:
    text = str(path)
    # A name starting with "-" would be read as an option.
    return "./" + text if text.startswith("-") else text


def _escape(text: str, special: str) -> str:
    return "".join("\\" + char if char in special else char for char in text)


# Running


def _follow(child: subprocess.Popen, ctx: base.Context, pipes: _Pipes, progress: _Progress, timeout) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            seconds = pipes.times.get(timeout=_POLL)
        except queue.Empty:
            seconds = 0.0  # nothing new: still look at cancel and the clock
        if seconds is None:  # stdout closed: ffmpeg is done
            child.wait()
            return
        progress.update(seconds)
        ctx.check()
        if deadline is not None and time.monotonic() > deadline:
            raise errors.RetryableError(f"ffmpeg timed out after {timeout:g}s")


class _Pipes:
    """Reads ffmpeg's stdout (progress times) and stderr (its last lines) in threads, so the
    caller's thread stays free to watch cancel and the clock and no full pipe blocks ffmpeg."""

    def __init__(self, child: subprocess.Popen):
        self.child = child
        self.times: queue.Queue[float | None] = queue.Queue()
        self.lines: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self.threads = [
            threading.Thread(target=self._read_progress, name="ffmpeg-progress", daemon=True),
            threading.Thread(target=self._read_stderr, name="ffmpeg-stderr", daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def _read_progress(self) -> None:
        with self.child.stdout:
            for raw in self.child.stdout:
                seconds = _out_time(raw.decode("utf-8", "replace"))
                if seconds is not None:
                    self.times.put(seconds)
        self.times.put(None)

    def _read_stderr(self) -> None:
        with self.child.stderr:
            for raw in self.child.stderr:
                line = raw.decode("utf-8", "replace").rstrip()
                if line:
                    self.lines.append(line)

    def stderr_tail(self) -> str:
        return "\n".join(self.lines)

    def join(self) -> None:
        # The pipes reach EOF once ffmpeg has exited or been killed; each reader closes its own
        # (closing one from here while its reader is blocked on it would hang).
        for thread in self.threads:
            thread.join(5)


def _out_time(line: str) -> float | None:
    key, _, value = line.strip().partition("=")
    # out_time_ms is in microseconds too (a long-standing ffmpeg quirk).
    if key not in ("out_time_us", "out_time_ms"):
        return None
    try:
        return max(0.0, int(value) / 1_000_000)
    except ValueError:
        return None  # "N/A" before the first frame


class _Progress:
    """Turns output times into fractions of the expected duration, never going back."""

    def __init__(self, duration: float | None, callback: Callable[[float], None] | None):
        self.duration = duration
        self.callback = callback
        self.last = 0.0

    def update(self, seconds: float) -> None:
        if not self.callback or not self.duration or self.duration <= 0:
            return
        self._report(min(1.0, seconds / self.duration))

    def finish(self) -> None:
        if self.callback:
            self._report(1.0)

    def _report(self, fraction: float) -> None:
        if fraction > self.last:
            self.last = fraction
            self.callback(fraction)


def _check_exit(returncode: int, stderr_tail: str) -> None:
    if returncode < 0:
        # Killed by a signal we did not send (the OOM killer, an operator): another try may work.
        raise errors.RetryableError(f"ffmpeg was killed by signal {-returncode}: {stderr_tail}")
    if returncode != 0:
        raise FfmpegError(returncode, stderr_tail)


# Probing


def _parse_probe(data: dict) -> Probe:
    fmt = data.get("format", {})
    streams = data.get("streams", [])
    return Probe(
        duration=float(fmt.get("duration") or 0.0),
        size=int(fmt.get("size") or 0),
        format_name=fmt.get("format_name", ""),
        video=tuple(_video(s) for s in streams if s.get("codec_type") == "video"),
        audio=tuple(_audio(s) for s in streams if s.get("codec_type") == "audio"),
        subtitles=tuple(_subtitle(s) for s in streams if s.get("codec_type") == "subtitle"),
    )


def _video(stream: dict) -> VideoStream:
    return VideoStream(
        index=stream["index"],
        codec=stream.get("codec_name", ""),
        width=int(stream.get("width") or 0),
        height=int(stream.get("height") or 0),
        pix_fmt=stream.get("pix_fmt"),
        fps=_rate(stream.get("avg_frame_rate")) or _rate(stream.get("r_frame_rate")),
    )


def _audio(stream: dict) -> AudioStream:
    return AudioStream(
        index=stream["index"],
        codec=stream.get("codec_name", ""),
        sample_rate=int(stream.get("sample_rate") or 0),
        channels=int(stream.get("channels") or 0),
    )


def _subtitle(stream: dict) -> SubtitleStream:
    language = stream.get("tags", {}).get("language")
    return SubtitleStream(index=stream["index"], codec=stream.get("codec_name", ""), language=language)


def _rate(text: str | None) -> float:
    numerator, _, denominator = (text or "0/0").partition("/")
    try:
        return float(numerator) / float(denominator or 1)
    except (ValueError, ZeroDivisionError):
        return 0.0
