"""Slides: a scene's markdown laid out on a frame of the video's size and drawn with Pillow.

Layout makes a list of drawing operations (text runs and boxes) for a given text scale; the
scale starts at MAX_SCALE and shrinks by steps until the blocks fit between the margins, down
to MIN_SCALE, so a slide with little on it is drawn large rather than lost in an empty frame.
The blocks are centred as a group, vertically in the room above the captions and horizontally
between the margins (lines stay left-aligned within the group). A slide that does not fit even
at MIN_SCALE is refused (`problem` says so), never cut.

Fonts are the shipped ones: Open Sans Bold for headings, DejaVu Sans for text, DejaVu Sans Bold
for table headers, DejaVu Sans Mono for code.
"""

import dataclasses
import functools
import math
import pathlib

from PIL import Image, ImageDraw, ImageFont

from processors import fonts
from processors.explainer_video import highlight, markup, themes

SIZES = {"16:9": (1920, 1080), "9:16": (1080, 1920), "1:1": (1080, 1080)}
MARGIN = 0.07  # of the frame's shorter side
# Font sizes in pixels at scale 1 on a frame whose shorter side is REFERENCE pixels.
REFERENCE = 1080
FONT_PX = {"h1": 76, "h2": 56, "text": 42, "code": 34, "table": 36}
MIN_SCALE = 0.5
MAX_SCALE = 1.8
SHRINK = 0.9
# Burned-in captions: font size at scale 1 like FONT_PX, bottom margin as a share of the short side.
CAPTION_PX = 44
CAPTION_MARGIN = 0.04
CAPTION_LINES = 2  # the band kept free for captions holds this many lines

HEADING_FONT = fonts.get("open-sans").path
BOLD_FONT = fonts.get("dejavu-sans").path
TEXT_FONT = fonts.DIRECTORY / "DejaVuSans.ttf"
MONO_FONT = fonts.DIRECTORY / "DejaVuSansMono.ttf"


@dataclasses.dataclass(frozen=True)
class Run:
    """Text drawn with its top-left corner at (x, y)."""

    x: float
    y: float
    text: str
    font: ImageFont.FreeTypeFont
    fill: themes.RGB


@dataclasses.dataclass(frozen=True)
class Box:
    """A filled rectangle, optionally outlined and with rounded corners."""

    box: tuple[float, float, float, float]
    fill: themes.RGB | None
    outline: themes.RGB | None = None
    radius: float = 0


@dataclasses.dataclass
class _Cursor:
    """Where the next block goes, and what has been laid out so far."""

    left: float
    right: float
    unit: float  # pixels per font pixel: the frame's size times the text scale
    theme: themes.Theme
    y: float = 0.0
    ops: list = dataclasses.field(default_factory=list)

    @property
    def width(self) -> float:
        return self.right - self.left

    def font(self, path: pathlib.Path, role: str) -> ImageFont.FreeTypeFont:
        return _font(str(path), max(8, round(FONT_PX[role] * self.unit)))


def render(markdown: str, aspect: str, theme: themes.Theme, out: pathlib.Path, captions: bool) -> pathlib.Path:
    """Draw the slide as a PNG of the aspect's size, keeping the captions' band free if
    `captions`; ValueError if it does not fit."""
    size = SIZES[aspect]
    ops = layout(markup.parse(markdown), size, theme, caption_band(size) if captions else 0)
    if ops is None:
        raise ValueError(f"the slide does not fit on a {size[0]}x{size[1]} frame even with its text at its smallest")
    image = Image.new("RGB", size, theme.background)
    draw(ImageDraw.Draw(image), ops)
    image.save(out, format="PNG", optimize=False)
    return out


def draw(canvas: ImageDraw.ImageDraw, ops: list) -> None:
    """Draw layout operations (boxes and text runs) on a Pillow canvas."""
    for op in ops:
        if isinstance(op, Box):
            canvas.rounded_rectangle(op.box, radius=op.radius, fill=op.fill, outline=op.outline, width=1)
        else:
            canvas.text((op.x, op.y), op.text, font=op.font, fill=op.fill)


def problem(markdown: str, aspect: str, captions: bool) -> str | None:
    """Return why a slide cannot be drawn (nothing on it, too much to fit), None if it can."""
    blocks = markup.parse(markdown)
    if not blocks:
        return "the slide is empty"
    size = SIZES[aspect]
    # The theme does not change sizes; any one will do.
    if layout(blocks, size, themes.THEMES[themes.DEFAULT], caption_band(size) if captions else 0) is None:
        return "the slide holds too much to fit on one frame; shorten it"
    return None


