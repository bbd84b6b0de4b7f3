"""`story`: a story from a prompt, written by an LLM as a structured answer (title, text,
summary, characters, moral, scenes), checked against the type's rules, stored as story.md and
story.json, with optional follow-up child tasks: illustrations (`image`), narration (`voice`)
and a quiz (`quiz`).

The rules (`problems`), sent back to the LLM for one re-ask when broken: the text's word count,
counted here and never taken from the model, lies in the length's range widened by 25% (short
150-400, medium 400-900, long 900-2000 words); the text has paragraphs (at least 2, 3 or 5 by
length); title, summary and moral are not empty; there is at least one character, each with a
name and a description; there are enough scenes for the illustrations asked. Languages written
without spaces between words (Chinese, Japanese, Thai, ...) cannot be counted that way, so for
them the word range is not enforced (the count is still reported).

Follow-ups are submitted last, after the artifacts, so a failure earlier leaves none behind.
The quiz child gets the story's text as `source_text` rather than this task's id: the story's
result is written only after `run` returns, so a quiz child started meanwhile (by another
worker) would find this task still running with no result. Child keys carry a digest of the
text, so a retried attempt that wrote a different story never adopts children made for the
earlier one, while a retry of the same text gets its children back.
"""

import hashlib
import json
import re

import marshmallow
import pydantic
from marshmallow import validate

from processors import base, llm, voice
from processors.policy import Policy
from processors.prompts import story as prompts

LENGTHS = {"short": (150, 400), "medium": (400, 900), "long": (900, 2000)}
LENIENCY = 0.25  # real models miss a word target by this much; that is still the length asked
MIN_PARAGRAPHS = {"short": 2, "medium": 3, "long": 5}
STORY_TYPES = (
    "fairy_tale",
    "fable",
    "adventure",
    "bedtime",
    "fantasy",
    "science_fiction",
    "mystery",
    "historical",
    "humor",
    "realistic",
)
AUDIENCES = {
    "young_children": "young children aged 3 to 6: very simple words, short sentences, a gentle tone",
    "children": "children aged 7 to 11: clear language, short paragraphs, nothing frightening or violent",
    "teens": "teenagers: engaging language and themes they relate to",
    "adults": "adult readers",
}
# Written without spaces between words: a word count means nothing there.
UNSPACED = frozenset({"zh", "ja", "th", "lo", "km", "my", "bo"})
LANGUAGE = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
MAX_ILLUSTRATIONS = 4
MAX_SCENE_CHARS = 600
DEFAULT_QUIZ_QUESTIONS = 5
MAX_QUIZ_QUESTIONS = 50
_WORD = re.compile(r"\w+(?:['\u2019\-]\w+)*")
_BLANK_LINES = re.compile(r"\n\s*\n")


class QuizQuestions(marshmallow.fields.Integer):
    """The `quiz` follow-up: false (none), true (DEFAULT_QUIZ_QUESTIONS) or a number of questions."""

    def _deserialize(self, value, attr, data, **kwargs):
        if value is True or value is False:
            return DEFAULT_QUIZ_QUESTIONS if value else 0
        return super()._deserialize(value, attr, data, **kwargs)


class Params(marshmallow.Schema):
    prompt = marshmallow.fields.String(
        required=True,
        validate=[validate.Length(min=1, max=2000), validate.Regexp(r"\s*\S", error="the prompt is empty")],
    )
    story_type = marshmallow.fields.String(load_default="fairy_tale", validate=validate.OneOf(STORY_TYPES))
    audience = marshmallow.fields.String(load_default="children", validate=validate.OneOf(tuple(AUDIENCES)))
    language = marshmallow.fields.String(
        load_default="en", validate=validate.Regexp(LANGUAGE), metadata={"description": "ISO 639 code: en, fr, pt-BR"}
    )
    length = marshmallow.fields.String(
        load_default="short",
        validate=validate.OneOf(tuple(LENGTHS)),
        metadata={"description": "short 150-400, medium 400-900, long 900-2000 words"},
    )
    illustrations = marshmallow.fields.Integer(
        load_default=0,
        validate=validate.Range(min=0, max=MAX_ILLUSTRATIONS),
        metadata={"description": "images of the story's scenes, each an `image` child task"},
    )
    narration = marshmallow.fields.Boolean(
        load_default=False, metadata={"description": "read the story aloud in a `voice` child task (espeak-ng)"}
    )
    quiz = QuizQuestions(
        load_default=0,
        validate=validate.Range(min=0, max=MAX_QUIZ_QUESTIONS),
        metadata={"description": f"a `quiz` child task: false, true ({DEFAULT_QUIZ_QUESTIONS} questions) or a count"},
    )


