"""`quiz`: questions about a text, written by an LLM as a structured answer, checked strictly,
stored as quiz.json (valid against `SCHEMA`) and a printable quiz.md whose answer key follows
the questions after a page break.

The source is `source_text`, or the result of another task of the account (`source_task_id`),
which must have succeeded. Results a quiz can read (`source_of`):

- `text`: a string (a `story`, or any type whose result is a text);
- `script`: scenes with a `narration` string, as a list or as `{"scenes": [...]}` (an
  `explainer_video` or a lesson script);
- `sections` (or `lesson.sections`): sections with a `narration` string (an `animated_lesson`);
- `clips` with a `text` each (a `video_clip`): only the clips' texts, since the full
  transcript is an artifact (transcript.json), not part of the result.

Anything else fails at once, naming these. The rules (`problems`), sent back for one re-ask
when broken: exactly `num_questions` questions; each of an asked type (and each asked type used
once when there are enough questions); multiple choice with 4 distinct options and the answer
among them; true/false answered "true" or "false"; fill-in-the-blank with a blank (`____`) in
the question and an answer; a short answer with an answer; an explanation each; no question
twice (ignoring case and spacing); the asked difficulty, or a real mix for `mixed`.
"""

import json
import re
from typing import Literal

import marshmallow
import pydantic
from marshmallow import validate

from processors import base, errors, llm
from processors.policy import Policy
from processors.prompts import quiz as prompts

QUESTION_TYPES = ("multiple_choice", "true_false", "fill_in_blank", "short_answer")
DIFFICULTIES = ("easy", "medium", "hard")
POINTS = {"easy": 1, "medium": 2, "hard": 3}
MINUTES = {"true_false": 0.5, "multiple_choice": 1.0, "fill_in_blank": 1.0, "short_answer": 2.0}
DIFFICULTY_NOTES = {
    "easy": "every question easy: facts stated plainly in the source",
    "medium": "every question medium: needs understanding, not only recall",
    "hard": "every question hard: needs inference or connecting several parts of the source",
    "mixed": "a mix of easy, medium and hard questions",
}
LABELS = {
    "multiple_choice": "multiple choice",
    "true_false": "true or false",
    "fill_in_blank": "fill in the blank",
    "short_answer": "short answer",
}
MAX_SOURCE_CHARS = 60_000
LANGUAGE = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
BLANK = re.compile(r"_{3,}")
# Marks the page break before the answer key: HTML renderers and print-to-PDF honour it.
PAGE_BREAK = '<div style="page-break-before: always"></div>'
ANSWER_KEY = "## Answer key"
SUPPORTED = (
    "a `text` string (story), a `script` of scenes with `narration` (explainer or lesson script), "
    "`sections` with `narration` (animated_lesson), or `clips` with `text` (video_clip)"
)


class Params(marshmallow.Schema):
    source_text = marshmallow.fields.String(
        load_default=None,
        validate=[validate.Length(min=1, max=MAX_SOURCE_CHARS), validate.Regexp(r"\s*\S", error="the text is empty")],
    )
    source_task_id = marshmallow.fields.UUID(
        load_default=None, metadata={"description": "a succeeded task of your account: story, lesson, video_clip"}
    )
    num_questions = marshmallow.fields.Integer(load_default=5, validate=validate.Range(min=1, max=50))
    difficulty = marshmallow.fields.String(load_default="mixed", validate=validate.OneOf((*DIFFICULTIES, "mixed")))
    question_types = marshmallow.fields.List(
        marshmallow.fields.String(validate=validate.OneOf(QUESTION_TYPES)),
        load_default=lambda: ["multiple_choice", "true_false"],
        validate=[validate.Length(min=1, max=len(QUESTION_TYPES))],
    )
    language = marshmallow.fields.String(
        load_default="en", validate=validate.Regexp(LANGUAGE), metadata={"description": "ISO 639 code: en, fr, pt-BR"}
    )
    title = marshmallow.fields.String(
        load_default=None, validate=validate.Length(min=1, max=200), metadata={"description": "default: the LLM's"}
    )

    @marshmallow.validates_schema
    def _one_source(self, data: dict, **kwargs) -> None:
        if (data.get("source_text") is None) == (data.get("source_task_id") is None):
            raise marshmallow.ValidationError("give exactly one of source_text and source_task_id")

    @marshmallow.validates("question_types")
    def _distinct_types(self, value: list, **kwargs) -> None:
        if len(set(value)) != len(value):
            raise marshmallow.ValidationError("a question type is listed twice")


