"""Rendering one clip with one ffmpeg command: an accurate cut (input seek while re-encoding),
a centre crop to 9:16 or 1:1 scaled to 1080 wide (or the source size, made even), captions
burned in from a styled ASS file with a shipped font, H.264/AAC yuv420p with faststart.
A source without sound gets a silent AAC track, so every clip plays the same way.
"""

import dataclasses
import pathlib
from collections.abc import Callable

from processors import base, captions, fonts
from processors.providers import ffmpeg

SIZES = {"9:16": (1080, 1920), "1:1": (1080, 1080)}
# Caption size is given on a frame whose shorter side is this many pixels, then scaled.
FONT_REFERENCE = 405


@dataclasses.dataclass(frozen=True)
class Look:
    """How a clip is framed and captioned."""

    aspect: str  # 9:16, 1:1 or original
    subtitles: bool
    font: fonts.Font
    font_size: int
    font_color: str


def frame_size(aspect: str, width: int, height: int) -> tuple[int, int]:
    """Return the output size for the aspect: fixed for 9:16 and 1:1, else the source's, even."""
    return SIZES.get(aspect, (width - width % 2, height - height % 2))


def video_filter(aspect: str, width: int, height: int) -> str:
    """Return the crop-and-scale filter for the aspect (centre crop, no stretching)."""
    out_w, out_h = frame_size(aspect, width, height)
    if aspect == "original":
        return f"scale={out_w}:{out_h},setsar=1"
    if width * out_h > height * out_w:  # source wider than the target: crop the sides
        crop_w, crop_h = _even(height * out_w / out_h), height
    else:
        crop_w, crop_h = width, _even(width * out_h / out_w)
    return f"crop={crop_w}:{crop_h},scale={out_w}:{out_h},setsar=1"


def render(
    source: pathlib.Path,
    probe: ffmpeg.Probe,
    segment_start: float,
    segment_end: float,
    cues: list[captions.Cue],
    look: Look,
    out: pathlib.Path,
    ctx: base.Context,
    on_progress: Callable[[float], None] | None = None,
) -> pathlib.Path:
    """Cut [segment_start, segment_end] of the source into `out` with the look's crop and captions."""
    video = probe.video[0]
    length = segment_end - segment_start
    filters = video_filter(look.aspect, video.width, video.height)
    out_w, out_h = frame_size(look.aspect, video.width, video.height)
    clip_cues = captions.clip(cues, segment_start, segment_end)
    if look.subtitles and clip_cues:
        ass = out.with_suffix(".ass")
        ass.write_text(captions.to_ass(clip_cues, _style(look, out_w, out_h)), encoding="utf-8")
        filters += (
            f",subtitles=filename={ffmpeg.escape_filter_path(ass)}"
            f":fontsdir={ffmpeg.escape_filter_path(fonts.DIRECTORY)}"
        )
    command = ffmpeg.Command().input(source, ss=segment_start, t=length)
    audio = "0:a:0"
    if not probe.audio:
        command.input("anullsrc=r=44100:cl=stereo", f="lavfi", t=length)
        audio = "1:a:0"
    command.output(
        out,
        map=["0:v:0", audio],
        vf=filters,
        t=length,
        **{
            "c:v": "libx264",
            "preset": "veryfast",
            "crf": 20,
            "pix_fmt": "yuv420p",
            "c:a": "aac",
            "b:a": "128k",
            "ar": 44100,
            "ac": 2,
            "movflags": "+faststart",
        },
    )
    ffmpeg.run(command, ctx, duration=length, on_progress=on_progress)
    return out


def _style(look: Look, width: int, height: int) -> captions.Style:
    size = round(look.font_size * min(width, height) / FONT_REFERENCE)
    return captions.Style(look.font.family, size, look.font_color, width, height)


def _even(value: float) -> int:
    return max(2, int(value) - int(value) % 2)