class Character(pydantic.BaseModel):
    name: str
    description: str


class StoryAnswer(pydantic.BaseModel):
    title: str
    text: str
    summary: str
    characters: list[Character]
    moral: str
    scenes: list[str]


class StoryProcessor(base.Processor):
    """Write the story, check it, store it, then submit the follow-ups asked for."""

    type = "story"
    description = (
        "A story from a prompt (LLM): title, text, summary, characters, moral; "
        "optional illustrations, narration and a quiz as child tasks."
    )
    Params = Params
    providers = ("openai",)
    policy = Policy(max_attempts=3, backoff_base=5.0, soft_timeout=600.0, hard_timeout=660.0, pool="io", estimate=30.0)

    def run(self, params: dict, ctx: base.Context) -> dict:
        ctx.progress(0, "writing", f"a {params['length']} {params['story_type'].replace('_', ' ')}")
        answer = llm.ask(ctx, self.type, messages(params), StoryAnswer, lambda value: problems(value, params))
        story = shape(answer.value, params)
        ctx.progress(80, "storing")
        stored = _store(story, ctx)
        ctx.progress(90, "follow-ups")
        children = _follow_ups(story, params, ctx)
        ctx.progress(100, "done", f"{story['word_count']} words")
        return {
            **story,
            "model": answer.model,
            "usage": answer.usage,
            "asks": answer.asks,
            "artifacts": stored,
            "children": children,
        }


def messages(params: dict) -> list[dict]:
    """Return the chat messages asking for the story `params` describe."""
    low, high = LENGTHS[params["length"]]
    return prompts.WRITE.messages(
        story_type=params["story_type"].replace("_", " "),
        audience_note=AUDIENCES[params["audience"]],
        language=params["language"],
        min_words=low,
        max_words=high,
        target_words=(low + high) // 2,
        min_paragraphs=MIN_PARAGRAPHS[params["length"]],
        scene_count=max(params["illustrations"], 3),
        prompt=params["prompt"].strip(),
    )


def count_words(text: str) -> int:
    """Return the number of words in `text` ("don't" and "well-known" are one word each)."""
    return len(_WORD.findall(text))


def paragraphs(text: str, title: str = "") -> list[str]:
    """Return the text's paragraphs, each on one line: split at blank lines, or at line ends
    when it has none, without a leading heading or repeated title."""
    lines = text.strip().splitlines()
    if lines and (lines[0].lstrip().startswith("#") or _same(lines[0], title)):
        lines = lines[1:]
    blocks = [block for block in _BLANK_LINES.split("\n".join(lines)) if block.strip()]
    if len(blocks) == 1:
        blocks = blocks[0].splitlines()
    return [" ".join(line.strip() for line in block.splitlines() if line.strip()) for block in blocks if block.strip()]


def word_range(length: str) -> tuple[int, int]:
    """Return the word counts accepted for a length: its range widened by LENIENCY."""
    low, high = LENGTHS[length]
    return round(low * (1 - LENIENCY)), round(high * (1 + LENIENCY))


def problems(answer: StoryAnswer, params: dict) -> list[str]:
    """Return what breaks the type's rules in an answer, empty when it is good."""
    found = [f"{name} is empty" for name in ("title", "summary", "moral") if not getattr(answer, name).strip()]
    found += _character_problems(answer.characters)
    found += _text_problems(answer, params)
    found += _scene_problems(answer.scenes, params["illustrations"])
    return found


def _character_problems(characters: list[Character]) -> list[str]:
    if not characters:
        return ["characters is empty: give at least one character"]
    return [
        f"character {index} needs both a name and a description"
        for index, person in enumerate(characters, 1)
        if not (person.name.strip() and person.description.strip())
    ]