class Question(pydantic.BaseModel):
    type: Literal[QUESTION_TYPES]
    question: str
    options: list[str]
    answer: str
    explanation: str
    difficulty: Literal[DIFFICULTIES]


class QuizAnswer(pydantic.BaseModel):
    title: str
    questions: list[Question]


class QuizProcessor(base.Processor):
    """Read the source, ask for the questions, check them, store quiz.json and quiz.md."""

    type = "quiz"
    description = "A quiz (LLM) from a text or a task's result: quiz.json and a printable quiz with an answer key."
    Params = Params
    providers = ("openai",)
    policy = Policy(max_attempts=3, backoff_base=5.0, soft_timeout=600.0, hard_timeout=660.0, pool="io", estimate=20.0)

    def run(self, params: dict, ctx: base.Context) -> dict:
        ctx.progress(0, "reading source")
        text, source = _source(params, ctx)
        ctx.progress(10, "writing questions", f"{params['num_questions']} questions")
        answer = llm.ask(ctx, self.type, messages(params, text), QuizAnswer, lambda value: problems(value, params))
        quiz = document(answer.value, params, source)
        ctx.progress(80, "storing")
        stored = _store(quiz, ctx)
        ctx.progress(100, "done", f"{quiz['count']} questions, {quiz['total_points']} points")
        summary = {key: quiz[key] for key in ("title", "count", "total_points", "estimated_minutes", "source")}
        return {
            **summary,
            "difficulty": params["difficulty"],
            "language": params["language"],
            "model": answer.model,
            "usage": answer.usage,
            "asks": answer.asks,
            "artifacts": stored,
        }


def messages(params: dict, text: str) -> list[dict]:
    """Return the chat messages asking for the quiz `params` describe about `text`."""
    return prompts.WRITE.messages(
        language=params["language"],
        num_questions=params["num_questions"],
        question_types=", ".join(params["question_types"]),
        difficulty_note=DIFFICULTY_NOTES[params["difficulty"]],
        source=text,
    )


def _source(params: dict, ctx: base.Context) -> tuple[str, dict]:
    if params["source_text"] is not None:
        return params["source_text"].strip(), {"kind": "text", "characters": len(params["source_text"].strip())}
    task_id = str(params["source_task_id"])
    found = ctx.task_result(task_id)
    text = source_of(found, task_id)
    if len(text) > MAX_SOURCE_CHARS:
        ctx.log(f"the source text was cut from {len(text)} to {MAX_SOURCE_CHARS} characters")
        text = text[:MAX_SOURCE_CHARS]
    return text, {"kind": "task", "task_id": task_id, "task_type": found["type"], "characters": len(text)}


def source_of(found: dict, task_id: str) -> str:
    """Return the text of another task's `{type, status, result}` a quiz can be about.
    Raises PermanentError if the task has not succeeded or its result holds no usable text."""
    if found["status"] != "succeeded":
        raise errors.PermanentError(f"task {task_id} is {found['status']}: a quiz needs a task that has succeeded")
    result = found.get("result") if isinstance(found.get("result"), dict) else {}
    text = _text_in(result).strip()
    if not text:
        raise errors.PermanentError(
            f"task {task_id} ({found['type']}) has no text a quiz can use; supported results hold {SUPPORTED}"
        )
    return text


def _text_in(result: dict) -> str:
    """Return the first non-blank text among the supported shapes, in the order listed above."""
    script = result.get("script")
    lesson = result.get("lesson") if isinstance(result.get("lesson"), dict) else {}
    candidates = (
        result.get("text") if isinstance(result.get("text"), str) else "",
        _joined(script.get("scenes") if isinstance(script, dict) else script, "narration"),
        _joined(result.get("sections") or lesson.get("sections"), "narration"),
        _joined(result.get("clips"), "text"),
    )
    return next((text for text in candidates if text.strip()), "")


def _joined(items, key: str) -> str:
    if not isinstance(items, list):
        return ""
    texts = (item.get(key) for item in items if isinstance(item, dict))
    return "\n\n".join(text.strip() for text in texts if isinstance(text, str) and text.strip())


def problems(answer: QuizAnswer, params: dict) -> list[str]:
    """Return what breaks the type's rules in an answer, empty when it is good."""
    questions, wanted = answer.questions, params["num_questions"]
    found = [] if len(questions) == wanted else [f"there are {len(questions)} questions; exactly {wanted} are needed"]
    for number, question in enumerate(questions, 1):
        found += [f"question {number}: {problem}" for problem in question_problems(question, params)]
    found += _repeats(questions)
    found += _coverage(questions, params)
    return found


