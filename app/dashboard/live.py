"""The task page's live part: the API's event stream (`app.api.stream.events`, the same
polling, heartbeats, `retry:` and `Last-Event-ID` resume) turned into HTML fragments for the
htmx SSE extension.

For each event row the page gets `timeline` (the row as a list item, with the row's id as the
SSE id, so a reconnect resumes exactly), then `progress` (the bar and stage) after progress and
status rows, and `changed` after status and artifact rows (the page reloads its status panel).
The stream's final `close` is passed on, and the page closes the connection on it.
"""

import json
from collections.abc import Callable, Iterator


def parse(message: str) -> dict[str, str]:
    """Return the fields (`id`, `event`, `data`) of one SSE message made by `stream`."""
    fields: dict[str, str] = {}
    for line in message.splitlines():
        name, sep, value = line.partition(": ")
        if sep and name in ("id", "event", "data"):
            fields[name] = value
    return fields


def message(event: str, html: str, event_id: int | None = None) -> str:
    """Return one SSE message whose data is an HTML fragment (one `data:` line per non-blank
    line; the browser joins them with newlines)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    lines = [line.strip() for line in html.splitlines() if line.strip()] or [""]
    data = "".join(f"data: {line}\n" for line in lines)
    return f"{head}event: {event}\n{data}\n"


def fragments(
    messages: Iterator[str],
    state: dict,
    render_event: Callable[[dict], str],
    render_bar: Callable[[dict], str],
) -> Iterator[str]:
    """Yield the dashboard's SSE messages for the API's `messages`. `state` holds the task's
    `status`, `progress`, `stage` and `message` when the stream starts and is kept current."""
    for text in messages:
        fields = parse(text)
        if "event" not in fields:
            yield text  # `retry:` and heartbeat comments pass through
            continue
        if fields["event"] == "close":
            yield message("close", "")
            continue
        row = json.loads(fields["data"])
        _advance(state, row)
        yield message("timeline", render_event(row), int(fields["id"]))
        if row["kind"] in ("progress", "status"):
            yield message("progress", render_bar(state))
        if row["kind"] in ("status", "artifact"):
            yield message("changed", "")


def _advance(state: dict, row: dict) -> None:
    data = row["data"]
    if row["kind"] == "progress":
        state.update(progress=data.get("progress", state["progress"]), stage=data.get("stage"))
        state["message"] = data.get("message")
    elif row["kind"] == "status" and data.get("status"):
        state["status"] = data["status"]


def start_state(task) -> dict:
    """Return the live state of a task as the stream starts."""
    return {"status": task.status, "progress": task.progress, "stage": task.stage, "message": task.message}
