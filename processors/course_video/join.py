"""The joined course video: a title card, then every lesson's video in order, as one mp4 with a
chapter marker per lesson (and one for the title card), re-encoded once so the parts need not
share their encoder settings. The chapters are MP4 chapters ffprobe, VLC and mpv list."""

import dataclasses
import pathlib

from processors import base
from processors.explainer_video import render, slides, themes
from processors.providers import ffmpeg

TITLE_SECONDS = 3.0
AUDIO = {"c:a": "aac", "b:a": "128k", "ar": 44100, "ac": 2}


@dataclasses.dataclass(frozen=True)
class Part:
    """One lesson's video and the chapter title it gets."""

    video: pathlib.Path
    title: str


def title_card(title: str, chapters: list[str], aspect: str, out: pathlib.Path, ctx: base.Context) -> pathlib.Path:
    """Draw the course's title and its chapters on a slide; return a silent clip of it."""
    items = "\n".join(f"{number}. {chapter}" for number, chapter in enumerate(chapters, 1))
    slide = slides.render(
        f"# {title}\n\n{items}", aspect, themes.THEMES[themes.DEFAULT], out.with_suffix(".png"), False
    )
    frames = round(TITLE_SECONDS * render.FPS)
    return render.scene_clip(slide, frames, [], out, ctx)


def join(card: pathlib.Path, course_title: str, parts: list[Part], out: pathlib.Path, ctx: base.Context) -> list[dict]:
    """Write the title card and the parts as one mp4 with chapters into `out`; return the
    chapters as `{title, start, end}` in seconds."""
    lengths = [TITLE_SECONDS] + [ffmpeg.probe(part.video).duration for part in parts]
    chapters, start = [], 0.0
    for title, length in zip([course_title, *(part.title for part in parts)], lengths, strict=True):
        chapters.append({"title": title, "start": round(start, 3), "end": round(start + length, 3)})
        start += length
    metadata = out.with_suffix(".chapters.txt")
    metadata.write_text(_ffmetadata(course_title, chapters), encoding="utf-8")
    command = ffmpeg.Command().input(card).input("anullsrc=r=44100:cl=stereo", f="lavfi", t=TITLE_SECONDS)
    for part in parts:
        command.input(part.video)
    meta_index = len(parts) + 2
    command.input(metadata, f="ffmetadata")
    labels = "[0:v:0][1:a:0]" + "".join(f"[{i + 2}:v:0][{i + 2}:a:0]" for i in range(len(parts)))
    command.filter_complex(f"{labels}concat=n={len(parts) + 1}:v=1:a=1[v][a]")
    options = {**render.VIDEO, **AUDIO, "map_metadata": meta_index, "map_chapters": meta_index}
    command.output(out, map=["[v]", "[a]"], movflags="+faststart", **options)
    ffmpeg.run(command, ctx, duration=start)
    return chapters


def _ffmetadata(title: str, chapters: list[dict]) -> str:
    lines = [";FFMETADATA1", f"title={_escaped(title)}"]
    for chapter in chapters:
        start, end = round(chapter["start"] * 1000), round(chapter["end"] * 1000)
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={start}", f"END={end}", f"title={_escaped(chapter['title'])}"]
    return "\n".join(lines) + "\n"


def _escaped(text: str) -> str:
    """Escape what FFMETADATA gives a meaning to: = ; # \\ and newlines."""
    for char in "\\=;#":
        text = text.replace(char, "\\" + char)
    return " ".join(text.split())
