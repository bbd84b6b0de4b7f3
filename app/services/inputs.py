"""Limits on the free-form values a request may store: a task's params are any JSON object,
and PostgreSQL's JSONB refuses a NUL character, UTF-8 cannot encode a lone surrogate, and
neither JSON nor JSONB has NaN or Infinity. `json_problems` finds each such value, and
nesting deeper than `MAX_DEPTH`, by its path; the API's schema fields and the submit service
both use it, so every way in (API, typed endpoints, dashboard, CLI) refuses the same values.
"""

import math
from typing import Any

# Deeper nesting than any type's params need; it also keeps every walk over params shallow.
MAX_DEPTH = 64


def text_problem(text: str) -> str | None:
    """Return why `text` cannot be stored (a NUL, a lone surrogate), or None."""
    if "\x00" in text:
        return "must not contain a NUL character (\\u0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must not contain a lone surrogate (\\ud800-\\udfff without its pair)"
    return None


def json_problems(value: Any, max_depth: int = MAX_DEPTH) -> dict:
    """Return the problems of a JSON value as marshmallow nests them (`{"a": {"b": [msg]}}`,
    list items by index); {} when it can be stored. Nesting too deep is one problem of the
    whole value (`_schema`), found before anything else is looked at."""
    if _too_deep(value, max_depth):
        return {"_schema": [f"must not be nested deeper than {max_depth} levels"]}
    problems: dict = {}
    _walk(value, problems)
    return problems


def _too_deep(value: Any, max_depth: int) -> bool:
    level, containers = 0, [value]
    while containers:
        containers = [item for node in containers for item in _children(node) if isinstance(item, dict | list)]
        level += 1
        if containers and level >= max_depth:
            return True
    return False


def _children(value: Any):
    return value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()


def _walk(value: Any, problems: dict) -> None:
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        name = _shown(key)
        if isinstance(key, str) and (why := text_problem(key)):
            problems.setdefault(name, []).append(f"the key {why}")
        found = _problem(item)
        if found:
            problems.setdefault(name, []).append(found)
        elif isinstance(item, dict | list):
            inner: dict = {}
            _walk(item, inner)
            if inner:
                problems[name] = inner


def _problem(value: Any) -> str | None:
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number (JSON has no NaN or Infinity)"
    return None


def _shown(key: Any) -> Any:
    """A key as the error body can show it: bad characters escaped."""
    if not isinstance(key, str):
        return key
    return key.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")
