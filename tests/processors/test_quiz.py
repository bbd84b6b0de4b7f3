"""The `quiz` type with the real openai SDK over real HTTP against the fake OpenAI server:
quiz.json valid against its JSON Schema with points and minutes; a printable quiz whose answer
key comes after the questions; every strict rule (one re-ask, then a clear failure); rate
limits, refusals and token usage; sources from other tasks' results; and, through the API and
a real worker, a quiz about a story task that succeeded.
"""

import json
import pathlib
import re
import uuid

import jsonschema
import pytest

from app import config
from processors import base, errors, quiz
from tests.api import conftest as api_fixtures
from tests.fakes import openai_server
from tests.processors import test_story
from tests.queue import helpers

CHAT = "/v1/chat/completions"
SOURCE = test_story.prose(120, 2)
ALL_TYPES = list(quiz.QUESTION_TYPES)
LEVELS = ("easy", "medium", "hard")

# The API's fixtures (a test client, callers' keys), for the end-to-end test.
client = api_fixtures.client
keys = api_fixtures.keys


def question(kind: str, number: int, level: str) -> dict:
    """Return a good question of `kind`; answers and explanations are easy to find in text."""
    made = {"type": kind, "options": [], "explanation": f"Explained-{number}: the source says so.", "difficulty": level}
    if kind == "multiple_choice":
        options = [f"A stone {number}", f"A leaf {number}", f"A feather {number}", f"A shell {number}"]
        made.update(
            question=f"What did Fern find, number {number}?", options=options, answer=options[(number // 4) % 4]
        )
    elif kind == "true_false":
        made.update(question=f"Fern found stone number {number}.", answer="true" if number % 3 else "False")
    elif kind == "fill_in_blank":
        made.update(question=f"Fern found a ____ under oak {number}.", answer=f"glimmerstone{number}")
    else:
        made.update(question=f"Why did Fern share stone {number}?", answer=f"Sharing-answer-{number}.")
    return made


def quiz_answer(count: int = 5, types=("multiple_choice", "true_false"), difficulty: str = "mixed") -> dict:
    """Return a good quiz answer: types in turn, difficulties in turn when mixed."""
    questions = [
        question(types[i % len(types)], i + 1, LEVELS[i % 3] if difficulty == "mixed" else difficulty)
        for i in range(count)
    ]
    return {"title": "Fern's stone", "questions": questions}


def answer_for(body: dict) -> dict:
    """The fake's chat answers: a good quiz for what the quiz prompt asks, or a good story."""
    if body["response_format"]["json_schema"]["name"] == "StoryAnswer":
        return test_story.story_answer(words=130, paragraphs=2)
    system = body["messages"][0]["content"]
    count = int(re.search(r"Write exactly (\d+) questions", system).group(1))
    types = re.search(r"Question types allowed: ([a-z_, ]+);", system).group(1).split(", ")
    level = next((level for level in LEVELS if f"every question {level}" in system), "mixed")
    return quiz_answer(count, types, level)


@pytest.fixture
def fake():
    """The fake OpenAI server answering good quizzes, stopped after the test."""
    with openai_server.OpenAIServer(chat=answer_for) as server:
        yield server


@pytest.fixture
def llm_settings(fake, tmp_path) -> dict:
    return config.load({"CONVEYOR_VAR_DIR": str(tmp_path / "var")}, fake.settings())


def _context(settings: dict, tmp_path, tasks: dict | None = None) -> base.Context:
    return base.Context("task-quiz", 1, tmp_path / "work", settings=settings, tasks=tasks)


def _run(params: dict, settings: dict, tmp_path, tasks: dict | None = None) -> tuple[dict, base.Context]:
    ctx = _context(settings, tmp_path, tasks)
    result = quiz.QuizProcessor().run(quiz.QuizProcessor.load_params(params), ctx)
    return result, ctx


def _fails(params: dict, settings: dict, tmp_path, tasks: dict | None = None) -> tuple[str, base.Context]:
    ctx = _context(settings, tmp_path, tasks)
    with pytest.raises(errors.PermanentError) as caught:
        quiz.QuizProcessor().run(quiz.QuizProcessor.load_params(params), ctx)
    return str(caught.value), ctx


def _stored(ctx: base.Context) -> tuple[dict, str]:
    by_name = {item["name"]: pathlib.Path(item["path"]) for item in ctx.artifacts}
    assert sorted(by_name) == ["quiz.json", "quiz.md"]
    return json.loads(by_name["quiz.json"].read_text()), by_name["quiz.md"].read_text()


def test_quiz_json_follows_its_schema_with_points_and_minutes(fake, llm_settings, tmp_path):
    params = {"source_text": SOURCE, "num_questions": 8, "question_types": ALL_TYPES, "language": "en"}

    result, ctx = _run(params, llm_settings, tmp_path)

    saved, _ = _stored(ctx)
    jsonschema.Draft202012Validator.check_schema(quiz.SCHEMA)
    jsonschema.Draft202012Validator(quiz.SCHEMA).validate(saved)
    given = quiz_answer(8, ALL_TYPES)["questions"]
    assert [q["id"] for q in saved["questions"]] == [f"q{n}" for n in range(1, 9)]
    assert [q["type"] for q in saved["questions"]] == [q["type"] for q in given]
    assert [q["points"] for q in saved["questions"]] == [
        {"easy": 1, "medium": 2, "hard": 3}[q["difficulty"]] for q in given
    ]
    minutes = {"multiple_choice": 1.0, "true_false": 0.5, "fill_in_blank": 1.0, "short_answer": 2.0}
    assert [q["minutes"] for q in saved["questions"]] == [minutes[q["type"]] for q in given]
    assert saved["total_points"] == 1 + 2 + 3 + 1 + 2 + 3 + 1 + 2 == result["total_points"]
    assert saved["estimated_minutes"] == 2 * (1 + 0.5 + 1 + 2) == result["estimated_minutes"]
    true_false = [q for q in saved["questions"] if q["type"] == "true_false"]
    assert [q["answer"] for q in true_false] == [True, False], "true/false answers are booleans"
    assert all(q["options"] == ["true", "false"] for q in true_false)
    choice = saved["questions"][0]
    assert choice["answer"] == "A stone 1" and choice["answer"] in choice["options"]
    assert (result["count"], result["title"], result["source"]) == (8, "Fern's stone", saved["source"])
    assert saved["source"] == {"kind": "text", "characters": len(SOURCE)}
    (request,) = fake.requests_to(CHAT)
    system, user = (m["content"] for m in request.json["messages"])
    assert "Write exactly 8 questions" in system and "fill_in_blank, short_answer" in system
    assert SOURCE in user and request.json["response_format"]["json_schema"]["name"] == "QuizAnswer"


def test_the_schema_refuses_what_a_quiz_must_not_be(fake, llm_settings, tmp_path):
    _, ctx = _run({"source_text": SOURCE, "question_types": ALL_TYPES, "num_questions": 4}, llm_settings, tmp_path)
    saved, _ = _stored(ctx)
    validator = jsonschema.Draft202012Validator(quiz.SCHEMA)
    spoilt = [json.loads(json.dumps(saved)) for _ in range(4)]
    spoilt[0]["questions"][0]["options"].pop()  # three options
    spoilt[1]["questions"][1]["answer"] = "true"  # a true/false answer that is not a boolean
    spoilt[2]["questions"][2]["question"] = "No blank here."  # fill in the blank without a blank
    del spoilt[3]["questions"][3]["explanation"]

    assert validator.is_valid(saved)
    assert [validator.is_valid(bad) for bad in spoilt] == [False] * 4


def test_the_printable_quiz_keeps_answers_for_the_key_after_a_page_break(fake, llm_settings, tmp_path):
    _, ctx = _run({"source_text": SOURCE, "num_questions": 8, "question_types": ALL_TYPES}, llm_settings, tmp_path)
    saved, printable = _stored(ctx)

    questions, _, key = printable.partition(quiz.PAGE_BREAK)
    assert key.lstrip().startswith(quiz.ANSWER_KEY) and quiz.ANSWER_KEY not in questions
    for item in saved["questions"]:
        assert item["question"] in questions and item["explanation"] not in questions
        assert item["explanation"] in key
    for item in saved["questions"]:
        if item["type"] in ("fill_in_blank", "short_answer"):
            assert str(item["answer"]) not in questions and str(item["answer"]) in key
    assert "- A. A stone 1" in questions and "1. **A. A stone 1**" in key
    assert "5. **B. A leaf 5**" in key and "2. **True**" in key and "6. **False**" in key
    assert questions.index("**8.**") > questions.index("**7.**") > questions.index("**1.**")
    assert printable.startswith("# Fern's stone\n\n8 questions, 15 points, about 9 minutes.")


def test_invalid_json_then_a_good_answer_succeeds_with_usage_summed(fake, llm_settings, tmp_path):
    fake.queue(CHAT, test_story.with_usage(openai_server.chat_reply('{"questions": [{"type": "tr'), 200, 12))
    fake.queue(CHAT, test_story.with_usage(openai_server.chat_reply(quiz_answer()), 260, 400))

    result, ctx = _run({"source_text": SOURCE}, llm_settings, tmp_path)

    assert len(fake.requests_to(CHAT)) == 2 and result["asks"] == 2 and result["count"] == 5
    assert result["usage"] == {"prompt_tokens": 460, "completion_tokens": 412, "total_tokens": 872}
    assert any("re-asking" in line for line in ctx.logs)


def test_a_wrong_count_is_asked_again_with_the_problem(fake, llm_settings, tmp_path):
    fake.queue(CHAT, openai_server.chat_reply(quiz_answer(4)))

    result, _ = _run({"source_text": SOURCE}, llm_settings, tmp_path)

    assert result["count"] == 5
    reask = fake.requests_to(CHAT)[1].json["messages"][-1]
    assert reask["role"] == "user" and "there are 4 questions; exactly 5 are needed" in reask["content"]


def _spoil(index: int, **changes):
    def spoil(answer: dict) -> dict:
        answer["questions"][index].update(changes)
        return answer

    return spoil


def _duplicate(answer: dict) -> dict:
    answer["questions"][3]["question"] = "  WHAT did Fern find,   number 1?"
    answer["questions"][3]["type"] = "multiple_choice"
    return answer


@pytest.mark.parametrize(
    "spoil, problem",
    [
        (lambda a: {**a, "questions": a["questions"][:4]}, "there are 4 questions; exactly 5 are needed"),
        (_duplicate, "question 4 repeats question 1"),
        (_spoil(0, options=["A", "B", "C"], answer="A"), "question 1: multiple_choice needs exactly 4 options, not 3"),
        (_spoil(0, answer="A pebble"), "question 1: the answer 'A pebble' is not one of its options"),
        (_spoil(2, options=["Yes", "yes ", "No", "Maybe"], answer="No"), "question 3: the options are not distinct"),
        (_spoil(1, answer="maybe"), 'question 2: the answer \'maybe\' is not "true" or "false"'),
        (_spoil(4, explanation=" "), "question 5: the explanation is empty"),
        (_spoil(1, type="short_answer", answer="x"), "question 2: type short_answer was not asked for"),
    ],
)
def test_a_second_bad_answer_fails_naming_the_problem(spoil, problem, fake, llm_settings, tmp_path):
    fake.chat = lambda body: spoil(quiz_answer())

    message, ctx = _fails({"source_text": SOURCE}, llm_settings, tmp_path)

    assert problem in message and "invalid twice" in message
    assert len(fake.requests_to(CHAT)) == 2 and ctx.artifacts == []


def test_fill_in_the_blank_needs_a_blank_and_an_answer(fake, llm_settings, tmp_path):
    params = {"source_text": SOURCE, "num_questions": 2, "question_types": ["fill_in_blank"]}
    fake.chat = lambda body: _spoil(1, answer="")(
        _spoil(0, question="Fern found a stone.")(quiz_answer(2, ["fill_in_blank"]))
    )

    message, _ = _fails(params, llm_settings, tmp_path)

    assert "question 1: a fill_in_blank question must mark its blank with ____" in message
    assert "question 2: the answer is empty" in message


def test_the_asked_difficulty_and_a_real_mix_are_required():
    hard = quiz.QuizProcessor.load_params({"source_text": SOURCE, "difficulty": "hard"})
    mixed = quiz.QuizProcessor.load_params({"source_text": SOURCE})
    assert quiz.problems(quiz.QuizAnswer(**quiz_answer(5, difficulty="hard")), hard) == []
    found = quiz.problems(quiz.QuizAnswer(**quiz_answer(5, difficulty="easy")), hard)
    assert found[0] == "question 1: difficulty is easy; every question must be hard" and len(found) == 5
    assert quiz.problems(quiz.QuizAnswer(**quiz_answer(5, difficulty="easy")), mixed) == [
        "the difficulty is mixed but every question is easy: mix easy, medium and hard"
    ]


def test_each_asked_type_is_used_when_there_are_enough_questions():
    params = quiz.QuizProcessor.load_params({"source_text": SOURCE, "num_questions": 4, "question_types": ALL_TYPES})
    only_two = quiz.QuizAnswer(**quiz_answer(4, ["multiple_choice", "true_false"]))
    assert quiz.problems(only_two, params) == [
        "no question of type fill_in_blank, short_answer: use each asked type at least once"
    ]
    fewer = quiz.QuizProcessor.load_params({"source_text": SOURCE, "num_questions": 1, "question_types": ALL_TYPES})
    assert quiz.problems(quiz.QuizAnswer(**quiz_answer(1, ["true_false"])), fewer) == []


def test_a_rate_limit_is_waited_out_as_the_server_asks(fake, llm_settings, tmp_path):
    fake.queue(CHAT, openai_server.error(429, "Rate limit reached for requests", retry_after=1))

    result, ctx = _run({"source_text": SOURCE}, llm_settings, tmp_path)

    first, second = fake.requests_to(CHAT)
    assert second.time - first.time >= 0.95 and result["count"] == 5
    assert any("rate limited" in line for line in ctx.logs)


def test_a_refusal_fails_at_once_with_the_models_words(fake, llm_settings, tmp_path):
    fake.queue(CHAT, openai_server.chat_reply(None, refusal="I won't write questions about this text."))

    message, ctx = _fails({"source_text": SOURCE}, llm_settings, tmp_path)

    assert "I won't write questions about this text." in message
    assert len(fake.requests_to(CHAT)) == 1 and ctx.artifacts == []


# --- sources from other tasks ------------------------------------------------------------------

TASK_ID = "7d0f4c2e-5b1a-4c8e-9f3d-2a6b8c1e0f47"


@pytest.mark.parametrize(
    "task_type, result, text",
    [
        ("story", {"title": "T", "text": SOURCE}, SOURCE),
        ("explainer_video", {"script": {"scenes": [{"narration": "One."}, {"narration": "Two."}]}}, "One.\n\nTwo."),
        (
            "explainer_video",
            {"script": [{"narration": "Alpha.", "slide": "# A"}, {"narration": "Beta."}]},
            "Alpha.\n\nBeta.",
        ),
        ("explainer_video", {"text": " ", "script": [{"narration": "Gamma."}]}, "Gamma."),
        ("animated_lesson", {"sections": [{"narration": "Cells divide."}]}, "Cells divide."),
        ("animated_lesson", {"lesson": {"sections": [{"narration": "Atoms bond."}]}}, "Atoms bond."),
        ("video_clip", {"clips": [{"text": "First clip."}, {"text": "Second clip."}]}, "First clip.\n\nSecond clip."),
    ],
)
def test_a_quiz_reads_the_text_of_a_succeeded_task(task_type, result, text, fake, llm_settings, tmp_path):
    tasks = {TASK_ID: {"type": task_type, "status": "succeeded", "result": result}}

    made, ctx = _run({"source_task_id": TASK_ID}, llm_settings, tmp_path, tasks)

    (request,) = fake.requests_to(CHAT)
    assert request.json["messages"][1]["content"] == f"Source text:\n{text}"
    assert made["source"] == {"kind": "task", "task_id": TASK_ID, "task_type": task_type, "characters": len(text)}
    jsonschema.Draft202012Validator(quiz.SCHEMA).validate(_stored(ctx)[0])


@pytest.mark.parametrize(
    "tasks, problem",
    [
        ({}, f"task {TASK_ID} does not exist"),
        (
            {TASK_ID: {"type": "story", "status": "running", "result": None}},
            "is running: a quiz needs a task that has succeeded",
        ),
        ({TASK_ID: {"type": "story", "status": "failed", "result": None}}, "is failed"),
        (
            {TASK_ID: {"type": "image", "status": "succeeded", "result": {"images": []}}},
            "(image) has no text a quiz can use",
        ),
    ],
)
def test_a_source_task_without_usable_text_fails_clearly(tasks, problem, fake, llm_settings, tmp_path):
    message, ctx = _fails({"source_task_id": TASK_ID}, llm_settings, tmp_path, tasks)

    assert problem in message
    assert fake.requests_to(CHAT) == [] and ctx.artifacts == []
    if "no text" in problem:
        assert "`script` of scenes with `narration`" in message, "the error names what is supported"


@pytest.mark.parametrize(
    "params, field",
    [
        ({}, "_schema"),
        ({"source_text": SOURCE, "source_task_id": TASK_ID}, "_schema"),
        ({"source_task_id": "not-a-task"}, "source_task_id"),
        ({"source_text": "   "}, "source_text"),
        ({"source_text": SOURCE, "num_questions": 0}, "num_questions"),
        ({"source_text": SOURCE, "num_questions": 51}, "num_questions"),
        ({"source_text": SOURCE, "difficulty": "extreme"}, "difficulty"),
        ({"source_text": SOURCE, "question_types": ["essay"]}, "question_types"),
        ({"source_text": SOURCE, "question_types": []}, "question_types"),
        ({"source_text": SOURCE, "question_types": ["true_false", "true_false"]}, "question_types"),
    ],
)
def test_bad_params_are_refused_naming_the_field(params, field):
    with pytest.raises(errors.InvalidParams) as caught:
        quiz.QuizProcessor.load_params(params)
    assert list(caught.value.errors) == [field]


# --- through the API and a real worker ---------------------------------------------------------


@pytest.fixture
def openai_fake():
    """The fake answering stories and quizzes, for the worker; stopped after the test."""
    with openai_server.OpenAIServer(chat=answer_for) as server:
        yield server


@pytest.fixture
def settings(settings, openai_fake) -> dict:
    return {**settings, **openai_fake.settings(), "CONVEYOR_PROVIDER_RETRIES": "0"}


def _submit(client, headers, path: str, params: dict) -> uuid.UUID:
    answer = client.post(path, json={"params": params}, headers=headers)
    assert answer.status_code == 202, answer.get_json()
    return uuid.UUID(answer.get_json()["task_id"])


def test_a_quiz_about_a_story_task_through_the_api_and_a_worker(backend, client, keys, processes, openai_fake):
    member = api_fixtures.bearer(keys["a_member"])
    processes.worker("io", concurrency=1)
    story_id = _submit(client, member, "/api/story/generate", {"prompt": test_story.PROMPT})
    story_row = helpers.wait_status(story_id, ("succeeded", "failed"), timeout=60)
    assert story_row.status == "succeeded", story_row.error

    quiz_id = _submit(client, member, "/api/quiz/generate", {"source_task_id": str(story_id), "num_questions": 4})
    missing_id = _submit(client, member, "/api/quiz/generate", {"source_task_id": str(uuid.uuid4())})

    row = helpers.wait_status(quiz_id, ("succeeded", "failed"), timeout=60)
    assert row.status == "succeeded", row.error
    assert row.result["source"] == {
        "kind": "task",
        "task_id": str(story_id),
        "task_type": "story",
        "characters": len(story_row.result["text"]),
    }
    (quiz_request,) = [
        r for r in openai_fake.requests_to(CHAT) if "Write exactly 4" in r.json["messages"][0]["content"]
    ]
    assert quiz_request.json["messages"][1]["content"] == f"Source text:\n{story_row.result['text']}"
    listed = {item["name"]: item for item in client.get(f"/api/tasks/{quiz_id}/artifacts", headers=member).get_json()}
    assert sorted(listed) == ["quiz.json", "quiz.md"]
    with client.get(listed["quiz.json"]["url"], headers=member) as answer:
        saved = json.loads(answer.get_data(as_text=True))
    jsonschema.Draft202012Validator(quiz.SCHEMA).validate(saved)
    assert saved["count"] == 4 == row.result["count"]

    missing = helpers.wait_status(missing_id, ("succeeded", "failed"), timeout=30)
    assert missing.status == "failed" and "does not exist in this account" in missing.error["message"]
    assert missing.error["retryable"] is False
