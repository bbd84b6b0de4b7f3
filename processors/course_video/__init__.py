"""`course_video`: a course outline, then one `explainer_video` child task per lesson.

The outline comes from the LLM, or is given (`outline`). Each lesson becomes a child built from
its content, not only its title: with an LLM configured the child gets a prompt holding the
lesson's title and content (its own LLM call writes the slides); without one, a script made
from the content itself: one scene per two sentences, narrated as written, with each sentence
a bullet of the slide (a long one shown as its key phrase). So a given outline runs with no key at all.

The parent then waits: its progress is the mean of its children's, it ends when every child
has ended, and it fails naming the lessons that failed or were cancelled. Cancelling the parent
cancels its children (the queue cascades a cancel to descendants). A retried parent gets the
same children back (each is submitted under the key `lesson-<chapter>-<lesson>`). When every
lesson has succeeded it joins them (`join`): `course.mp4`, a title card and then each lesson's
video, with a chapter marker per lesson; the per-lesson videos stay their children's artifacts.
"""

import json

import marshmallow
import pydantic
from marshmallow import validate

from processors import base, captions, errors, llm, phrases, providers
from processors.course_video import join
from processors.policy import Policy
from processors.prompts import course_video as prompts

ENDED = ("succeeded", "failed", "cancelled")
POLL_SECONDS = 1.0
VIDEO_NAME = "video.mp4"  # the explainer_video artifact each lesson is joined from
SENTENCES_PER_SCENE = 2
SHORT_SENTENCE_WORDS = 8  # a longer sentence is shown on its slide as its key phrase


class LessonSchema(marshmallow.Schema):
    title = marshmallow.fields.String(required=True, validate=validate.Length(min=1, max=200))
    content = marshmallow.fields.String(required=True, validate=validate.Length(min=1, max=5000))


class ChapterSchema(marshmallow.Schema):
    title = marshmallow.fields.String(required=True, validate=validate.Length(min=1, max=200))
    lessons = marshmallow.fields.List(
        marshmallow.fields.Nested(LessonSchema), required=True, validate=validate.Length(min=1, max=10)
    )


class OutlineSchema(marshmallow.Schema):
    title = marshmallow.fields.String(required=True, validate=validate.Length(min=1, max=200))
    chapters = marshmallow.fields.List(
        marshmallow.fields.Nested(ChapterSchema), required=True, validate=validate.Length(min=1, max=20)
    )


