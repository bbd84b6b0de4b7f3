"""The lesson: sections of narration and the blocks shown while it is spoken, either given in
the params or written by the LLM from a prompt (`processors.llm`: a structured answer checked
for the exact section count, a narration and at least one block per section, known block types
and animations, non-empty code, and blocks that fit a frame; one re-ask, then the task fails);
and when each block appears within its section (`schedule`).

Timing rule: a section's narration lasts D seconds, and its n blocks appear in order at equal
steps: block i (from 0) starts at i * D / n. Its animation lasts the block's own `duration`
when given, else a default (typing: 30 characters a second, at least 0.5 s; fade 0.8 s; slide
0.6 s) no longer than its step. The section lasts its narration, or longer (silence) until every
animation has ended and its final state has been held `HOLD_SECONDS` (`section_length`): no
block is ever cut short, and the last frame of a lesson shows every block whole.

A section whose blocks do not start with a heading gets its title as a first heading block.
"""

import dataclasses
from collections.abc import Callable
from typing import Literal

import pydantic

from processors import errors, llm
from processors.prompts import animated_lesson as prompts

BLOCK_TYPES = ("heading", "text", "bullets", "code")
ANIMATIONS = ("typing", "fade", "slide")
# Used when a given block names no animation.
DEFAULT_ANIMATION = {"heading": "fade", "text": "fade", "bullets": "slide", "code": "typing"}
MAX_NARRATION = 2_000
MAX_BLOCKS = 6
TYPING_CPS = 30.0
MIN_TYPING = 0.5
DEFAULT_SECONDS = {"fade": 0.8, "slide": 0.6}
HOLD_SECONDS = 1.0  # every block's final state stays on screen at least this long


@dataclasses.dataclass(frozen=True)
class Block:
    """One thing shown on screen; `duration` is the wanted animation length (None: default)."""

    type: str
    content: str
    animation: str
    language: str = ""
    duration: float | None = None

    @property
    def items(self) -> list[str]:
        """Return a bullets block's points, one per non-empty line, markers removed."""
        return [line.strip().lstrip("-*+\u2022 ").strip() for line in self.content.splitlines() if line.strip()]


@dataclasses.dataclass(frozen=True)
class Section:
    title: str
    narration: str
    blocks: tuple[Block, ...]


@dataclasses.dataclass(frozen=True)
class Lesson:
    """What the lesson says and shows; `by` is "llm" or "given"; `usage` the LLM's tokens."""

    title: str
    sections: tuple[Section, ...]
    by: str
    usage: dict | None = None


@dataclasses.dataclass(frozen=True)
class Timing:
    """When a block's animation starts and how long it lasts, in seconds from the section's start."""

    start: float
    duration: float


class BlockAnswer(pydantic.BaseModel):
    type: Literal[BLOCK_TYPES]
    content: str
    language: str
    animation: Literal[ANIMATIONS]


class SectionAnswer(pydantic.BaseModel):
    title: str
    narration: str
    blocks: list[BlockAnswer]


class Answer(pydantic.BaseModel):
    title: str
    sections: list[SectionAnswer]


def given(params: dict, fits: Callable[[Section], str | None]) -> Lesson:
    """Return the params' own sections; PermanentError naming each section `fits` refuses."""
    sections = tuple(
        _section(s["title"], s["narration"], [_given_block(b) for b in s["blocks"]]) for s in params["sections"]
    )
    found = [f"section {n}: {why}" for n, section in enumerate(sections, 1) if (why := fits(section))]
    if found:
        raise errors.PermanentError(f"the lesson cannot be shown: {'; '.join(found)}")
    return Lesson(params.get("title") or sections[0].title, sections, "given")


