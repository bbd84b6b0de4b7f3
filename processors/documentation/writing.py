"""Writing a document with the LLM, grounded in its source.

The source is cut into numbered passages; the outline names sections, the points each covers
and the passages each draws on; then each section's body is written from its own passages
only. Every answer is checked (`processors.llm`: one re-ask naming the problems, then the task
fails): the outline for sections that exist, differ and cite real passages; a body for being
non-empty, for no placeholder text and for no figure the source does not contain, the cheap
check that catches the commonest invented fact.
"""

import dataclasses
import re
import textwrap

import pydantic

from processors import base, llm
from processors.documentation import render
from processors.prompts import documentation as prompts

TYPE = "documentation"
MAX_PASSAGE = 1500  # characters; a longer paragraph is cut at sentence or line ends
MIN_PASSAGE = 300  # a shorter block (a heading line, a one-line paragraph) joins the next one
MAX_TITLE = 120
MAX_SECTION_SOURCE = 60_000  # characters of cited passages sent to write one section
DEFAULT_AUDIENCE = "general readers"

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_LIST_MARKER = re.compile(r"^\s*\d+[.)]\s+", re.MULTILINE)
_PLACEHOLDER = re.compile(r"lorem ipsum|\bTODO\b|\bTBD\b|\[insert[^\]]*\]|\[placeholder[^\]]*\]", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class OutlineSection(pydantic.BaseModel):
    title: str
    points: list[str]
    passages: list[int]


class DocumentOutline(pydantic.BaseModel):
    title: str
    sections: list[OutlineSection]


class SectionBody(pydantic.BaseModel):
    markdown: str


@dataclasses.dataclass(frozen=True)
class Section:
    """One planned section: its title, the points it covers, the passages it draws on (1-based)."""

    title: str
    points: tuple[str, ...]
    passages: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Plan:
    """The outline as the task uses it, and what the LLM call cost."""

    title: str
    sections: tuple[Section, ...]
    usage: dict
    model: str


def passages(content: str) -> list[str]:
    """Cut the source into passages of at most MAX_PASSAGE characters, at paragraph ends first."""
    blocks = [block.strip() for block in re.split(r"\n[ \t]*\n", content) if block.strip()]
    pieces = [piece for block in blocks for piece in _split_long(block)]
    merged: list[str] = []
    for piece in pieces:
        # A short block takes in the next one, unless that one opens a new part with a heading.
        joins = merged and len(merged[-1]) < MIN_PASSAGE and not piece.startswith("#")
        if joins and len(merged[-1]) + len(piece) + 2 <= MAX_PASSAGE:
            merged[-1] = f"{merged[-1]}\n\n{piece}"
        else:
            merged.append(piece)
    return merged


def _split_long(block: str) -> list[str]:
    if len(block) <= MAX_PASSAGE:
        return [block]
    # Lines keep lists, code and timed transcripts intact; prose without line breaks goes by sentence.
    joiner = "\n" if "\n" in block else " "
    units = block.split("\n") if joiner == "\n" else _SENTENCE_END.split(block)
    units = [cut for unit in units for cut in (textwrap.wrap(unit, MAX_PASSAGE) if len(unit) > MAX_PASSAGE else [unit])]
    packed: list[str] = []
    for unit in units:
        if packed and len(packed[-1]) + len(joiner) + len(unit) <= MAX_PASSAGE:
            packed[-1] = f"{packed[-1]}{joiner}{unit}"
        else:
            packed.append(unit)
    return [piece for piece in packed if piece.strip()]


def numbered(pieces: list[str], which: list[int] | None = None) -> str:
    """Return passages as the prompts show them: `[n]` on its own line, then the text."""
    chosen = which or list(range(1, len(pieces) + 1))
    return "\n\n".join(f"[{number}]\n{pieces[number - 1]}" for number in chosen)


def clean_title(text: str) -> str:
    """Return a title on one line, without Markdown heading marks or surrounding quotes."""
    return " ".join(text.split()).lstrip("#").strip().strip("\"'").strip()


def outline(ctx: base.Context, pieces: list[str], params: dict) -> Plan:
    """Ask for the outline and return it checked."""
    given = clean_title(params.get("title") or "")
    rule = prompts.TITLE_GIVEN.format(title=given) if given else prompts.TITLE_WANTED
    messages = prompts.OUTLINE.messages(
        language=params["language"],
        audience=params.get("audience") or DEFAULT_AUDIENCE,
        doc_type_rules=prompts.DOC_TYPES[params["doc_type"]],
        max_sections=params["max_sections"],
        title_rule=rule,
        passages=numbered(pieces),
    )

    def check(answer: DocumentOutline) -> list[str]:
        return outline_problems(answer, len(pieces), params["max_sections"], need_title=not given)

    answer = llm.ask(ctx, TYPE, messages, DocumentOutline, check)
    sections = tuple(
        Section(clean_title(s.title), tuple(p.strip() for p in s.points if p.strip()), tuple(dict.fromkeys(s.passages)))
        for s in answer.value.sections
    )
    return Plan(given or clean_title(answer.value.title), sections, answer.usage, answer.model)


def outline_problems(answer: DocumentOutline, passage_count: int, max_sections: int, need_title: bool) -> list[str]:
    """Return what is wrong with an outline: no or too many sections, bad titles, uncited points."""
    problems = ["the document title is empty"] if need_title and not clean_title(answer.title) else []
    if not answer.sections:
        return [*problems, "the outline has no sections; give at least one"]
    if len(answer.sections) > max_sections:
        problems.append(f"the outline has {len(answer.sections)} sections; give at most {max_sections}")
    first_with: dict[str, int] = {}
    for number, section in enumerate(answer.sections, 1):
        title = clean_title(section.title)
        problems += _section_problems(number, title, section, passage_count)
        if title and title.casefold() in first_with:
            problems.append(f"sections {first_with[title.casefold()]} and {number} have the same title {title!r}")
        first_with.setdefault(title.casefold(), number)
    return problems


def _section_problems(number: int, title: str, section: OutlineSection, passage_count: int) -> list[str]:
    where = f"section {number}" + (f" ({title!r})" if title else "")
    found = []
    if not title:
        found.append(f"{where} has an empty title")
    elif len(title) > MAX_TITLE:
        found.append(f"{where} has a title longer than {MAX_TITLE} characters")
    if not any(point.strip() for point in section.points):
        found.append(f"{where} lists no points")
    if not section.passages:
        found.append(f"{where} cites no source passage")
    missing = sorted({p for p in section.passages if not 1 <= p <= passage_count})
    if missing:
        found.append(f"{where} cites passages that do not exist: {missing} (they are numbered 1 to {passage_count})")
    return found


def section(ctx: base.Context, plan: Plan, index: int, pieces: list[str], params: dict) -> llm.Answer:
    """Ask for the body of section `index` (0-based) and return it tidied and checked."""
    planned = plan.sections[index]
    others = [s.title for i, s in enumerate(plan.sections) if i != index]
    messages = prompts.SECTION.messages(
        document_title=plan.title,
        language=params["language"],
        audience=params.get("audience") or DEFAULT_AUDIENCE,
        doc_type_rules=prompts.DOC_TYPES[params["doc_type"]],
        other_sections="; ".join(others) or "none",
        section_title=planned.title,
        points="\n".join(f"- {point}" for point in planned.points),
        passages=_cited(pieces, planned.passages),
    )
    known = numbers(params["content"]) | numbers(plan.title)

    def check(answer: SectionBody) -> list[str]:
        return body_problems(tidy(answer.markdown, planned.title), known, params["content"])

    answer = llm.ask(ctx, TYPE, messages, SectionBody, check)
    return dataclasses.replace(answer, value=tidy(answer.value.markdown, planned.title))


def _cited(pieces: list[str], which: tuple[int, ...]) -> str:
    kept, size = [], 0
    for number in sorted(which):
        size += len(pieces[number - 1])
        if kept and size > MAX_SECTION_SOURCE:
            break  # the outline cited more than one call should carry; the first passages stand
        kept.append(number)
    return numbered(pieces, kept)


def body_problems(body: str, known_numbers: set[str], source: str) -> list[str]:
    """Return what is wrong with a section body: empty, placeholders, headings too high, new figures."""
    if not re.search(r"\w", body):
        return ["the section is empty; write its body from the source passages"]
    problems = []
    invented = sorted(numbers(body) - known_numbers)
    if invented:
        problems.append(f"these figures are not in the source: {', '.join(invented[:10])}; use only figures it states")
    placeholders = sorted({m.group() for m in _PLACEHOLDER.finditer(body) if m.group().lower() not in source.lower()})
    if placeholders:
        problems.append(f"placeholder text instead of content: {', '.join(placeholders)}")
    high = [text for level, text in render.headings(body) if level < 3]
    if high:
        problems.append(f"headings above level 3 inside the section ({'; '.join(high)}); use ### or deeper")
    return problems


def numbers(text: str) -> set[str]:
    """Return the figures of two or more digits in `text`, separators removed (list markers skipped)."""
    found = (match.group() for match in _NUMBER.finditer(_LIST_MARKER.sub(" ", text)))
    return {digits for digits in (re.sub(r"\D", "", figure) for figure in found) if len(digits) >= 2}


def tidy(body: str, title: str) -> str:
    """Drop a leading heading that repeats the section title; demote headings so the highest is ###."""
    lines = body.strip().splitlines()
    first = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", lines[0]) if lines else None
    if first and _plain(first.group(1)) == _plain(title):
        lines = lines[1:]
    levels = [len(match.group(1)) for _, match in atx_headings(lines)]
    shift = max(0, 3 - min(levels)) if levels else 0
    for number, match in atx_headings(lines) if shift else ():
        lines[number] = "#" * min(6, len(match.group(1)) + shift) + lines[number][match.end(1) :]
    return "\n".join(lines).strip()


def atx_headings(lines: list[str]) -> list[tuple[int, re.Match]]:
    """Return (line number, match) of the ATX headings outside fenced code blocks."""
    found, fence = [], None
    for number, line in enumerate(lines):
        opening = re.match(r"\s{0,3}(`{3,}|~{3,})", line)
        if fence is None and opening:
            fence = opening.group(1)
        elif fence is not None:
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = None
        elif match := re.match(r"(#{1,6})\s", line):
            found.append((number, match))
    return found


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[*_`]", "", text).split()).casefold()