def caption_metrics(size: tuple[int, int]) -> tuple[int, int]:
    """Return the burned-in captions' font size and bottom margin in pixels for a frame size."""
    short = min(size)
    return round(CAPTION_PX * short / REFERENCE), round(CAPTION_MARGIN * short)


def caption_band(size: tuple[int, int]) -> int:
    """Return the height at the bottom of the frame that captions may cover."""
    font_px, margin = caption_metrics(size)
    return round(margin + CAPTION_LINES * font_px * 1.4)


def layout(blocks: list[markup.Block], size: tuple[int, int], theme: themes.Theme, bottom: float = 0) -> list | None:
    """Return the drawing operations of the blocks at the largest scale that fits above a band
    of `bottom` pixels, else None."""
    groups = layout_blocks(blocks, size, theme, bottom)
    return None if groups is None else [op for group in groups for op in group]


def layout_blocks(
    blocks: list[markup.Block], size: tuple[int, int], theme: themes.Theme, bottom: float = 0
) -> list[list] | None:
    """Return `layout`'s operations grouped by block (one list per block, in order), else None."""
    short = min(size)
    margin = round(short * MARGIN)
    scale = MAX_SCALE
    while scale >= MIN_SCALE - 1e-9:
        cursor = _Cursor(margin, size[0] - margin, short / REFERENCE * scale, theme)
        bounds = _lay_blocks(blocks, cursor)
        room = size[1] - 2 * margin - max(0, bottom - margin)
        if cursor.y <= room:
            dx = (cursor.right - _right_edge(cursor.ops)) / 2
            dy = margin + (room - cursor.y) / 2
            return [[_moved(op, dx, dy) for op in cursor.ops[first:end]] for first, end in bounds]
        scale *= SHRINK
    return None


def _right_edge(ops: list) -> float:
    """Return the right edge of what the operations draw."""
    return max((op.box[2] if isinstance(op, Box) else op.x + op.font.getlength(op.text)) for op in ops)


def _moved(op, dx: float, dy: float):
    if isinstance(op, Box):
        x0, y0, x1, y1 = op.box
        return dataclasses.replace(op, box=(x0 + dx, y0 + dy, x1 + dx, y1 + dy))
    return dataclasses.replace(op, x=op.x + dx, y=op.y + dy)


def _lay_blocks(blocks: list[markup.Block], cursor: _Cursor) -> list[tuple[int, int]]:
    """Lay out the blocks; return each block's slice of `cursor.ops` as (first, end)."""
    bounds = []
    for number, block in enumerate(blocks):
        if number:
            cursor.y += FONT_PX["text"] * cursor.unit * 0.6
        first = len(cursor.ops)
        LAYERS[type(block)](block, cursor)
        bounds.append((first, len(cursor.ops)))
    return bounds


def _lay_heading(block: markup.Heading, cursor: _Cursor) -> None:
    role = "h1" if block.level == 1 else "h2"
    font = cursor.font(HEADING_FONT, role)
    colour = cursor.theme.accent if block.level == 1 else cursor.theme.foreground
    _lay_lines(wrap(block.text, font, cursor.width), cursor.left, font, colour, 1.0, cursor)
    if block.level == 1:  # a short accent rule under the title
        thickness = max(3, round(6 * cursor.unit))
        cursor.y += thickness * 2
        box = (cursor.left, cursor.y, cursor.left + cursor.width * 0.12, cursor.y + thickness)
        cursor.ops.append(Box(box, cursor.theme.accent))
        cursor.y += thickness


def _lay_paragraph(block: markup.Paragraph, cursor: _Cursor) -> None:
    font = cursor.font(TEXT_FONT, "text")
    _lay_lines(wrap(block.text, font, cursor.width), cursor.left, font, cursor.theme.foreground, 1.12, cursor)


def _lay_bullets(block: markup.Bullets, cursor: _Cursor) -> None:
    font = cursor.font(TEXT_FONT, "text")
    size = font.size
    for number, item in enumerate(block.items):
        if number:
            cursor.y += size * 0.35
        indent = cursor.left + item.depth * size * 1.4
        marker = item.marker if item.marker != "-" else ("\u2022" if item.depth == 0 else "\u2013")
        text_x = indent + max(size * 1.1, font.getlength(marker) + size * 0.5)
        cursor.ops.append(Run(indent, cursor.y, marker, font, cursor.theme.accent))
        _lay_lines(wrap(item.text, font, cursor.right - text_x), text_x, font, cursor.theme.foreground, 1.12, cursor)