def written(params: dict, ctx, fits: Callable[[Section], str | None]) -> Lesson:
    """Ask the LLM for `params["scenes"]` sections on `params["prompt"]`."""
    messages = prompts.SECTIONS.messages(
        scenes=params["scenes"],
        aspect=params["aspect"],
        title_hint=f' (the lesson is called "{params["title"]}")' if params.get("title") else "",
        language=f'the language with code "{params["language"]}"' if params["language"] else "the topic's language",
        topic=params["prompt"],
    )
    answer = llm.ask(ctx, "animated_lesson", messages, Answer, lambda value: problems(value, params["scenes"], fits))
    sections = tuple(_answered(section) for section in answer.value.sections)
    title = params.get("title") or answer.value.title.strip() or sections[0].title
    return Lesson(title, sections, "llm", {**answer.usage, "model": answer.model, "asks": answer.asks})


def problems(answer: Answer, count: int, fits: Callable[[Section], str | None]) -> list[str]:
    """Return what is wrong with the LLM's lesson, empty when it can be used as it is."""
    found = []
    if len(answer.sections) != count:
        found.append(f"there must be exactly {count} sections, not {len(answer.sections)}")
    for number, section in enumerate(answer.sections, 1):
        found += [f"section {number}: {why}" for why in _section_problems(section, fits)]
    return found


def _section_problems(section: SectionAnswer, fits: Callable[[Section], str | None]) -> list[str]:
    found = []
    if not section.title.strip():
        found.append("the title is empty")
    if not section.narration.strip():
        found.append("the narration is empty")
    elif len(section.narration) > MAX_NARRATION:
        found.append(f"the narration is longer than {MAX_NARRATION} characters")
    if not section.blocks:
        found.append("there must be at least one block")
    elif len(section.blocks) > MAX_BLOCKS:
        found.append(f"there must be at most {MAX_BLOCKS} blocks")
    for number, block in enumerate(section.blocks, 1):
        if not block.content.strip():
            found.append(f"block {number} ({block.type}) is empty")
    if not found and (why := fits(_answered(section))):
        found.append(why)
    return found


def schedule(blocks: tuple[Block, ...], seconds: float) -> list[Timing]:
    """Return when each block appears within a section whose narration lasts `seconds` (see
    the module's rule)."""
    step = seconds / len(blocks)
    timings = []
    for index, block in enumerate(blocks):
        wanted = block.duration if block.duration is not None else min(_default_seconds(block), step)
        timings.append(Timing(round(index * step, 3), round(wanted, 3)))
    return timings


def section_length(timings: list[Timing], narration: float) -> float:
    """Return how long a section lasts: its narration, or until its last animation has ended
    and been held `HOLD_SECONDS`."""
    ends = max(timing.start + timing.duration for timing in timings)
    return round(max(narration, ends + HOLD_SECONDS), 3)


def _default_seconds(block: Block) -> float:
    if block.animation == "typing":
        return max(MIN_TYPING, len(block.content) / TYPING_CPS)
    return DEFAULT_SECONDS[block.animation]


def _given_block(raw: dict) -> Block:
    animation = raw.get("animation") or DEFAULT_ANIMATION[raw["type"]]
    content = _content(raw["type"], raw["content"])
    return Block(raw["type"], content, animation, (raw.get("language") or "").strip().lower(), raw.get("duration"))


def _content(kind: str, text: str) -> str:
    # Code keeps its indentation; other blocks lose surrounding blank space.
    return text.strip("\n").rstrip() if kind == "code" else text.strip()


def _answered(section: SectionAnswer) -> Section:
    blocks = [
        Block(b.type, _content(b.type, b.content), b.animation, b.language.strip().lower()) for b in section.blocks
    ]
    return _section(section.title, section.narration, blocks)


def _section(title: str, narration: str, blocks: list[Block]) -> Section:
    title = " ".join(title.split())
    if blocks and blocks[0].type != "heading":
        blocks = [Block("heading", title, DEFAULT_ANIMATION["heading"]), *blocks]
    return Section(title, " ".join(narration.split()), tuple(blocks))
