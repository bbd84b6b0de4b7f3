"""Choosing segments with an LLM: the transcript with times goes in, a structured JSON answer
of clips (start, end, title, score, reason) comes out, checked against the video's length and
the clip limits. A bad answer gets one re-ask listing its problems; a second bad answer fails
the task with those problems (never a placeholder)."""

import pydantic

from processors import errors
from processors.providers import openai_api
from processors.video_clip import segments

# The transcript sent is cut to this many characters (about 20k tokens).
MAX_TRANSCRIPT_CHARS = 80_000

SYSTEM = (
    "You pick the best moments of a long video to publish as short vertical clips. "
    "Each clip must be one contiguous span of the video, start and end in seconds as given in "
    "the transcript, between {min_s:g} and {max_s:g} seconds long, inside 0-{duration:.2f} seconds, "
    "not overlapping another clip. Prefer spans that start at the beginning of a sentence and end "
    "at the end of one, hold a complete thought, and would interest a viewer on their own. "
    "Give at most {max_clips} clips, best first, each with a short title, a score from 0 to 1 and "
    "the reason you chose it. Use only times from the transcript; do not invent content."
)


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
    rules = {k: params[k] for k in ("min_s", "max_s", "max_clips")}
    messages = [
        {"role": "system", "content": SYSTEM.format(duration=duration, **rules)},
        {"role": "user", "content": _transcript_text(transcript_lines)},
    ]
    usage: dict[str, int] = {}
    for asked in (1, 2):
        try:
            answer = openai_api.chat_json(ctx.settings, messages, Answer, model=_model(ctx.settings), ctx=ctx)
        except openai_api.InvalidAnswer as exc:
            _add(usage, exc.usage)
            found, content = exc.problems, exc.content or ""
        else:
            _add(usage, answer.usage)
            proposals = [segments.Segment(c.start, c.end, c.score, c.reason, c.title) for c in answer.value.clips]
            found = segments.problems(proposals, duration, params["min_s"], params["max_s"])
            if not found:
                return proposals, usage
            content = answer.content
        if asked == 2:
            raise errors.PermanentError("the LLM's clip choice was invalid twice: " + "; ".join(found))
        ctx.log("re-asking the LLM: its clip choice was invalid", problems=found)
        messages += [
            {"role": "assistant", "content": content},
            {"role": "user", "content": "That answer is invalid: " + "; ".join(found) + ". Answer again, fixed."},
        ]
    raise AssertionError("unreachable")


def _transcript_text(lines: list[str]) -> str:
    text = "\n".join(lines)
    if len(text) > MAX_TRANSCRIPT_CHARS:
        text = text[:MAX_TRANSCRIPT_CHARS] + "\n[transcript cut here]"
    return "Transcript, one line per caption, as [start-end] text:\n" + text


def _model(settings: dict) -> str | None:
    return (settings.get("CONVEYOR_LLM_MODELS") or {}).get("video_clip")


def _add(total: dict, usage: dict) -> None:
    for key, value in (usage or {}).items():
        if isinstance(value, int):
            total[key] = total.get(key, 0) + value