def _text_problems(answer: StoryAnswer, params: dict) -> list[str]:
    parts = paragraphs(answer.text, answer.title)
    length, found = params["length"], []
    words = count_words("\n".join(parts))
    low, high = word_range(length)
    if _primary(params["language"]) not in UNSPACED and not low <= words <= high:
        nominal = LENGTHS[length]
        found.append(f"the text has {words} words; a {length} story has {nominal[0]}-{nominal[1]} words")
    if len(parts) < MIN_PARAGRAPHS[length]:
        wanted = MIN_PARAGRAPHS[length]
        found.append(f"the text has {len(parts)} paragraph(s); write at least {wanted}, separated by a blank line")
    if params["narration"] and len(_narration(answer.title, "\n\n".join(parts))) > voice.MAX_CHARS:
        found.append(f"the text is too long to narrate: keep title and text under {voice.MAX_CHARS} characters")
    return found


def _scene_problems(scenes: list[str], wanted: int) -> list[str]:
    usable = [scene for scene in scenes if scene.strip()]
    found = []
    if len(usable) < wanted:
        found.append(f"give at least {wanted} non-empty scenes for the illustrations, not {len(usable)}")
    found += [
        f"scene {index} is over {MAX_SCENE_CHARS} characters"
        for index, scene in enumerate(usable[:wanted], 1)
        if len(scene) > MAX_SCENE_CHARS
    ]
    return found


def shape(answer: StoryAnswer, params: dict) -> dict:
    """Return the checked answer as the story's data, its text in blank-line paragraphs."""
    parts = paragraphs(answer.text, answer.title)
    text = "\n\n".join(parts)
    return {
        "title": answer.title.strip(),
        "text": text,
        "summary": answer.summary.strip(),
        "characters": [{"name": c.name.strip(), "description": c.description.strip()} for c in answer.characters],
        "moral": answer.moral.strip(),
        "scenes": [scene.strip() for scene in answer.scenes if scene.strip()],
        "word_count": count_words(text),
        "paragraphs": len(parts),
        "language": params["language"],
        "story_type": params["story_type"],
        "audience": params["audience"],
        "length": params["length"],
    }


def _store(story: dict, ctx: base.Context) -> dict:
    markdown = ctx.workdir / "story.md"
    markdown.write_text(f"# {story['title']}\n\n{story['text']}\n", encoding="utf-8")
    data = ctx.workdir / "story.json"
    data.write_text(json.dumps(story, indent=1, ensure_ascii=False), encoding="utf-8")
    meta = {"title": story["title"], "word_count": story["word_count"]}
    return {
        markdown.name: ctx.artifact(markdown, "story", "text/markdown", meta).get("id"),
        data.name: ctx.artifact(data, "story", "application/json", meta).get("id"),
    }


def _follow_ups(story: dict, params: dict, ctx: base.Context) -> dict[str, list[str]]:
    digest = hashlib.sha256(story["text"].encode()).hexdigest()[:12]
    children: dict[str, list[str]] = {"image": [], "voice": [], "quiz": []}
    for index, scene in enumerate(story["scenes"][: params["illustrations"]], 1):
        image_params = {"prompt": _illustration_prompt(scene, params)}
        children["image"].append(ctx.submit_child("image", image_params, f"illustration-{index}-{digest}"))
    if params["narration"]:
        voice_params = {"text": _narration(story["title"], story["text"]), "language": params["language"]}
        children["voice"].append(ctx.submit_child("voice", voice_params, f"narration-{digest}"))
    if params["quiz"]:
        quiz_params = {
            "source_text": story["text"],
            "num_questions": params["quiz"],
            "language": params["language"],
            "title": f"Quiz: {story['title']}"[:200],
        }
        children["quiz"].append(ctx.submit_child("quiz", quiz_params, f"quiz-{digest}"))
    return children


def _illustration_prompt(scene: str, params: dict) -> str:
    kind = params["story_type"].replace("_", " ")
    return f"An illustration for a {kind} story for {AUDIENCES[params['audience']].split(':')[0]}: {scene}"


def _narration(title: str, text: str) -> str:
    title = title.strip()
    return f"{title if title.endswith(('.', '!', '?')) else title + '.'}\n\n{text}"


def _primary(language: str) -> str:
    return language.split("-")[0].lower()


def _same(first: str, title: str) -> bool:
    def plain(value: str) -> str:
        return " ".join(value.strip(" #*\"'").lower().split())

    return bool(title.strip()) and plain(first) == plain(title)
