"""lesson.json: what a browser player needs to play the lesson without the video, and its JSON
Schema (`SCHEMA`, draft 2020-12).

The player plays each section's audio file (`sections[].audio`, with `captions.vtt` as its
text track) and shows the section's blocks, each from `start` seconds into the section (block
times are from the section's start; `sections[].start` is where the section begins in the whole
lesson and in lesson.mp4), animating it for `duration` seconds with its `animation`. `box` is
where the mp4 render draws the block, in pixels of its `width` x `height` frame.
"""

from processors.animated_lesson import lesson
from processors.explainer_video import themes

VERSION = 1
_COLOUR = {"type": "string", "pattern": "^#[0-9A-F]{6}$"}
_SECONDS = {"type": "number", "minimum": 0}
_NAME = {"type": "string", "minLength": 1}

BLOCK = {
    "type": "object",
    "required": ["type", "content", "animation", "start", "duration", "box"],
    "additionalProperties": False,
    "properties": {
        "type": {"enum": list(lesson.BLOCK_TYPES)},
        "content": {"type": "string", "minLength": 1},
        "items": {"type": "array", "items": {"type": "string"}, "description": "a bullets block's points"},
        "language": {"type": "string", "description": "a code block's language, for highlighting"},
        "animation": {"enum": list(lesson.ANIMATIONS)},
        "start": _SECONDS,
        "duration": _SECONDS,
        "box": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 4, "maxItems": 4},
    },
}
SECTION = {
    "type": "object",
    "required": ["index", "title", "narration", "start", "duration", "audio", "captions", "blocks"],
    "additionalProperties": False,
    "properties": {
        "index": {"type": "integer", "minimum": 1},
        "title": {"type": "string", "minLength": 1},
        "narration": {"type": "string", "minLength": 1},
        "start": _SECONDS,
        "duration": {"type": "number", "exclusiveMinimum": 0},
        "audio": _NAME,
        "captions": {
            "type": "object",
            "required": ["srt", "vtt"],
            "additionalProperties": False,
            "properties": {"srt": _NAME, "vtt": _NAME},
        },
        "blocks": {"type": "array", "minItems": 1, "items": BLOCK},
    },
}
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://conveyor.local/schemas/animated-lesson/lesson.json",
    "title": "An animated lesson for a browser player",
    "type": "object",
    "required": [
        *("version", "title", "by", "language", "aspect", "width", "height"),
        *("fps", "duration", "video", "theme", "sections"),
    ],
    "additionalProperties": False,
    "properties": {
        "version": {"const": VERSION},
        "title": {"type": "string", "minLength": 1},
        "by": {"enum": ["given", "llm"]},
        "language": {"type": ["string", "null"]},
        "aspect": {"enum": ["16:9", "9:16", "1:1"]},
        "width": {"type": "integer", "minimum": 2},
        "height": {"type": "integer", "minimum": 2},
        "fps": {"type": "number", "exclusiveMinimum": 0},
        "duration": {"type": "number", "exclusiveMinimum": 0},
        "video": _NAME,
        "theme": {
            "type": "object",
            "required": ["name", "background", "foreground", "accent", "code_style"],
            "additionalProperties": False,
            "properties": {
                "name": _NAME,
                "background": _COLOUR,
                "foreground": _COLOUR,
                "accent": _COLOUR,
                "code_style": _NAME,
            },
        },
        "sections": {"type": "array", "minItems": 1, "items": SECTION},
    },
}


def block_entry(block: lesson.Block, timing: lesson.Timing, box: tuple[int, int, int, int]) -> dict:
    """Return a block as lesson.json lists it."""
    entry = {"type": block.type, "content": block.content, "animation": block.animation}
    if block.type == "bullets":
        entry["items"] = block.items
    if block.type == "code":
        entry["language"] = block.language
    return {**entry, "start": timing.start, "duration": timing.duration, "box": list(box)}


def section_entry(
    index: int, section: lesson.Section, start: float, duration: float, files: dict, blocks: list
) -> dict:
    """Return a section as lesson.json lists it; `files` names its audio, srt and vtt."""
    return {
        "index": index,
        "title": section.title,
        "narration": section.narration,
        "start": round(start, 3),
        "duration": round(duration, 3),
        "audio": files["audio"],
        "captions": {"srt": files["srt"], "vtt": files["vtt"]},
        "blocks": blocks,
    }


def document(taught: lesson.Lesson, sections: list[dict], frame: dict, theme_name: str, theme: themes.Theme) -> dict:
    """Return lesson.json; `frame` holds language, aspect, width, height, fps, duration and video."""
    colours = {
        key: "#{:02X}{:02X}{:02X}".format(*getattr(theme, key)) for key in ("background", "foreground", "accent")
    }
    return {
        "version": VERSION,
        "title": taught.title,
        "by": taught.by,
        **frame,
        "theme": {"name": theme_name, **colours, "code_style": theme.code_style},
        "sections": sections,
    }


def _hex(colour: themes.RGB) -> str:
    return "#{:02X}{:02X}{:02X}".format(*colour)
