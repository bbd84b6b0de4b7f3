"""A finished document given whole (`as_is`): its Markdown split into the title and the
sections `render.assemble` lays out, with no LLM. The first `#` heading is the title (unless
one is given); each `#` or `##` heading after it starts a section; text before the first
section is an "Overview"; deeper headings stay inside their section."""

import re

from processors.documentation import render, writing

OVERVIEW = "Overview"


def title_of(content: str) -> str | None:
    """Return the text of the content's first `#` heading, or None."""
    for number, match in writing.atx_headings(content.splitlines()):
        if len(match.group(1)) == 1:
            return _heading_text(content.splitlines()[number])
    return None


def split(content: str, title: str | None) -> tuple[str, list[tuple[str, str]]]:
    """Return the document's title and its (heading, Markdown body) sections."""
    lines = content.strip().splitlines()
    breaks = [(n, m) for n, m in writing.atx_headings(lines) if len(m.group(1)) <= 2]
    if title is None:
        first = next((n for n, m in breaks if len(m.group(1)) == 1), None)
        title = _heading_text(lines[first]) if first is not None else None
        breaks = [(n, m) for n, m in breaks if n != first]
        if first is not None:
            lines[first] = ""
    starts = [n for n, _ in breaks]
    sections = []
    preamble = "\n".join(lines[: starts[0] if starts else len(lines)]).strip()
    if preamble:
        sections.append((OVERVIEW, writing.tidy(preamble, OVERVIEW)))
    for index, start in enumerate(starts):
        heading = _heading_text(lines[start])
        end = starts[index + 1] if index + 1 < len(starts) else len(lines)
        if heading.casefold() == render.CONTENTS.casefold():
            continue  # its own contents list: the assembly writes one
        sections.append((heading, writing.tidy("\n".join(lines[start + 1 : end]), heading)))
    return writing.clean_title(title or ""), sections


def _heading_text(line: str) -> str:
    text = re.sub(r"\s#+\s*$", "", line.strip().lstrip("#")).strip()
    return " ".join(re.sub(r"[*_`]", "", text).split())
