"""The lesson's mp4: raw RGB frames piped into one ffmpeg (`-f rawvideo -i pipe:0`) that encodes
them as H.264 with the joined narration laid under them as one AAC track, and the captions
burned in (the explainer's styled ASS) when asked.

`ffmpeg.run` feeds ffmpeg no input, so this module starts ffmpeg itself with the same argument
builder, in its own process group (tracked on the context, killed with it on cancel or error),
and checks for cancel between frames and while ffmpeg finishes.
"""

import collections
import pathlib
import subprocess
import threading
from collections.abc import Callable, Iterable

from processors import base, captions, errors
from processors.explainer_video import render as slide_render
from processors.providers import ffmpeg, process

VIDEO = {"c:v": "libx264", "preset": "veryfast", "crf": 23, "pix_fmt": "yuv420p"}
AUDIO = {"c:a": "aac", "b:a": "128k", "ar": 44100, "ac": 2}
_WAIT = 0.1  # how often the cancel is looked at while ffmpeg finishes


def encode(
    frames: Iterable[bytes],
    count: int,
    size: tuple[int, int],
    fps: float,
    narration: pathlib.Path,
    out: pathlib.Path,
    ctx: base.Context,
    *,
    cues: list[captions.Cue] | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> pathlib.Path:
    """Encode `count` raw RGB frames of `size` at `fps` with the narration into `out` (mp4).

    cues: captions to burn in (None or empty: none).
    on_frame: told the number of frames written so far, once a second of video; may raise `Cancelled`.
    Raises `Cancelled` once `ctx` is cancelled, `FfmpegError` when ffmpeg fails.
    """
    ctx.check()
    child = process.start(_command(size, fps, narration, out, cues).args(), stdin=subprocess.PIPE)
    tail: collections.deque[str] = collections.deque(maxlen=ffmpeg.STDERR_LINES)
    reader = threading.Thread(target=_read_stderr, args=(child, tail), name="ffmpeg-stderr", daemon=True)
    reader.start()
    try:
        ctx.track(child)
        _feed(child, frames, count, fps, ctx, on_frame)
        _finish(child, ctx)
    except BaseException:
        process.kill_group(child, ffmpeg.KILL_GRACE)  # cancel or failure: ffmpeg must not outlive us
        raise
    finally:
        ctx.untrack(child)
        _close(child.stdin)
        reader.join(5)
    _check_exit(child.returncode, "\n".join(tail))
    return out


def _command(size, fps: float, narration, out, cues) -> ffmpeg.Command:
    filters = "format=yuv420p"
    if cues:
        filters += "," + slide_render.burn_filter(cues, size, out.with_suffix(".ass"))
    command = ffmpeg.Command().input("pipe:0", f="rawvideo", pix_fmt="rgb24", s=f"{size[0]}x{size[1]}", r=fps)
    command.input(narration)
    return command.output(out, map=["0:v:0", "1:a:0"], vf=filters, **VIDEO, **AUDIO, movflags="+faststart")


def _feed(child: subprocess.Popen, frames: Iterable[bytes], count: int, fps: float, ctx, on_frame) -> None:
    written, every = 0, max(1, round(fps))
    try:
        for data in frames:
            ctx.check()
            child.stdin.write(data)
            written += 1
            if on_frame and written % every == 0:
                on_frame(written)
        child.stdin.close()
    except BrokenPipeError:
        return  # ffmpeg stopped reading: it failed, and its exit status says why
    if written != count:
        raise ValueError(f"{written} frames were drawn for {count}")


def _close(pipe) -> None:
    try:
        pipe.close()
    except OSError:
        pass  # a broken pipe: ffmpeg is gone, and the file is closed all the same


def _finish(child: subprocess.Popen, ctx: base.Context) -> None:
    while True:
        try:
            child.wait(_WAIT)
            return
        except subprocess.TimeoutExpired:
            ctx.check()


def _read_stderr(child: subprocess.Popen, tail: collections.deque) -> None:
    with child.stderr:
        for raw in child.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                tail.append(line)


def _check_exit(returncode: int, stderr_tail: str) -> None:
    if returncode < 0:
        raise errors.RetryableError(f"ffmpeg was killed by signal {-returncode}: {stderr_tail}")
    if returncode != 0:
        raise ffmpeg.FfmpegError(returncode, stderr_tail)
