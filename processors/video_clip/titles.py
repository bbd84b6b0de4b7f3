"""Clip titles without an LLM: the key phrase of what is said in the clip
(`processors.phrases`); a clip with nothing said is titled by the source and its time span.
"""

from processors import phrases


def title(said: str, source_title: str | None, start: float, end: float) -> str:
    """Return a clip's title: the key phrase of what is said in it, else the source's title (or
    "Clip") with its time span, e.g. "Otters 1:05-1:35"."""
    return phrases.key_phrase(said) or f"{source_title or 'Clip'} {_clock(start)}-{_clock(end)}"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