def question_problems(question: Question, params: dict) -> list[str]:
    """Return what breaks the rules in one question."""
    found = []
    if question.type not in params["question_types"]:
        found.append(f"type {question.type} was not asked for (use {', '.join(params['question_types'])})")
    if not question.question.strip():
        found.append("the question is empty")
    if not question.explanation.strip():
        found.append("the explanation is empty")
    if params["difficulty"] != "mixed" and question.difficulty != params["difficulty"]:
        found.append(f"difficulty is {question.difficulty}; every question must be {params['difficulty']}")
    return found + _answer_problems(question)


def _answer_problems(question: Question) -> list[str]:
    answer = question.answer.strip()
    if question.type == "multiple_choice":
        return _choice_problems(question.options, answer)
    if question.type == "true_false":
        return [] if answer.lower() in ("true", "false") else [f'the answer {answer!r} is not "true" or "false"']
    found = [] if answer else ["the answer is empty"]
    if question.type == "fill_in_blank" and not BLANK.search(question.question):
        found.append("a fill_in_blank question must mark its blank with ____")
    return found


def _choice_problems(options: list[str], answer: str) -> list[str]:
    if len(options) != 4:
        return [f"multiple_choice needs exactly 4 options, not {len(options)}"]
    plain = [_plain(option) for option in options]
    found = []
    if "" in plain:
        found.append("an option is empty")
    if len(set(plain)) != len(plain):
        found.append("the options are not distinct")
    if _plain(answer) not in plain:
        found.append(f"the answer {answer!r} is not one of its options (give the exact text of the right option)")
    return found


def _repeats(questions: list[Question]) -> list[str]:
    first: dict[str, int] = {}
    found = []
    for number, question in enumerate(questions, 1):
        key = _plain(question.question)
        if key in first:
            found.append(f"question {number} repeats question {first[key]}")
        first.setdefault(key, number)
    return found


def _coverage(questions: list[Question], params: dict) -> list[str]:
    found = []
    asked, wanted = params["question_types"], params["num_questions"]
    missing = [kind for kind in asked if kind not in {q.type for q in questions}]
    if wanted >= len(asked) and missing:
        found.append(f"no question of type {', '.join(missing)}: use each asked type at least once")
    levels = {q.difficulty for q in questions}
    if params["difficulty"] == "mixed" and wanted >= 3 and len(levels) == 1:
        found.append(f"the difficulty is mixed but every question is {levels.pop()}: mix easy, medium and hard")
    return found


def document(answer: QuizAnswer, params: dict, source: dict) -> dict:
    """Return quiz.json's content (see `SCHEMA`) from a checked answer."""
    questions = [_entry(number, q) for number, q in enumerate(answer.questions, 1)]
    return {
        "version": 1,
        "title": (params["title"] or answer.title).strip() or "Quiz",
        "language": params["language"],
        "difficulty": params["difficulty"],
        "question_types": list(params["question_types"]),
        "source": source,
        "count": len(questions),
        "total_points": sum(q["points"] for q in questions),
        "estimated_minutes": sum(q["minutes"] for q in questions),
        "questions": questions,
    }


def _entry(number: int, question: Question) -> dict:
    options, answer = [], question.answer.strip()
    if question.type == "multiple_choice":
        options = [option.strip() for option in question.options]
        answer = options[[_plain(o) for o in options].index(_plain(answer))]  # the option's own spelling
    elif question.type == "true_false":
        options, answer = ["true", "false"], answer.lower() == "true"
    return {
        "id": f"q{number}",
        "number": number,
        "type": question.type,
        "question": question.question.strip(),
        "options": options,
        "answer": answer,
        "explanation": question.explanation.strip(),
        "difficulty": question.difficulty,
        "points": POINTS[question.difficulty],
        "minutes": MINUTES[question.type],
    }


def markdown(quiz: dict) -> str:
    """Return the printable quiz: the questions, a page break, then the answer key."""
    head = [
        f"# {quiz['title']}",
        "",
        f"{quiz['count']} questions, {quiz['total_points']} points, about {quiz['estimated_minutes']:g} minutes.",
        "",
        "## Questions",
        "",
    ]
    body = [line for question in quiz["questions"] for line in _question_lines(question)]
    key = [_key_line(question) for question in quiz["questions"]]
    return "\n".join([*head, *body, PAGE_BREAK, "", ANSWER_KEY, "", *key, ""])


