"""The slide markdown: a small subset, parsed into blocks the slide renderer lays out.

Understood: `#` and `##` headings (deeper levels are shown as `##`), bullet lists with `-`, `*`
or `+` and numbered lists (`1.`), one nesting level (an item indented by two or more spaces),
fenced code blocks (```` ```python ````), pipe tables with a header row and a `---` separator
row, and paragraphs (consecutive lines joined). Inline markup is reduced to its text: `**bold**`,
`*em*`, `` `code` `` and `[text](url)` show as `bold`, `em`, `code` and `text`.
"""

import dataclasses
import re

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_ITEM = re.compile(r"^(\s*)([-*+]|\d{1,3}[.)])\s+(.*)$")
_FENCE = re.compile(r"^\s*(```|~~~)\s*([\w+#.-]*)")
_SEPARATOR_CELL = re.compile(r"^\s*:?-{1,}:?\s*$")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
# Only `*` emphasis: `_` would eat the underscores of snake_case names, common on these slides.
_EMPHASIS = re.compile(r"(\*\*|\*|`)(?=\S)(.+?)(?<=\S)\1")


@dataclasses.dataclass(frozen=True)
class Heading:
    level: int  # 1 or 2
    text: str


@dataclasses.dataclass(frozen=True)
class Item:
    depth: int  # 0 or 1
    marker: str  # "-" for bullets, "3." for numbered items
    text: str


@dataclasses.dataclass(frozen=True)
class Bullets:
    items: tuple[Item, ...]


@dataclasses.dataclass(frozen=True)
class Code:
    language: str
    text: str


@dataclasses.dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclasses.dataclass(frozen=True)
class Paragraph:
    text: str


Block = Heading | Bullets | Code | Table | Paragraph


def parse(markdown: str) -> list[Block]:
    """Return the blocks of a slide's markdown, in order."""
    lines = markdown.expandtabs(4).splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        if not lines[index].strip():
            index += 1
            continue
        block, index = _block(lines, index)
        blocks.append(block)
    return blocks


def starts_with_heading(markdown: str) -> bool:
    """Tell whether the slide's first block is a heading."""
    blocks = parse(markdown)
    return bool(blocks) and isinstance(blocks[0], Heading)


def inline(text: str) -> str:
    """Return text with its inline markup (emphasis, code spans, links) reduced to the words."""
    text = _LINK.sub(r"\1", text)
    previous = None
    while previous != text:  # nested emphasis (**`x`**) takes more than one pass
        previous, text = text, _EMPHASIS.sub(r"\2", text)
    return " ".join(text.split())


def _block(lines: list[str], index: int) -> tuple[Block, int]:
    line = lines[index]
    heading = _HEADING.match(line)
    if heading:
        return Heading(min(2, len(heading.group(1))), inline(heading.group(2))), index + 1
    if _FENCE.match(line):
        return _code(lines, index)
    if _ITEM.match(line):
        return _bullets(lines, index)
    if _is_table(lines, index):
        return _table(lines, index)
    return _paragraph(lines, index)


def _code(lines: list[str], index: int) -> tuple[Code, int]:
    fence = _FENCE.match(lines[index])
    marker, language = fence.group(1), fence.group(2).lower()
    body = []
    index += 1
    while index < len(lines) and not lines[index].strip().startswith(marker):
        body.append(lines[index])
        index += 1
    # An unclosed fence runs to the end of the slide, as in CommonMark.
    return Code(language, "\n".join(body).rstrip("\n")), index + 1


def _bullets(lines: list[str], index: int) -> tuple[Bullets, int]:
    items: list[Item] = []
    while index < len(lines):
        item = _ITEM.match(lines[index])
        if item:
            depth = 1 if len(item.group(1)) >= 2 and items else 0
            marker = "-" if item.group(2) in "-*+" else item.group(2).rstrip(".)") + "."
            items.append(Item(depth, marker, inline(item.group(3))))
        elif lines[index].strip() and items and lines[index].startswith(" "):
            last = items[-1]  # an indented line continues the item above
            items[-1] = Item(last.depth, last.marker, f"{last.text} {inline(lines[index])}")
        else:
            break
        index += 1
    return Bullets(tuple(items)), index


def _is_table(lines: list[str], index: int) -> bool:
    if "|" not in lines[index] or index + 1 >= len(lines):
        return False
    cells = _cells(lines[index + 1])
    return bool(cells) and all(_SEPARATOR_CELL.match(cell) for cell in cells)


def _table(lines: list[str], index: int) -> tuple[Table, int]:
    header = tuple(inline(cell) for cell in _cells(lines[index]))
    rows = []
    index += 2
    while index < len(lines) and "|" in lines[index] and lines[index].strip():
        cells = [inline(cell) for cell in _cells(lines[index])]
        # Rows are cut or padded to the header's width, as GitHub's tables are.
        rows.append(tuple((cells + [""] * len(header))[: len(header)]))
        index += 1
    return Table(header, tuple(rows)), index


def _cells(line: str) -> list[str]:
    text = line.strip()
    if text.startswith("|"):
        text = text[1:]
    if text.endswith("|") and not text.endswith("\\|"):
        text = text[:-1]
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", text)]


def _paragraph(lines: list[str], index: int) -> tuple[Paragraph, int]:
    parts = []
    while index < len(lines) and lines[index].strip():
        if parts and _starts_block(lines, index):
            break
        parts.append(lines[index].strip())
        index += 1
    return Paragraph(inline(" ".join(parts))), index


def _starts_block(lines: list[str], index: int) -> bool:
    line = lines[index]
    return bool(_HEADING.match(line) or _FENCE.match(line) or _ITEM.match(line)) or _is_table(lines, index)