def _lay_code(block: markup.Code, cursor: _Cursor) -> None:
    font = cursor.font(MONO_FONT, "code")
    pad, line_height = font.size * 0.7, _step(font, 1.05)
    char = font.getlength("M")
    columns = max(1, math.floor((cursor.width - 2 * pad) / char))
    rows = [
        piece
        for line in highlight.lines(block.text, block.language, cursor.theme.code_style)
        for piece in _cut(line, columns)
    ]
    top = cursor.y
    fill = highlight.background(cursor.theme.code_style)
    bottom = top + 2 * pad + len(rows) * line_height
    cursor.ops.append(Box((cursor.left, top, cursor.right, bottom), fill, cursor.theme.muted, radius=font.size * 0.4))
    for number, runs in enumerate(rows):
        x = cursor.left + pad
        for text, colour in runs:
            cursor.ops.append(Run(x, top + pad + number * line_height, text, font, colour))
            x += char * len(text)
    cursor.y = bottom


def _cut(runs: list[highlight.Run], columns: int) -> list[list[highlight.Run]]:
    """Split one code line's runs into rows of at most `columns` characters."""
    rows: list[list[highlight.Run]] = [[]]
    used = 0
    for text, colour in runs:
        while text:
            if used == columns:
                rows.append([])
                used = 0
            piece, text = text[: columns - used], text[columns - used :]
            rows[-1].append((piece, colour))
            used += len(piece)
    return rows


def _lay_table(block: markup.Table, cursor: _Cursor) -> None:
    font, bold = cursor.font(TEXT_FONT, "table"), cursor.font(BOLD_FONT, "table")
    pad_x, pad_y, line_height = font.size * 0.5, font.size * 0.3, _step(font, 1.0)
    widths = _column_widths(block, font, bold, cursor.width, pad_x)
    for number, row in enumerate((block.header, *block.rows)):
        row_font = bold if number == 0 else font
        cells = [wrap(text, row_font, width - 2 * pad_x) for text, width in zip(row, widths, strict=True)]
        height = max(len(lines) for lines in cells) * line_height + 2 * pad_y
        fill = cursor.theme.header_fill if number == 0 else (cursor.theme.stripe_fill if number % 2 == 0 else None)
        x = cursor.left
        for lines, width in zip(cells, widths, strict=True):
            cursor.ops.append(Box((x, cursor.y, x + width, cursor.y + height), fill, cursor.theme.muted))
            for index, line in enumerate(lines):
                cursor.ops.append(
                    Run(x + pad_x, cursor.y + pad_y + index * line_height, line, row_font, cursor.theme.foreground)
                )
            x += width
        cursor.y += height


def _column_widths(block: markup.Table, font, bold, room: float, pad_x: float) -> list[float]:
    rows = [(bold, block.header), *((font, row) for row in block.rows)]
    natural = [max(f.getlength(row[i]) for f, row in rows) + 2 * pad_x for i in range(len(block.header))]
    least = [max(_longest_word(f, row[i]) for f, row in rows) + 2 * pad_x for i in range(len(block.header))]
    if sum(natural) <= room:
        return natural
    if sum(least) <= room:
        # Every column keeps its longest word whole; the room left goes where text would wrap most.
        spare = (room - sum(least)) / (sum(natural) - sum(least))
        return [low + (high - low) * spare for low, high in zip(least, natural, strict=True)]
    return [width * room / sum(least) for width in least]  # words must be cut


def _longest_word(font: ImageFont.FreeTypeFont, text: str) -> float:
    return max((font.getlength(word) for word in text.split()), default=0.0)


def _lay_lines(lines: list[str], x: float, font, colour: themes.RGB, spacing: float, cursor: _Cursor) -> None:
    for line in lines:
        cursor.ops.append(Run(x, cursor.y, line, font, colour))
        cursor.y += _step(font, spacing)


def _step(font: ImageFont.FreeTypeFont, spacing: float) -> float:
    """Return the distance between lines: the font's ascent plus descent, times `spacing`."""
    return sum(font.getmetrics()) * spacing


LAYERS = {
    markup.Heading: _lay_heading,
    markup.Paragraph: _lay_paragraph,
    markup.Bullets: _lay_bullets,
    markup.Code: _lay_code,
    markup.Table: _lay_table,
}


def wrap(text: str, font: ImageFont.FreeTypeFont, width: float) -> list[str]:
    """Break text into lines no wider than `width`; a word longer than a line is cut."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if font.getlength(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = word
        while len(line) > 1 and font.getlength(line) > width:
            cut = _fitting_chars(line, font, width)
            lines.append(line[:cut])
            line = line[cut:]
    return [*lines, line] if line else lines or [""]


def _fitting_chars(word: str, font: ImageFont.FreeTypeFont, width: float) -> int:
    count = 1
    while count < len(word) and font.getlength(word[: count + 1]) <= width:
        count += 1
    return count


@functools.cache
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)