def _question_lines(question: dict) -> list[str]:
    points = f"{question['points']} point{'s' if question['points'] > 1 else ''}"
    lines = [f"**{question['number']}.** {question['question']} _({LABELS[question['type']]}, {points})_", ""]
    if question["type"] == "multiple_choice":
        lines += [f"- {letter}. {option}" for letter, option in zip("ABCD", question["options"], strict=True)]
    elif question["type"] == "true_false":
        lines += ["- True", "- False"]
    elif question["type"] == "short_answer":
        lines.append("Answer: " + "_" * 40)
    return [*lines, ""] if lines[-1] else lines


def _key_line(question: dict) -> str:
    answer = question["answer"]
    if question["type"] == "multiple_choice":
        answer = f"{'ABCD'[question['options'].index(answer)]}. {answer}"
    elif question["type"] == "true_false":
        answer = "True" if answer else "False"
    return f"{question['number']}. **{answer}**: {question['explanation']}"


def _store(quiz: dict, ctx: base.Context) -> dict:
    data = ctx.workdir / "quiz.json"
    data.write_text(json.dumps(quiz, indent=1, ensure_ascii=False), encoding="utf-8")
    printable = ctx.workdir / "quiz.md"
    printable.write_text(markdown(quiz), encoding="utf-8")
    meta = {"title": quiz["title"], "count": quiz["count"], "total_points": quiz["total_points"]}
    return {
        data.name: ctx.artifact(data, "quiz", "application/json", meta).get("id"),
        printable.name: ctx.artifact(printable, "quiz", "text/markdown", meta).get("id"),
    }


def _plain(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(" ?.!")


def _question_schema() -> dict:
    text = {"type": "string", "minLength": 1}

    def when(kind: str, then: dict) -> dict:
        return {"if": {"properties": {"type": {"const": kind}}}, "then": {"properties": then}}

    return {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "id",
            "number",
            "type",
            "question",
            "options",
            "answer",
            "explanation",
            "difficulty",
            "points",
            "minutes",
        ],
        "properties": {
            "id": {"type": "string", "pattern": "^q[1-9][0-9]*$"},
            "number": {"type": "integer", "minimum": 1},
            "type": {"enum": list(QUESTION_TYPES)},
            "question": text,
            "options": {"type": "array", "items": text},
            "answer": {"type": ["string", "boolean"]},
            "explanation": text,
            "difficulty": {"enum": list(DIFFICULTIES)},
            "points": {"enum": sorted(set(POINTS.values()))},
            "minutes": {"type": "number", "exclusiveMinimum": 0},
        },
        "allOf": [
            when("multiple_choice", {"options": {"minItems": 4, "maxItems": 4, "uniqueItems": True}, "answer": text}),
            when("true_false", {"options": {"const": ["true", "false"]}, "answer": {"type": "boolean"}}),
            when("fill_in_blank", {"options": {"maxItems": 0}, "answer": text, "question": {"pattern": "_{3,}"}}),
            when("short_answer", {"options": {"maxItems": 0}, "answer": text}),
        ],
    }


# quiz.json's JSON Schema (draft 2020-12). What a schema cannot say (the answer among the
# options, no repeated question, totals that add up) the checks above and the tests cover.
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "quiz.json",
    "type": "object",
    "additionalProperties": False,
    "required": [
        "version",
        "title",
        "language",
        "difficulty",
        "question_types",
        "source",
        "count",
        "total_points",
        "estimated_minutes",
        "questions",
    ],
    "properties": {
        "version": {"const": 1},
        "title": {"type": "string", "minLength": 1},
        "language": {"type": "string", "minLength": 2},
        "difficulty": {"enum": [*DIFFICULTIES, "mixed"]},
        "question_types": {
            "type": "array",
            "items": {"enum": list(QUESTION_TYPES)},
            "minItems": 1,
            "uniqueItems": True,
        },
        "source": {
            "type": "object",
            "additionalProperties": False,
            "required": ["kind", "characters"],
            "properties": {
                "kind": {"enum": ["text", "task"]},
                "task_id": {"type": "string"},
                "task_type": {"type": "string"},
                "characters": {"type": "integer", "minimum": 1},
            },
        },
        "count": {"type": "integer", "minimum": 1, "maximum": 50},
        "total_points": {"type": "integer", "minimum": 1},
        "estimated_minutes": {"type": "number", "exclusiveMinimum": 0},
        "questions": {"type": "array", "minItems": 1, "maxItems": 50, "items": _question_schema()},
    },
}
