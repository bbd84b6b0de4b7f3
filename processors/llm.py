"""Structured LLM answers for processors: one call through the OpenAI-compatible adapter, the
answer validated against its pydantic model and then the type's own rules (`check`), one
re-ask that lists the problems, and then a PermanentError naming them. Never a placeholder.

The chat model is `CONVEYOR_LLM_MODELS[<type>]` when set, else `CONVEYOR_LLM_MODEL`. Token
usage is summed over the asks, for the task's result, and each ask's tokens are metered
(`llm_input_tokens`, `llm_output_tokens`) for billing, a rejected answer's too.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

from processors import base, errors
from processors.providers import openai_api

REASK = "That answer is invalid: {problems}. Answer again with every problem fixed, in the same JSON shape."


@dataclasses.dataclass(frozen=True)
class Answer:
    """A validated answer, the tokens it took and how many asks it needed (1 or 2)."""

    value: Any
    usage: dict
    model: str
    asks: int


def model_for(settings: dict, type_name: str) -> str:
    """Return the chat model configured for a task type."""
    return (settings.get("CONVEYOR_LLM_MODELS") or {}).get(type_name) or settings["CONVEYOR_LLM_MODEL"]


def ask(
    ctx: base.Context,
    type_name: str,
    messages: list[dict],
    model_class: type,
    check: Callable[[Any], list[str]] | None = None,
) -> Answer:
    """Ask for an answer shaped as `model_class` that `check` finds no problem with.

    messages: the chat messages (see `processors.prompts`).
    check: the type's own rules; returns the problems found, empty when the answer is good.
    Raises PermanentError after a second bad answer, and the adapter's errors (refusal, 4xx,
    RetryableError after 429/5xx retries).
    """
    model = model_for(ctx.settings, type_name)
    usage: dict[str, int] = {}
    conversation = list(messages)
    problems: list[str] = []
    for asked in (1, 2):
        try:
            answer = openai_api.chat_json(ctx.settings, conversation, model_class, model=model, ctx=ctx)
        except openai_api.InvalidAnswer as exc:
            _add(usage, exc.usage)
            _meter(ctx, exc.usage, model)
            problems, content = exc.problems, exc.content or ""
        else:
            _add(usage, answer.usage)
            _meter(ctx, answer.usage, answer.model or model)
            problems = check(answer.value) if check else []
            if not problems:
                return Answer(answer.value, usage, answer.model or model, asked)
            content = answer.content
        if asked == 1:
            ctx.log("re-asking the LLM: its answer was invalid", problems=problems)
            conversation += [
                {"role": "assistant", "content": content},
                {"role": "user", "content": REASK.format(problems="; ".join(problems))},
            ]
    raise errors.PermanentError(f"the LLM's answer was invalid twice: {'; '.join(problems)}")


def _add(total: dict, usage: dict) -> None:
    for key, value in (usage or {}).items():
        if isinstance(value, int):
            total[key] = total.get(key, 0) + value


def _meter(ctx: base.Context, usage: dict, model: str) -> None:
    # A server that reports no usage (some local ones) meters nothing rather than a guess.
    ctx.meter("llm_input_tokens", (usage or {}).get("prompt_tokens"), model)
    ctx.meter("llm_output_tokens", (usage or {}).get("completion_tokens"), model)
