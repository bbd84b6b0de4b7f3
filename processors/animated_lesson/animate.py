"""Frames of an animated lesson, drawn with Pillow.

A section's blocks are laid out as one explainer slide would be (`explainer_video.slides`: the
same themes, fonts, wrapping, shrinking to fit and syntax colours), then each block is animated
over its timing (`lesson.schedule`):

- typing: the block's characters appear in reading order over the animation (boxes, such as a
  code block's background, at once);
- fade: the block is blended in from the background, its opacity rising linearly;
- slide: the block moves in from the right edge to its place, easing out.

To stay fast only what changes is drawn: the frame starts from a "settled" image (background and
finished blocks, updated when a block finishes), each animating block is drawn over a copy, and
a frame with nothing animating reuses the previous frame's bytes.
"""

import dataclasses
import math
from collections.abc import Iterator

from PIL import Image, ImageChops, ImageDraw

from processors.animated_lesson import lesson
from processors.explainer_video import markup, slides, themes

FPS = 15
PAD = 2  # pixels around a block's drawn area, for anti-aliased edges


def frame_size(aspect: str, short: int) -> tuple[int, int]:
    """Return the frame size of an aspect with its shorter side `short` pixels (both even)."""
    width, height = slides.SIZES[aspect]
    scale = short / min(width, height)
    return (2 * round(width * scale / 2), 2 * round(height * scale / 2))


def to_markup(block: lesson.Block) -> markup.Block:
    """Return the slide block that draws a lesson block."""
    if block.type == "heading":
        return markup.Heading(1, markup.inline(block.content))
    if block.type == "bullets":
        return markup.Bullets(tuple(markup.Item(0, "-", markup.inline(item)) for item in block.items))
    if block.type == "code":
        return markup.Code(block.language, block.content)
    return markup.Paragraph(markup.inline(block.content))


def problem(section: lesson.Section, size: tuple[int, int], captions: bool) -> str | None:
    """Return why a section's blocks cannot be drawn on a frame of `size`, None if they can."""
    band = slides.caption_band(size) if captions else 0
    # The theme does not change sizes; any one will do.
    if _layout(section, size, themes.THEMES[themes.DEFAULT], band) is None:
        return "the blocks hold too much to fit on one frame; shorten them"
    return None


@dataclasses.dataclass
class _Placed:
    """A block laid out: its operations, drawn area, finished picture of that area and timing."""

    ops: list
    box: tuple[int, int, int, int]
    done: Image.Image
    animation: str
    start: float
    end: float
    chars: int


class Painter:
    """Draws the frames of one section."""

    def __init__(self, section: lesson.Section, timings: list[lesson.Timing], size, theme, captions: bool):
        band = slides.caption_band(size) if captions else 0
        groups = _layout(section, size, theme, band)
        if groups is None:
            raise ValueError(problem(section, size, captions))
        self.size = size
        self.settled = Image.new("RGB", size, theme.background)
        zipped = zip(groups, section.blocks, timings, strict=True)
        self.blocks = [self._place(ops, block, timing) for ops, block, timing in zipped]
        self._pending = list(self.blocks)  # not yet drawn into `settled`
        self._bytes: bytes | None = None

    def boxes(self) -> list[tuple[int, int, int, int]]:
        """Return each block's drawn area on the frame as (left, top, right, bottom)."""
        return [placed.box for placed in self.blocks]

    def frames(self, count: int, fps: float = FPS) -> Iterator[bytes]:
        """Yield `count` frames as raw RGB bytes, frame k showing the section at k / fps seconds."""
        for number in range(count):
            yield self.frame(number / fps)

    def frame(self, seconds: float) -> bytes:
        """Return the frame at `seconds` from the section's start as raw RGB bytes."""
        self._settle(seconds)
        moving = [p for p in self._pending if p.start <= seconds]
        if not moving:
            if self._bytes is None:
                self._bytes = self.settled.tobytes()
            return self._bytes
        image = self.settled.copy()
        for placed in moving:
            DRAWERS[placed.animation](image, placed, (seconds - placed.start) / (placed.end - placed.start))
        return image.tobytes()

    def _settle(self, seconds: float) -> None:
        for placed in [p for p in self._pending if p.end <= seconds]:
            self.settled.paste(placed.done, placed.box[:2])
            self._pending.remove(placed)
            self._bytes = None

    def _place(self, ops: list, block: lesson.Block, timing: lesson.Timing) -> _Placed:
        full = self.settled.copy()
        slides.draw(ImageDraw.Draw(full), ops)
        found = ImageChops.difference(full, self.settled).getbbox() or (0, 0, 1, 1)
        box = (
            max(0, found[0] - PAD),
            max(0, found[1] - PAD),
            min(self.size[0], found[2] + PAD),
            min(self.size[1], found[3] + PAD),
        )
        chars = sum(len(op.text) for op in ops if isinstance(op, slides.Run))
        end = timing.start + timing.duration
        return _Placed(ops, box, full.crop(box), block.animation, timing.start, end, chars)


def _layout(section: lesson.Section, size, theme, band: int) -> list[list] | None:
    return slides.layout_blocks([to_markup(block) for block in section.blocks], size, theme, band)


def _typing(image: Image.Image, placed: _Placed, fraction: float) -> None:
    left = math.floor(placed.chars * fraction)
    shown = []
    for op in placed.ops:
        if isinstance(op, slides.Run):
            if left <= 0:
                continue
            op = dataclasses.replace(op, text=op.text[:left])
            left -= len(op.text)
        shown.append(op)
    slides.draw(ImageDraw.Draw(image), shown)


def _fade(image: Image.Image, placed: _Placed, fraction: float) -> None:
    under = image.crop(placed.box)
    image.paste(Image.blend(under, placed.done, fraction), placed.box[:2])


def _slide(image: Image.Image, placed: _Placed, fraction: float) -> None:
    eased = 1 - (1 - fraction) ** 3
    shift = round((1 - eased) * (image.width - placed.box[0]))
    # The block's picture is opaque, but its margins are the plain background: blocks are
    # stacked in rows, so moving one sideways covers nothing of another.
    image.paste(placed.done, (placed.box[0] + shift, placed.box[1]))


DRAWERS = {"typing": _typing, "fade": _fade, "slide": _slide}
