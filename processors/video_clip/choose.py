"""Choosing segments with an LLM: the transcript with times goes in, a structured JSON answer
of clips (start, end, title, score, reason) comes out, checked against the video's length and
the clip limits (`processors.llm`: one re-ask with the problems, then the task fails)."""

import pydantic

from processors import llm
from processors.prompts import video_clip as prompts
from processors.video_clip import segments

# The transcript sent is cut to this many characters (about 20k tokens).
MAX_TRANSCRIPT_CHARS = 80_000


class Clip(pydantic.BaseModel):
    start: float
    end: float
    title: str
    score: float = pydantic.Field(ge=0, le=1)
    reason: str


class Answer(pydantic.BaseModel):
    clips: list[Clip]


def choose(transcript_lines: list[str], duration: float, params: dict, ctx) -> tuple[list[segments.Segment], dict]:
    """Ask the LLM for segments; return them (ungrounded) and the token usage."""
    messages = prompts.CHOOSE.messages(
        min_s=f"{params['min_s']:g}",
        max_s=f"{params['max_s']:g}",
        duration=f"{duration:.2f}",
        max_clips=params["max_clips"],
        transcript=_transcript_text(transcript_lines),
    )

    def check(answer: Answer) -> list[str]:
        return segments.problems(_proposals(answer), duration, params["min_s"], params["max_s"])

    answer = llm.ask(ctx, "video_clip", messages, Answer, check)
    return _proposals(answer.value), answer.usage


def _proposals(answer: Answer) -> list[segments.Segment]:
    return [segments.Segment(c.start, c.end, c.score, c.reason, c.title) for c in answer.clips]


def _transcript_text(lines: list[str]) -> str:
    text = "\n".join(lines)
    if len(text) > MAX_TRANSCRIPT_CHARS:
        text = text[:MAX_TRANSCRIPT_CHARS] + "\n[transcript cut here]"
    return text