class Params(marshmallow.Schema):
    topic = marshmallow.fields.String(validate=validate.Length(min=1, max=2000))
    outline = marshmallow.fields.Nested(OutlineSchema, metadata={"description": "a ready outline: no LLM needed"})
    language = marshmallow.fields.String(load_default="en", validate=validate.Regexp(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$"))
    max_chapters = marshmallow.fields.Integer(load_default=3, validate=validate.Range(min=1, max=20))
    max_lessons_per_chapter = marshmallow.fields.Integer(load_default=3, validate=validate.Range(min=1, max=10))
    audience = marshmallow.fields.String(load_default="beginners", validate=validate.Length(min=1, max=200))
    difficulty = marshmallow.fields.String(
        load_default="beginner", validate=validate.OneOf(("beginner", "intermediate", "advanced"))
    )
    provider = marshmallow.fields.String(
        load_default="espeak", validate=validate.OneOf(("espeak", "openai", "elevenlabs"))
    )
    voice = marshmallow.fields.String(load_default=None, validate=validate.Length(min=1, max=100))
    aspect = marshmallow.fields.String(load_default="16:9", validate=validate.OneOf(("16:9", "9:16", "1:1")))

    @marshmallow.validates_schema
    def _topic_or_outline(self, data: dict, **kwargs) -> None:
        if ("topic" in data) == ("outline" in data):
            raise marshmallow.ValidationError("give exactly one of topic and outline", "topic")


class Lesson(pydantic.BaseModel):
    title: str
    content: str


class Chapter(pydantic.BaseModel):
    title: str
    lessons: list[Lesson]


class Outline(pydantic.BaseModel):
    title: str
    chapters: list[Chapter]


class CourseVideoProcessor(base.Processor):
    """Outline the course, submit one explainer video per lesson, wait for them all."""

    type = "course_video"
    endpoint = "course"
    description = (
        "A course: an outline (LLM, or given) and one explainer_video child task per lesson. "
        "Needs OPENAI_API_KEY only for a topic; a given outline runs on espeak-ng."
    )
    Params = Params
    providers = ("ffmpeg", "ffprobe", "espeak")
    optional_providers = ("openai",)  # for a topic; a given outline needs no key
    # The parent mostly waits for its children, in the io pool.
    policy = Policy(
        max_attempts=2,
        backoff_base=10.0,
        soft_timeout=6 * 3600.0,
        hard_timeout=6 * 3600.0 + 60,
        pool="io",
        estimate=600.0,
    )

    @classmethod
    def needs(cls, params: dict) -> dict[str, tuple[str, str]]:
        """The programs always; the LLM for a topic, a paid voice's key when asked for."""
        needs = {**super().needs(params), **providers.voice_key(params["provider"])}
        if not params.get("outline"):
            needs["openai"] = ("a course from a topic needs an LLM", " (give an outline to run without one)")
        return needs

    def run(self, params: dict, ctx: base.Context) -> dict:
        providers.require(self.needs(params), ctx.settings)  # fail at once, saying which
        ctx.progress(0, "outline")
        outline, usage = self._outline(params, ctx)
        ctx.progress(5, "outline", f"{sum(len(c['lessons']) for c in outline['chapters'])} lessons")
        outline_file = ctx.workdir / "outline.json"
        outline_file.write_text(json.dumps(outline, indent=2, ensure_ascii=False))
        ctx.artifact(outline_file, "outline", "application/json")
        lessons = self._submit_lessons(outline, params, ctx)
        finished = self._wait(lessons, ctx)
        report = [{**lesson, "status": finished[lesson["task_id"]]["status"]} for lesson in lessons]
        failed = [f"{r['chapter']} / {r['title']} ({r['status']})" for r in report if r["status"] != "succeeded"]
        if failed:
            raise errors.PermanentError(f"{len(failed)} of {len(report)} lessons did not succeed: " + "; ".join(failed))
        ctx.progress(90, "joining", f"{len(lessons)} lessons into course.mp4")
        video, chapters = self._join(outline, lessons, params, ctx)
        stored = ctx.artifact(video, "video", "video/mp4", {"chapters": chapters, "duration": chapters[-1]["end"]})
        ctx.meter("media_seconds", chapters[-1]["end"])
        ctx.progress(100, "done")
        return {
            "title": outline["title"],
            "lessons": report,
            "video": video.name,
            "artifact": stored.get("id"),
            "duration": chapters[-1]["end"],
            "chapters": chapters,
            "usage": usage,
        }

    def _join(self, outline: dict, lessons: list[dict], params: dict, ctx) -> tuple:
        """Return course.mp4 (title card, then the lessons) and its chapters."""
        card = join.title_card(
            outline["title"],
            [c["title"] for c in outline["chapters"]],
            params["aspect"],
            ctx.workdir / "title.mp4",
            ctx,
        )
        parts = [
            join.Part(ctx.fetch_artifact(lesson["task_id"], VIDEO_NAME), f"{lesson['chapter']}: {lesson['title']}")
            for lesson in lessons
        ]
        out = ctx.workdir / "course.mp4"
        chapters = join.join(card, outline["title"], parts, out, ctx)
        return out, chapters

    def _outline(self, params: dict, ctx) -> tuple[dict, dict]:
        if params.get("outline"):
            return params["outline"], {}
        messages = prompts.OUTLINE.messages(
            audience=params["audience"],
            difficulty=params["difficulty"],
            language=params["language"],
            max_chapters=params["max_chapters"],
            max_lessons=params["max_lessons_per_chapter"],
            topic=params["topic"],
        )
        answer = llm.ask(ctx, self.type, messages, Outline, lambda o: _outline_problems(o, params))
        return answer.value.model_dump(), answer.usage

    def _submit_lessons(self, outline: dict, params: dict, ctx) -> list[dict]:
        with_llm = providers.availability(["openai"], ctx.settings)["openai"] is None
        lessons = []
        for c, chapter in enumerate(outline["chapters"], 1):
            for n, lesson in enumerate(chapter["lessons"], 1):
                child = _lesson_params(chapter, lesson, params, with_llm)
                task_id = ctx.submit_child("explainer_video", child, key=f"lesson-{c}-{n}")
                lessons.append({"chapter": chapter["title"], "title": lesson["title"], "task_id": task_id})
        return lessons

    def _wait(self, lessons: list[dict], ctx) -> dict[str, dict]:
        ids = {lesson["task_id"] for lesson in lessons}
        while True:
            children = {c["id"]: c for c in ctx.children_status() if c["id"] in ids}
            done = sum(1 for c in children.values() if c["status"] in ENDED)
            mean = sum(100.0 if c["status"] in ENDED else c["progress"] for c in children.values()) / len(ids)
            ctx.progress(5 + 0.85 * mean, "lessons", f"{done} of {len(ids)} lessons ended")
            if done == len(ids) and len(children) == len(ids):
                return children
            ctx.sleep(POLL_SECONDS)


def _outline_problems(outline: Outline, params: dict) -> list[str]:
    found = []
    if not 1 <= len(outline.chapters) <= params["max_chapters"]:
        found.append(f"there must be 1 to {params['max_chapters']} chapters, not {len(outline.chapters)}")
    titles = [lesson.title.strip().lower() for chapter in outline.chapters for lesson in chapter.lessons]
    if len(set(titles)) != len(titles):
        found.append("lesson titles must be unique")
    for chapter in outline.chapters:
        if not 1 <= len(chapter.lessons) <= params["max_lessons_per_chapter"]:
            found.append(f"chapter {chapter.title!r} must have 1 to {params['max_lessons_per_chapter']} lessons")
        found += [f"lesson {lesson.title!r} has no content" for lesson in chapter.lessons if not lesson.content.strip()]
    return found


def _lesson_params(chapter: dict, lesson: dict, params: dict, with_llm: bool) -> dict:
    """Return an explainer_video's params for a lesson, built from its content."""
    common = {
        "title": lesson["title"][:200],
        "aspect": params["aspect"],
        "provider": params["provider"],
        "language": params["language"],
    }
    if params.get("voice"):
        common["voice"] = params["voice"]
    if with_llm:
        prompt = f"Lesson '{lesson['title']}' of the chapter '{chapter['title']}'. It teaches: {lesson['content']}"
        return {
            **common,
            "prompt": prompt[:4000],
            "scenes": max(2, min(8, len(captions.sentences(lesson["content"], 300)) // 2)),
        }
    return {**common, "script": lesson_script(chapter["title"], lesson["title"], lesson["content"])}


def lesson_script(chapter: str, title: str, content: str) -> list[dict]:
    """Return a scene list narrating `content` as written: a title scene, then one scene per
    two sentences, each shown as a bullet: as written when short, else its key phrase, so the
    slide sums up what the narration says rather than repeating it word for word."""
    sentences = captions.sentences(content, 300)
    scenes = [{"narration": f"{title}.", "slide": f"# {title}\n\n{chapter}"}]
    for start in range(0, len(sentences), SENTENCES_PER_SCENE):
        group = sentences[start : start + SENTENCES_PER_SCENE]
        bullets = "\n".join(f"- {_bullet(sentence)}" for sentence in group)
        scenes.append({"narration": " ".join(group), "slide": f"## {title}\n\n{bullets}"})
    return scenes


def _bullet(sentence: str) -> str:
    if len(sentence.split()) <= SHORT_SENTENCE_WORDS:
        return sentence
    return phrases.key_phrase(sentence) or sentence
