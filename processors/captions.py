"""Captions: timed cues, split from text or grouped from word timestamps, written as SRT,
WebVTT or styled ASS (for burning into video with libass), and read back from SRT/VTT files.

Times are float seconds everywhere; formatting to `HH:MM:SS,mmm` happens only on output.
"""

import dataclasses
import html
import pathlib
import re

# Latin, CJK and fullwidth sentence ends.
_SENTENCE_END = re.compile("(?<=[.!?\u2026\u3002\uff01\uff1f])\\s+")
_TIMESTAMP = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{2})[,.](\d{1,3})")
_TAG = re.compile(r"<[^>]+>|\{\\[^}]*\}")


@dataclasses.dataclass(frozen=True)
class Cue:
    """One caption: shown from `start` to `end` seconds."""

    start: float
    end: float
    text: str


@dataclasses.dataclass(frozen=True)
class Word:
    """One spoken word with its time span, as speech-to-text gives it."""

    text: str
    start: float
    end: float


def sentences(text: str, max_chars: int) -> list[str]:
    """Split text at sentence ends; a sentence longer than `max_chars` is split at spaces (a
    single longer word stands alone)."""
    chunks: list[str] = []
    for sentence in _SENTENCE_END.split(" ".join(text.split())):
        if sentence:
            chunks.extend([sentence] if len(sentence) <= max_chars else _wrap(sentence, max_chars))
    return chunks


def _wrap(sentence: str, max_chars: int) -> list[str]:
    lines: list[str] = []
    for word in sentence.split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= max_chars:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def from_words(words: list[Word], max_chars: int = 32, max_seconds: float = 3.0, offset: float = 0.0) -> list[Cue]:
    """Group words into short cues (for burned-in captions), shifting times by -`offset`."""
    cues: list[Cue] = []
    group: list[Word] = []
    for word in words:
        text = " ".join(w.text.strip() for w in [*group, word])
        if group and (len(text) > max_chars or word.end - group[0].start > max_seconds):
            cues.append(_cue(group, offset))
            group = []
        group.append(word)
    if group:
        cues.append(_cue(group, offset))
    return cues


def _cue(group: list[Word], offset: float) -> Cue:
    text = " ".join(w.text.strip() for w in group)
    return Cue(max(0.0, group[0].start - offset), max(0.0, group[-1].end - offset), text)


def clip(cues: list[Cue], start: float, end: float) -> list[Cue]:
    """Return the cues overlapping [start, end], cut to it and shifted to start at 0."""
    kept = []
    for cue in cues:
        if cue.end <= start or cue.start >= end:
            continue
        kept.append(Cue(max(cue.start, start) - start, min(cue.end, end) - start, cue.text))
    return kept


def stamp(seconds: float, separator: str = ",") -> str:
    """Format seconds as `HH:MM:SS,mmm` (SRT) or with `.` (WebVTT)."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def to_srt(cues: list[Cue]) -> str:
    """Return the cues as SubRip text."""
    blocks = [f"{n}\n{stamp(c.start)} --> {stamp(c.end)}\n{c.text}\n" for n, c in enumerate(cues, 1)]
    return "\n".join(blocks)


def to_vtt(cues: list[Cue]) -> str:
    """Return the cues as WebVTT text."""
    blocks = [f"{stamp(c.start, '.')} --> {stamp(c.end, '.')}\n{html.escape(c.text, quote=False)}\n" for c in cues]
    return "WEBVTT\n\n" + "\n".join(blocks)


@dataclasses.dataclass(frozen=True)
class Style:
    """How burned-in captions look: a font family libass can find, size in pixels of a
    `height`-pixel frame, colour `#RRGGBB`, and the bottom margin."""

    family: str
    size: int
    color: str
    width: int
    height: int
    margin: int = 0


# Burned-in captions sit on a dark box three quarters opaque (ASS is &HAABBGGRR, alpha 0 is
# opaque), padded by BOX_PAD of the font size, with letters spaced by SPACING of it: an outline
# alone runs letters together on a light picture, most of all once the video is shown smaller.
BOX_COLOUR = "&H40000000"
BOX_PAD = 0.12
SPACING = 0.04


def to_ass(cues: list[Cue], style: Style) -> str:
    """Return the cues as an ASS script: text in the given colour on a dark translucent box,
    centred near the bottom of a `style.width` x `style.height` frame."""
    rgb = style.color.lstrip("#")
    colour = f"&H00{rgb[4:6]}{rgb[2:4]}{rgb[0:2]}".upper()  # ASS is &HAABBGGRR
    margin = style.margin or style.height // 8
    pad = max(2, round(style.size * BOX_PAD))
    spacing = max(1, round(style.size * SPACING))
    header = (
        "[Script Info]\nScriptType: v4.00+\n"
        f"PlayResX: {style.width}\nPlayResY: {style.height}\nWrapStyle: 0\nScaledBorderAndShadow: yes\n\n"
        "[V4+ Styles]\n"
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, "
        "Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, "
        "MarginL, MarginR, MarginV, Encoding\n"
        f"Style: Caption,{style.family},{style.size},{colour},{colour},{BOX_COLOUR},{BOX_COLOUR},-1,0,0,0,100,100,"
        f"{spacing},0,3,{pad},0,2,{style.width // 12},{style.width // 12},{margin},1\n\n"
        "[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
    )
    lines = [f"Dialogue: 0,{_ass_time(c.start)},{_ass_time(c.end)},Caption,,0,0,0,,{_ass_text(c.text)}" for c in cues]
    return header + "\n".join(lines) + "\n"


def _ass_time(seconds: float) -> str:
    centis = max(0, round(seconds * 100))
    hours, centis = divmod(centis, 360_000)
    minutes, centis = divmod(centis, 6000)
    secs, centis = divmod(centis, 100)
    return f"{hours}:{minutes:02d}:{secs:02d}.{centis:02d}"


def _ass_text(text: str) -> str:
    # Braces start override tags and a backslash escapes; neither may come from user text.
    return text.replace("\\", "\\\\").replace("{", "(").replace("}", ")").replace("\n", "\\N")


def parse(text: str) -> list[Cue]:
    """Read cues from SRT or WebVTT text (tags and cue settings dropped)."""
    cues = []
    for block in re.split(r"\r?\n\s*\r?\n", text.replace("\ufeff", "")):
        lines = [line for line in block.strip().splitlines() if line.strip()]
        for index, line in enumerate(lines):
            if "-->" in line:
                left, right = line.split("-->", 1)
                start, end = _seconds(left), _seconds(right.strip().split(" ")[0])
                body = " ".join(_TAG.sub("", html.unescape(t)).strip() for t in lines[index + 1 :]).strip()
                if start is not None and end is not None and body and end > start:
                    cues.append(Cue(start, end, body))
                break
    return sorted(cues, key=lambda c: c.start)


def _seconds(raw: str) -> float | None:
    match = _TIMESTAMP.search(raw.strip())
    if match is None:
        return None
    hours, minutes, secs, fraction = match.groups()
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(secs) + int(fraction.ljust(3, "0")) / 1000


def read(path: str | pathlib.Path) -> list[Cue]:
    """Read cues from an SRT or WebVTT file."""
    return parse(pathlib.Path(path).read_text(encoding="utf-8", errors="replace"))
