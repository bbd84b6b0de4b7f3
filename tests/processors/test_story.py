"""The `story` type with the real openai SDK over real HTTP against the fake OpenAI server: the
story is counted, shaped and stored; a bad answer gets one re-ask with its problems and then
fails naming them; rate limits and refusals; follow-up child tasks in memory; and one story
with all its follow-ups through the API and a real worker.
"""

import json
import pathlib
import uuid

import pytest

from app import config
from processors import base, errors, image, quiz, story, voice
from tests.api import conftest as api_fixtures
from tests.fakes import openai_server
from tests.queue import helpers

CHAT = "/v1/chat/completions"
PROMPT = "a young fox who finds a shining stone and learns to share it"
VOCABULARY = PROMPT.split()
SCENES = [
    "A small red fox with a white-tipped tail sniffs a glowing stone under an old oak at dusk.",
    "The fox and a grey rabbit sit side by side, the stone shining between them.",
    "Woodland animals gather in a moonlit clearing around the softly glowing stone.",
]

# The API's fixtures (a test client, callers' keys), for the end-to-end test.
client = api_fixtures.client
keys = api_fixtures.keys


def prose(words: int, paragraphs: int) -> str:
    """Return text of exactly `words` plain words in `paragraphs` blank-line paragraphs."""
    tokens = [VOCABULARY[i % len(VOCABULARY)] for i in range(words)]
    sentences = [" ".join(tokens[i : i + 10]).capitalize() + "." for i in range(0, words, 10)]
    size = -(-len(sentences) // paragraphs)
    return "\n\n".join(" ".join(sentences[i : i + size]) for i in range(0, len(sentences), size))


def story_answer(words: int = 250, paragraphs: int = 3, **changes) -> dict:
    """Return a good story answer (as the LLM sends it) with `changes` applied."""
    answer = {
        "title": "Fern and the Shining Stone",
        "text": prose(words, paragraphs),
        "summary": "Fern the fox finds a shining stone. She learns that sharing it makes the whole wood brighter.",
        "characters": [
            {"name": "Fern", "description": "A curious young fox with a white-tipped tail."},
            {"name": "Bramble", "description": "A shy grey rabbit who lives under the oak."},
        ],
        "moral": "What we share grows brighter.",
        "scenes": SCENES,
    }
    return {**answer, **changes}


def answer_for(body: dict):
    """The fake's chat answers: a good story, or a good quiz for what the quiz prompt asks."""
    if body["response_format"]["json_schema"]["name"] == "StoryAnswer":
        return story_answer(words=130, paragraphs=2)
    from tests.processors import test_quiz  # imported here: test_quiz imports this module

    return test_quiz.answer_for(body)


def with_usage(response, prompt_tokens: int, completion_tokens: int):
    """Return a fake chat answer reporting exactly this token usage."""
    response.json["usage"] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    return response


@pytest.fixture
def fake():
    """The fake OpenAI server answering good stories, stopped after the test."""
    with openai_server.OpenAIServer(chat=lambda body: story_answer()) as server:
        yield server


@pytest.fixture
def llm_settings(fake, tmp_path) -> dict:
    overrides = {**fake.settings(), "CONVEYOR_LLM_MODELS": json.dumps({"story": "story-writer"})}
    return config.load({"CONVEYOR_VAR_DIR": str(tmp_path / "var")}, overrides)


class RecordingContext(base.Context):
    """The in-memory context, also keeping the params of each child submitted (as JSON, the
    form the queue stores)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.submitted: list[tuple[str, dict]] = []

    def _record_child(self, type: str, params: dict, key: str) -> dict:
        self.submitted.append((type, json.loads(json.dumps(params))))
        return super()._record_child(type, params, key)


def _run(params: dict, settings: dict, tmp_path) -> tuple[dict, RecordingContext]:
    ctx = RecordingContext("task-story", 1, tmp_path / "work", settings=settings)
    result = story.StoryProcessor().run(story.StoryProcessor.load_params(params), ctx)
    return result, ctx


def _fails(params: dict, settings: dict, tmp_path) -> tuple[str, RecordingContext]:
    ctx = RecordingContext("task-story", 1, tmp_path / "work", settings=settings)
    with pytest.raises(errors.PermanentError) as caught:
        story.StoryProcessor().run(story.StoryProcessor.load_params(params), ctx)
    return str(caught.value), ctx


def test_a_story_is_written_counted_and_stored(fake, llm_settings, tmp_path):
    # The model's own word count is ignored (not in the schema): ours is counted from the text.
    fake.chat = lambda body: {**story_answer(words=250, paragraphs=3), "word_count": 9999}
    params = {"prompt": PROMPT, "story_type": "fable", "audience": "young_children", "length": "short"}

    result, ctx = _run(params, llm_settings, tmp_path)

    assert result["word_count"] == 250 == len(result["text"].split())
    assert result["paragraphs"] == 3 and result["text"] == prose(250, 3)
    good = story_answer()
    for field in ("title", "summary", "characters", "moral", "scenes"):
        assert result[field] == good[field], field
    assert (result["language"], result["story_type"], result["length"]) == ("en", "fable", "short")
    assert result["children"] == {"image": [], "voice": [], "quiz": []}
    assert (result["model"], result["asks"]) == ("story-writer", 1)

    (request,) = fake.requests_to(CHAT)
    assert request.json["model"] == "story-writer", "the type's model from CONVEYOR_LLM_MODELS"
    assert request.json["response_format"]["json_schema"]["name"] == "StoryAnswer"
    system, user = (m["content"] for m in request.json["messages"])
    for wanted in ("fable", "aged 3 to 6", "150 to 400 words", "at least 2 paragraphs", "code is en"):
        assert wanted in system, wanted
    assert PROMPT in user
    usage = result["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0

    by_name = {item["name"]: item for item in ctx.artifacts}
    assert sorted(by_name) == ["story.json", "story.md"]
    assert pathlib.Path(by_name["story.md"]["path"]).read_text() == f"# {good['title']}\n\n{prose(250, 3)}\n"
    saved = json.loads(pathlib.Path(by_name["story.json"]["path"]).read_text())
    assert saved["text"] == result["text"] and saved["word_count"] == 250 and saved["characters"] == good["characters"]
    assert ctx.reports[-1][:2] == (100.0, "done")


def test_paragraphs_on_single_lines_are_normalised_and_a_repeated_title_dropped(fake, llm_settings, tmp_path):
    body = prose(200, 4).replace("\n\n", "\n")
    fake.chat = lambda _: story_answer(text=f"# Fern and the Shining Stone\n{body}")

    result, _ = _run({"prompt": PROMPT}, llm_settings, tmp_path)

    assert result["text"] == prose(200, 4) and result["paragraphs"] == 4 and result["word_count"] == 200


def test_hard_wrapped_paragraphs_are_joined_after_a_leading_heading():
    wrapped = "## Fern and the Shining Stone\nFern walked\nthrough the woods.\n\nShe found\na stone."
    assert story.paragraphs(wrapped, "Fern and the Shining Stone") == [
        "Fern walked through the woods.",
        "She found a stone.",
    ]


@pytest.mark.parametrize(
    "length, words, good",
    [
        ("short", 112, True),
        ("short", 111, False),
        ("short", 500, True),
        ("short", 501, False),
        ("medium", 300, True),
        ("long", 600, False),
        ("long", 2500, True),
    ],
)
def test_the_word_range_is_lenient_by_a_quarter(length, words, good):
    params = story.StoryProcessor.load_params({"prompt": PROMPT, "length": length})
    answer = story.StoryAnswer(**story_answer(words=words, paragraphs=5))

    found = story.problems(answer, params)

    assert (found == []) is good, found
    if not good:
        low, high = story.LENGTHS[length]
        assert found == [f"the text has {words} words; a {length} story has {low}-{high} words"]


def test_languages_without_spaces_are_not_held_to_a_word_range():
    text = "\n\n".join(["狐狸在古老的橡树下找到了一块闪亮的石头。", "她和兔子分享了石头。"])
    answer = story.StoryAnswer(**story_answer(text=text))

    assert story.problems(answer, story.StoryProcessor.load_params({"prompt": PROMPT, "language": "zh"})) == []
    english = story.problems(answer, story.StoryProcessor.load_params({"prompt": PROMPT, "language": "en"}))
    assert english and "words" in english[0]


def test_a_bad_answer_is_asked_again_once_with_its_problems(fake, llm_settings, tmp_path):
    first = json.dumps(story_answer(words=60))
    fake.queue(CHAT, with_usage(openai_server.chat_reply(first), 100, 40))
    fake.queue(CHAT, with_usage(openai_server.chat_reply(story_answer()), 170, 300))

    result, ctx = _run({"prompt": PROMPT}, llm_settings, tmp_path)

    assert result["word_count"] == 250 and result["asks"] == 2
    assert result["usage"] == {"prompt_tokens": 270, "completion_tokens": 340, "total_tokens": 610}
    first_ask, second_ask = fake.requests_to(CHAT)
    assert second_ask.json["messages"][:2] == first_ask.json["messages"]
    assistant, reask = second_ask.json["messages"][2:]
    assert assistant == {"role": "assistant", "content": first}
    assert "the text has 60 words; a short story has 150-400 words" in reask["content"]
    assert any("re-asking" in line for line in ctx.logs)


def test_invalid_json_then_a_good_answer_succeeds(fake, llm_settings, tmp_path):
    fake.queue(CHAT, with_usage(openai_server.chat_reply('{"title": "Fern", "text": '), 90, 5))

    result, _ = _run({"prompt": PROMPT}, llm_settings, tmp_path)

    assert len(fake.requests_to(CHAT)) == 2 and result["asks"] == 2
    assert result["title"] == "Fern and the Shining Stone"
    assert result["usage"]["prompt_tokens"] > 90 and result["usage"]["completion_tokens"] > 5


@pytest.mark.parametrize(
    "changes, params, problem",
    [
        ({"text": prose(60, 2)}, {}, "the text has 60 words; a short story has 150-400 words"),
        ({"moral": "  "}, {}, "moral is empty"),
        ({"characters": []}, {}, "characters is empty"),
        ({"characters": [{"name": "Fern", "description": ""}]}, {}, "character 1 needs both a name and a description"),
        ({"text": prose(250, 1)}, {}, "the text has 1 paragraph(s); write at least 2"),
        ({"scenes": SCENES[:1]}, {"illustrations": 2}, "give at least 2 non-empty scenes"),
    ],
)
def test_a_second_bad_answer_fails_naming_the_problem(changes, params, problem, fake, llm_settings, tmp_path):
    fake.chat = lambda _: story_answer(**changes)

    message, ctx = _fails({"prompt": PROMPT, **params}, llm_settings, tmp_path)

    assert problem in message and "invalid twice" in message
    assert len(fake.requests_to(CHAT)) == 2
    assert ctx.artifacts == [] and ctx.submitted == [], "nothing is stored or submitted for a failed story"


def test_a_rate_limit_is_waited_out_as_the_server_asks(fake, llm_settings, tmp_path):
    fake.queue(CHAT, openai_server.error(429, "Rate limit reached for requests", retry_after=1))

    result, ctx = _run({"prompt": PROMPT}, llm_settings, tmp_path)

    first, second = fake.requests_to(CHAT)
    assert second.time - first.time >= 0.95, "Retry-After: 1 was honoured"
    assert result["asks"] == 1 and result["word_count"] == 250
    assert any("rate limited" in line for line in ctx.logs)


def test_a_refusal_fails_at_once_with_the_models_words(fake, llm_settings, tmp_path):
    fake.queue(CHAT, openai_server.chat_reply(None, refusal="I can't write a story about that."))

    message, ctx = _fails({"prompt": PROMPT}, llm_settings, tmp_path)

    assert "I can't write a story about that." in message
    assert len(fake.requests_to(CHAT)) == 1 and ctx.artifacts == []


def test_follow_ups_are_child_tasks_with_valid_params(fake, llm_settings, tmp_path):
    params = {"prompt": PROMPT, "illustrations": 2, "narration": True, "quiz": 3, "language": "en-gb"}

    result, ctx = _run(params, llm_settings, tmp_path)

    assert [(child["type"], child["key"].rsplit("-", 1)[0]) for child in ctx.children] == [
        ("image", "illustration-1"),
        ("image", "illustration-2"),
        ("voice", "narration"),
        ("quiz", "quiz"),
    ]
    ids = [child["id"] for child in ctx.children]
    assert result["children"] == {"image": ids[:2], "voice": [ids[2]], "quiz": [ids[3]]}
    submitted: dict[str, list[dict]] = {}
    for child_type, child_params in ctx.submitted:
        submitted.setdefault(child_type, []).append(child_params)
    first, second = (image.ImageProcessor.load_params(p) for p in submitted["image"])
    assert SCENES[0] in first["prompt"] and SCENES[1] in second["prompt"] and "fairy tale" in first["prompt"]
    narration = voice.VoiceProcessor.load_params(submitted["voice"][0])
    assert narration["text"] == f"{result['title']}.\n\n{result['text']}" and narration["language"] == "en-gb"
    questions = quiz.QuizProcessor.load_params(submitted["quiz"][0])
    assert questions["source_text"] == result["text"] and questions["source_task_id"] is None
    assert (questions["num_questions"], questions["language"]) == (3, "en-gb")
    assert questions["title"] == f"Quiz: {result['title']}"


@pytest.mark.parametrize("given, loaded", [(True, 5), (False, 0), (7, 7), (0, 0)])
def test_the_quiz_follow_up_takes_a_flag_or_a_count(given, loaded):
    params = story.StoryProcessor.load_params({"prompt": PROMPT, "quiz": given})
    assert params["quiz"] == loaded
    assert story.StoryProcessor.load_params(story.StoryProcessor.dump_params(params)) == params


@pytest.mark.parametrize(
    "params, field",
    [
        ({"prompt": "   "}, "prompt"),
        ({"prompt": PROMPT, "length": "epic"}, "length"),
        ({"prompt": PROMPT, "story_type": "saga"}, "story_type"),
        ({"prompt": PROMPT, "audience": "cats"}, "audience"),
        ({"prompt": PROMPT, "language": "English"}, "language"),
        ({"prompt": PROMPT, "illustrations": 5}, "illustrations"),
        ({"prompt": PROMPT, "quiz": 51}, "quiz"),
        ({"prompt": PROMPT, "quiz": "yes"}, "quiz"),
    ],
)
def test_bad_params_are_refused_naming_the_field(params, field):
    with pytest.raises(errors.InvalidParams) as caught:
        story.StoryProcessor.load_params(params)
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


def test_a_story_with_follow_ups_through_the_api_and_a_worker(backend, client, keys, processes, openai_fake):
    member = api_fixtures.bearer(keys["a_member"])
    processes.worker("io", concurrency=1)
    params = {"prompt": PROMPT, "illustrations": 2, "narration": True, "quiz": 3}
    submitted = client.post("/api/story/generate", json={"params": params}, headers=member)
    assert submitted.status_code == 202, submitted.get_json()
    story_id = uuid.UUID(submitted.get_json()["task_id"])

    row = helpers.wait_status(story_id, ("succeeded", "failed"), timeout=60)
    assert row.status == "succeeded", row.error
    listed = client.get(f"/api/tasks/{story_id}/artifacts", headers=member).get_json()
    assert sorted(item["name"] for item in listed) == ["story.json", "story.md"]

    kinds = row.result["children"]
    assert (len(kinds["image"]), len(kinds["voice"]), len(kinds["quiz"])) == (2, 1, 1)
    for kind, ids in kinds.items():
        for child_id in ids:
            child = helpers.wait_status(uuid.UUID(child_id), ("succeeded", "failed", "cancelled"), timeout=60)
            assert (child.type, child.parent_id, child.status) == (kind, story_id, "succeeded"), child.error
            detail = client.get(f"/api/tasks/{child_id}", headers=member).get_json()
            assert detail["parent_id"] == str(story_id)
    quiz_task = helpers.task(uuid.UUID(kinds["quiz"][0]))
    assert quiz_task.params["source_text"] == row.result["text"] and quiz_task.result["count"] == 3
    assert helpers.task(uuid.UUID(kinds["voice"][0])).result["duration"] > 1
    _check_metered(client, member, story_id, row, kinds)


def _check_metered(client, member, story_id, row, kinds) -> None:
    """Each task of the story shows what it consumed, and the account's day sums them."""

    def usage_of(task_id) -> dict:
        lines = client.get(f"/api/tasks/{task_id}", headers=member).get_json()["usage"]
        return {line["measure"]: line for line in lines}

    story_usage = usage_of(story_id)
    assert story_usage["llm_input_tokens"]["quantity"] == row.result["usage"]["prompt_tokens"] > 0
    assert story_usage["llm_output_tokens"]["quantity"] == row.result["usage"]["completion_tokens"] > 0
    assert story_usage["llm_input_tokens"]["model"] == row.result["model"]
    for image_id in kinds["image"]:
        assert usage_of(image_id)["images"]["quantity"] == 1
    voice_id = kinds["voice"][0]
    spoken, voice_result = usage_of(voice_id), helpers.task(uuid.UUID(voice_id)).result
    assert spoken["speech_characters"]["model"] == voice_result["provider"]
    # Each sentence is spoken and counted; the blanks between sentences are not.
    assert 0.9 * voice_result["characters"] <= spoken["speech_characters"]["quantity"] <= voice_result["characters"]
    assert spoken["media_seconds"]["quantity"] == pytest.approx(voice_result["duration"], abs=0.01)
    day = client.get("/api/usage", headers=member).get_json()["days"][-1]
    images = [line["quantity"] for line in day["lines"] if line["measure"] == "images"]
    assert sum(images) == 2 and day["priced"] is False
