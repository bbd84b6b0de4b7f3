"""The explainer's video: one silent H.264 clip per scene from its still slide (captions burned in
from a styled ASS file with a shipped font), joined with the concat demuxer (every clip is
encoded alike, so the streams are copied), and the whole narration laid under it as one AAC
track.

Why not an audio track per clip: AAC frames and encoder priming do not end where a scene ends,
so joined per-clip audio drifts by a few tens of milliseconds a scene. One track of the
narrations joined sample-exactly keeps every scene where its captions say it is. Each clip's
frame count comes from the scenes' rounded cumulative end times, so no rounding adds up either.
"""

import pathlib
from collections.abc import Callable

from PIL import Image

from processors import base, captions, fonts
from processors.explainer_video import slides
from processors.providers import ffmpeg

FPS = 25
THUMBNAIL = 640  # the thumbnail's longer side, in pixels
CAPTION_COLOUR = "#FFFFFF"
VIDEO = {"c:v": "libx264", "preset": "veryfast", "tune": "stillimage", "crf": 20, "pix_fmt": "yuv420p", "r": FPS}


def frame_counts(durations: list[float], fps: float = FPS) -> list[int]:
    """Return each scene's frame count at `fps`, so scene i ends on the frame nearest its true end."""
    counts, start, elapsed = [], 0, 0.0
    for seconds in durations:
        elapsed += seconds
        end = max(start + 1, round(elapsed * fps))
        counts.append(end - start)
        start = end
    return counts


def scene_clip(
    slide: pathlib.Path,
    frames: int,
    cues: list[captions.Cue],
    out: pathlib.Path,
    ctx: base.Context,
    on_progress: Callable[[float], None] | None = None,
) -> pathlib.Path:
    """Encode `frames` frames of the still slide into `out`, burning in `cues` if any."""
    with Image.open(slide) as image:
        size = image.size
    filters = "format=yuv420p"
    if cues:
        filters += "," + burn_filter(cues, size, out.with_suffix(".ass"))
    command = ffmpeg.Command().input(slide, loop=1, framerate=FPS)
    command.output(out, vf=filters, an=True, **{"frames:v": frames, **VIDEO})
    ffmpeg.run(command, ctx, duration=frames / FPS, on_progress=on_progress)
    return out


def burn_filter(cues: list[captions.Cue], size: tuple[int, int], ass: pathlib.Path) -> str:
    """Write the cues as a styled ASS file for a frame of `size`; return the filter that burns it in."""
    ass.write_text(captions.to_ass(cues, _caption_style(size)), encoding="utf-8")
    return f"subtitles=filename={ffmpeg.escape_filter_path(ass)}:fontsdir={ffmpeg.escape_filter_path(fonts.DIRECTORY)}"


def join(clips: list[pathlib.Path], narration: pathlib.Path, out: pathlib.Path, ctx: base.Context) -> pathlib.Path:
    """Join the scene clips and lay the narration under them as AAC, into `out` (mp4)."""
    listing = out.with_suffix(".concat.txt")
    listing.write_text("".join(f"file '{_quoted(clip.resolve())}'\n" for clip in clips), encoding="utf-8")
    command = ffmpeg.Command().input(listing, f="concat", safe=0).input(narration)
    command.output(
        out,
        map=["0:v:0", "1:a:0"],
        **{"c:v": "copy", "c:a": "aac", "b:a": "128k", "ar": 44100, "ac": 2, "movflags": "+faststart"},
    )
    ffmpeg.run(command, ctx)
    return out


def thumbnail(slide: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
    """Save the slide scaled down to THUMBNAIL pixels on its longer side as a PNG."""
    with Image.open(slide) as image:
        small = image.convert("RGB")
    small.thumbnail((THUMBNAIL, THUMBNAIL))
    small.save(out, format="PNG")
    return out


def _caption_style(size: tuple[int, int]) -> captions.Style:
    font_px, margin = slides.caption_metrics(size)
    return captions.Style(fonts.get(fonts.DEFAULT).family, font_px, CAPTION_COLOUR, size[0], size[1], margin)


def _quoted(path: pathlib.Path) -> str:
    # The concat demuxer's quoting: inside '...', a quote is written as '\''.
    return str(path).replace("'", "'\\''")
