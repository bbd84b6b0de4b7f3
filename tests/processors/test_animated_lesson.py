"""The `animated_lesson` type: given sections narrated by real espeak-ng and rendered by real
ffmpeg from frames drawn with Pillow, probed from the outside (lesson.json against its schema,
the video as long as its narrations, typing, fade and slide seen in the frames, captions per
section); a prompt through the fake OpenAI server over real HTTP, with one re-ask and then a
clear failure; a prompt without a key; cancel while frames are piped into ffmpeg; and one task
through the API and a real worker.
"""

import itertools
import json
import pathlib
import threading
import time
import uuid

import jsonschema
import pytest
from PIL import Image, ImageChops, ImageStat

from app import config
from processors import base, captions, errors
from processors.animated_lesson import AnimatedLessonProcessor, lesson, player
from processors.explainer_video import themes
from processors.providers import ffmpeg, process
from tests import media, probes
from tests.api import conftest as api_fixtures
from tests.fakes import openai_server
from tests.queue import helpers

CHAT = "/v1/chat/completions"
WHITE = themes.THEMES["light"].background
SECTIONS = [
    {
        "title": "Loops",
        "narration": "A loop repeats work. Here is one in Python. It prints three square numbers.",
        "blocks": [
            {"type": "heading", "content": "Loops"},
            {
                "type": "code",
                "content": "for number in range(3):\n    print(number * number)",
                "language": "python",
                "animation": "typing",
                "duration": 2.0,
            },
        ],
    },
    {
        "title": "Why loops",
        "narration": "Loops save typing. They also make mistakes rarer. Use them often.",
        "blocks": [
            {"type": "text", "content": "Loops save a lot of typing.", "animation": "fade", "duration": 1.2},
            {"type": "bullets", "content": "- less code\n- fewer bugs", "animation": "slide", "duration": 1.0},
        ],
    },
]
SMALL = {"aspect": "1:1", "resolution": 360}

# The API's fixtures (a test client, callers' keys), for the end-to-end test.
client = api_fixtures.client
keys = api_fixtures.keys


def _settings(folder, **overrides) -> dict:
    return config.load({"CONVEYOR_VAR_DIR": str(folder / "var")}, overrides)


def _run(params: dict, settings: dict, workdir) -> tuple[dict, base.Context]:
    ctx = base.Context("task-lesson", 1, workdir, settings=settings)
    return AnimatedLessonProcessor().run(AnimatedLessonProcessor.load_params(params), ctx), ctx


def _by_name(ctx: base.Context) -> dict[str, dict]:
    return {item["name"]: item for item in ctx.artifacts}


def _inked(image: Image.Image, box) -> int:
    """Count the pixels in `box` far from the white background: text, not the code box's pale
    fill or its grey outline."""
    difference = ImageChops.difference(image, Image.new("RGB", image.size, WHITE)).crop(box).convert("L")
    return sum(count for level, count in enumerate(difference.histogram()) if level > 120)


def _darkness(image: Image.Image, box) -> float:
    """Return the mean difference from the white background in `box`."""
    difference = ImageChops.difference(image, Image.new("RGB", image.size, WHITE)).crop(box)
    return sum(ImageStat.Stat(difference).mean) / 3


def _validate(document: dict) -> None:
    jsonschema.Draft202012Validator.check_schema(player.SCHEMA)
    jsonschema.Draft202012Validator(player.SCHEMA).validate(document)


@pytest.fixture(scope="module")
def given(tmp_path_factory):
    """The given sections run once for the module: result, context, lesson.json and a folder."""
    folder = tmp_path_factory.mktemp("lesson")
    result, ctx = _run({"sections": SECTIONS, **SMALL}, _settings(folder), folder / "w")
    document = json.loads(pathlib.Path(_by_name(ctx)["lesson.json"]["path"]).read_text())
    return result, ctx, document, folder


def test_given_sections_become_a_lesson_json_and_a_video_as_long_as_its_sections(given):
    result, ctx, document, _ = given

    names = _by_name(ctx)
    per_section = [f"section-{n:02d}.{ext}" for n in (1, 2) for ext in ("wav", "srt", "vtt")]
    assert sorted(names) == sorted([*per_section, "lesson.json", "lesson.mp4", "lesson.srt"])
    _validate(document)

    video = names["lesson.mp4"]["path"]
    probed = media.probe(video)
    kinds = sorted(stream["codec_type"] for stream in probed["streams"])
    assert kinds == ["audio", "video"]
    level = probes.loudness(video)
    print(f"\nlesson narration: {level:.1f} LUFS")
    assert abs(level - ffmpeg.VOICE_LUFS) <= 1.0, "the narration is brought to -16 LUFS"
    (picture,) = [s for s in probed["streams"] if s["codec_type"] == "video"]
    assert (picture["codec_name"], picture["pix_fmt"], picture["width"], picture["height"]) == (
        "h264",
        "yuv420p",
        360,
        360,
    )
    narrations = [media.duration(names[f"section-{n:02d}.wav"]["path"]) for n in (1, 2)]
    sections = document["sections"]
    # A section lasts its narration, or until its last animation has been held a second.
    ends = [max(b["start"] + b["duration"] for b in s["blocks"]) for s in sections]
    lengths = [max(n, end + lesson.HOLD_SECONDS) for n, end in zip(narrations, ends, strict=True)]
    assert [s["duration"] for s in sections] == pytest.approx(lengths, abs=0.02)
    length = float(probed["format"]["duration"])
    assert abs(length - sum(lengths)) <= 0.2, (length, lengths)
    assert abs(result["duration"] - length) <= 0.01
    assert abs(document["duration"] - sum(lengths)) <= 0.02
    assert [s["start"] for s in sections] == pytest.approx([0.0, lengths[0]], abs=0.02)
    assert [(s["audio"], s["captions"]) for s in sections] == [
        (f"section-{n:02d}.wav", {"srt": f"section-{n:02d}.srt", "vtt": f"section-{n:02d}.vtt"}) for n in (1, 2)
    ]
    # Section 2 starts with text, so its title is put in front as a heading.
    assert [[(b["type"], b["animation"]) for b in s["blocks"]] for s in sections] == [
        [("heading", "fade"), ("code", "typing")],
        [("heading", "fade"), ("text", "fade"), ("bullets", "slide")],
    ]
    assert sections[1]["blocks"][0]["content"] == "Why loops"
    assert sections[1]["blocks"][2]["items"] == ["less code", "fewer bugs"]
    assert sections[0]["blocks"][1]["language"] == "python"
    for section, narration in zip(sections, narrations, strict=True):
        count, step = len(section["blocks"]), narration / len(section["blocks"])
        for index, block in enumerate(section["blocks"]):
            assert block["start"] == pytest.approx(index * step, abs=0.002), "blocks appear at equal steps"
            assert block["start"] + block["duration"] <= section["duration"] - lesson.HOLD_SECONDS + 0.001
        assert count >= 1
    assert sections[0]["blocks"][1]["duration"] == 2.0, "a given duration is kept"

    assert (result["title"], result["sections_by"], result["video"], result["lesson"]) == (
        "Loops",
        "given",
        "lesson.mp4",
        "lesson.json",
    )
    assert "usage" not in result and [s["blocks"] for s in result["sections"]] == [2, 3]
    percents = [percent for percent, _, _ in ctx.reports]
    assert percents == sorted(percents) and percents[-1] == 100.0
    stages = [stage for _, stage, _ in ctx.reports]
    assert list(dict.fromkeys(stages)) == ["sections", "narrating", "rendering", "done"]


def test_captions_per_section_cover_their_narration(given):
    _, ctx, document, _ = given
    names = _by_name(ctx)

    for number, (raw, section) in enumerate(zip(SECTIONS, document["sections"], strict=True), 1):
        for suffix in ("srt", "vtt"):
            cues = captions.read(names[f"section-{number:02d}.{suffix}"]["path"])
            assert [cue.text for cue in cues] == captions.sentences(raw["narration"], 300)
            narration = media.duration(names[f"section-{number:02d}.wav"]["path"])
            assert cues[0].start == 0.0 and abs(cues[-1].end - narration) <= 0.02
            assert section["duration"] >= narration - 0.02
            assert all(a.end == pytest.approx(b.start, abs=0.002) for a, b in itertools.pairwise(cues)), "no gaps"
    whole = captions.read(names["lesson.srt"]["path"])
    first = len(captions.sentences(SECTIONS[0]["narration"], 300))
    assert len(whole) == first + len(captions.sentences(SECTIONS[1]["narration"], 300))
    assert whole[first].start == pytest.approx(document["sections"][1]["start"], abs=0.02)


def test_typing_reveals_the_code_over_its_duration(given):
    _, ctx, document, folder = given
    video = _by_name(ctx)["lesson.mp4"]["path"]
    code = document["sections"][0]["blocks"][1]
    box = code["box"]

    at = [code["start"] + code["duration"] * share for share in (0.2, 0.6)] + [code["start"] + code["duration"] + 0.1]
    inked = [_inked(media.frame(video, seconds, folder / f"typing-{n}.png"), box) for n, seconds in enumerate(at)]

    assert inked[0] < inked[1] < inked[2], inked
    assert inked[0] < 0.5 * inked[2] and inked[2] > 100, inked
    before = media.frame(video, max(0.0, code["start"] - 0.2), folder / "typing-before.png")
    assert _inked(before, box) == 0, "nothing of the code is shown before its start"


def test_fade_and_slide_bring_their_blocks_in(given):
    _, ctx, document, folder = given
    video = _by_name(ctx)["lesson.mp4"]["path"]
    section = document["sections"][1]
    text, bullets = section["blocks"][1], section["blocks"][2]

    fade_at = section["start"] + text["start"]
    mid = _darkness(media.frame(video, fade_at + text["duration"] / 2, folder / "fade-mid.png"), text["box"])
    full = _darkness(media.frame(video, fade_at + text["duration"] + 0.1, folder / "fade-full.png"), text["box"])
    assert 0.2 * full < mid < 0.8 * full, (mid, full)

    slide_at = section["start"] + bullets["start"]
    moving = media.frame(video, slide_at + bullets["duration"] * 0.3, folder / "slide-mid.png")
    settled = media.frame(video, slide_at + bullets["duration"] + 0.1, folder / "slide-full.png")
    left, top, _, bottom = bullets["box"]
    rows = (0, top, 360, bottom)
    moving_box = ImageChops.difference(moving, Image.new("RGB", moving.size, WHITE)).crop(rows).getbbox()
    settled_box = ImageChops.difference(settled, Image.new("RGB", settled.size, WHITE)).crop(rows).getbbox()
    assert settled_box[0] <= left + 4, "it ends in its place"
    assert moving_box is None or moving_box[0] > left + 30, "partway it is still to the right of its place"


def test_blocks_appear_at_equal_steps_within_the_section():
    blocks = (
        lesson.Block("heading", "Title", "fade"),
        lesson.Block("text", "x" * 90, "typing"),
        lesson.Block("code", "print(1)", "typing", "python", duration=10.0),
    )

    timings = lesson.schedule(blocks, 6.0)

    assert timings == [lesson.Timing(0.0, 0.8), lesson.Timing(2.0, 2.0), lesson.Timing(4.0, 10.0)]
    assert lesson.section_length(timings, 6.0) == 15.0, "the section waits for its last block, then holds it 1 s"
    assert lesson.section_length(timings[:2], 6.0) == 6.0, "blocks ended and held within the narration"
    short = lesson.schedule(blocks[:1], 0.5)
    assert short == [lesson.Timing(0.0, 0.5)] and lesson.section_length(short, 0.5) == 1.5


def _llm_section(number: int, code: str = "print('hello')") -> dict:
    return {
        "title": f"Part {number}",
        "narration": f"Part {number} shows one idea.",
        "blocks": [
            {"type": "heading", "content": f"Part {number}", "language": "", "animation": "fade"},
            {"type": "code", "content": code, "language": "python", "animation": "typing"},
        ],
    }


def test_a_prompt_is_written_by_the_llm_with_one_re_ask(tmp_path):
    answers = [
        {"title": "Ideas", "sections": [_llm_section(1), _llm_section(2, code="  ")]},
        {"title": "Ideas", "sections": [_llm_section(1), _llm_section(2)]},
    ]
    with openai_server.OpenAIServer(chat=lambda body: answers.pop(0)) as fake:
        params = {"prompt": "Teach two ideas", "scenes": 2, **SMALL, "subtitles": False}
        result, ctx = _run(params, _settings(tmp_path, **fake.settings()), tmp_path / "w")
        asked = fake.requests_to(CHAT)

    assert len(asked) == 2
    system = asked[0].json["messages"][0]["content"]
    assert "exactly 2 sections" in system and "1:1" in system
    assert asked[0].json["messages"][1]["content"].endswith("Teach two ideas")
    assert "section 2: block 2 (code) is empty" in asked[1].json["messages"][-1]["content"]
    assert result["sections_by"] == "llm" and result["title"] == "Ideas"
    assert result["usage"]["asks"] == 2 and result["usage"]["total_tokens"] > 0
    names = _by_name(ctx)
    document = json.loads(pathlib.Path(names["lesson.json"]["path"]).read_text())
    _validate(document)
    assert document["by"] == "llm" and [s["title"] for s in document["sections"]] == ["Part 1", "Part 2"]
    narrations = [media.duration(names[f"section-{n:02d}.wav"]["path"]) for n in (1, 2)]
    lengths = [section["duration"] for section in document["sections"]]
    assert all(length >= narration - 0.02 for length, narration in zip(lengths, narrations, strict=True))
    assert abs(media.duration(names["lesson.mp4"]["path"]) - sum(lengths)) <= 0.2


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"title": "Short", "sections": [_llm_section(1)]}, "exactly 3 sections, not 1"),
        (
            {
                "title": "Spin",
                "sections": [
                    {**_llm_section(n), "blocks": [{**_llm_section(n)["blocks"][0], "animation": "spin"}]}
                    for n in (1, 2, 3)
                ],
            },
            "animation",
        ),
    ],
)
def test_a_bad_answer_is_asked_again_once_then_fails(answer, message, tmp_path):
    with openai_server.OpenAIServer(chat=lambda body: answer) as fake:
        with pytest.raises(errors.PermanentError, match=message) as failed:
            _run(
                {"prompt": "Teach three ideas", "scenes": 3, **SMALL},
                _settings(tmp_path, **fake.settings()),
                tmp_path / "w",
            )
        asked = fake.requests_to(CHAT)

    assert "invalid twice" in str(failed.value)
    assert len(asked) == 2, "one re-ask, no more"


def test_a_prompt_without_a_key_fails_at_once_naming_it(tmp_path):
    ctx = base.Context("task-lesson", 1, tmp_path / "w", settings=_settings(tmp_path))

    with pytest.raises(errors.PermanentError, match="needs the LLM: OPENAI_API_KEY is not set"):
        AnimatedLessonProcessor().run(AnimatedLessonProcessor.load_params({"prompt": "Teach otters"}), ctx)

    assert ctx.artifacts == [] and ctx.reports == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"prompt": "x", "sections": SECTIONS}, "prompt"),
        ({}, "prompt"),
        ({"sections": []}, "sections"),
        ({"sections": [{**SECTIONS[0], "blocks": []}]}, "sections"),
        ({"sections": [{**SECTIONS[0], "blocks": [{"type": "image", "content": "a.png"}]}]}, "sections"),
        (
            {"sections": [{**SECTIONS[0], "blocks": [{"type": "text", "content": "x", "animation": "spin"}]}]},
            "sections",
        ),
        ({"prompt": "x", "scenes": 26}, "scenes"),
        ({"prompt": "x", "aspect": "4:3"}, "aspect"),
        ({"prompt": "x", "theme": "neon"}, "theme"),
    ],
)
def test_bad_params_are_refused_naming_the_field(params, field):
    with pytest.raises(errors.InvalidParams) as refused:
        AnimatedLessonProcessor.load_params(params)

    assert list(refused.value.errors) == [field]


def test_a_section_too_full_to_fit_is_refused_before_any_work(tmp_path):
    crowded = {**SECTIONS[0], "blocks": [{"type": "text", "content": "A long sentence about loops. " * 60}] * 6}
    ctx = base.Context("task-lesson", 1, tmp_path / "w", settings=_settings(tmp_path))

    with pytest.raises(errors.PermanentError, match="section 2: the blocks hold too much"):
        AnimatedLessonProcessor().run(AnimatedLessonProcessor.load_params({"sections": [SECTIONS[0], crowded]}), ctx)

    assert ctx.artifacts == []


class _CancelOnFrames(base.Context):
    """Tells when the run first reports frames written to ffmpeg."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reached = threading.Event()

    def progress(self, percent, stage=None, message=None):
        if stage == "rendering" and (message or "").startswith("frame "):
            self.reached.set()
        super().progress(percent, stage, message)


def test_cancel_while_frames_are_piped_stops_within_two_seconds(tmp_path):
    long_text = "This section goes on for a while so that there is time to cancel it. " * 4
    sections = [{**section, "narration": long_text} for section in SECTIONS]
    params = AnimatedLessonProcessor.load_params({"sections": sections, "aspect": "16:9", "resolution": 480})
    ctx = _CancelOnFrames("task-lesson", 1, tmp_path / "w", settings=_settings(tmp_path))
    outcome = {}

    def work():
        try:
            AnimatedLessonProcessor().run(params, ctx)
        except BaseException as exc:  # kept for the test to judge
            outcome["error"] = exc

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    assert ctx.reached.wait(60), "the run never started piping frames"
    (encoder,) = ctx.tracked()
    cancelled_at = time.monotonic()
    ctx.cancel()
    worker.join(5)

    assert not worker.is_alive() and time.monotonic() - cancelled_at < 2.0
    assert isinstance(outcome.get("error"), errors.Cancelled), outcome
    assert ctx.tracked() == [] and encoder.poll() is not None
    assert process.group_members(encoder.pid) == [], "no ffmpeg is left behind"
    assert "lesson.mp4" not in _by_name(ctx) and "lesson.json" not in _by_name(ctx)


def test_animated_lesson_through_the_api_and_a_worker(backend, client, keys, processes, tmp_path):
    member = api_fixtures.bearer(keys["a_member"])
    types = {item["type"]: item for item in client.get("/api/task-types", headers=member).get_json()}
    assert types["animated_lesson"]["available"] is True
    assert types["animated_lesson"]["endpoint"] == "/api/animated-lesson/generate"
    processes.worker("cpu", concurrency=1)
    submitted = client.post(
        "/api/animated-lesson/generate", json={"params": {"sections": SECTIONS, **SMALL}}, headers=member
    )
    assert submitted.status_code == 202, submitted.get_json()
    task_id = uuid.UUID(submitted.get_json()["task_id"])

    row = helpers.wait_status(task_id, ("succeeded", "failed"), timeout=90)
    assert row.status == "succeeded", row.error
    listed = client.get(f"/api/tasks/{task_id}/artifacts", headers=member).get_json()
    by_name = {item["name"]: item for item in listed}
    assert sorted(by_name) == sorted(
        [f"section-{n:02d}.{ext}" for n in (1, 2) for ext in ("wav", "srt", "vtt")]
        + ["lesson.json", "lesson.mp4", "lesson.srt"]
    )
    with client.get(by_name["lesson.json"]["url"], headers=member) as answer:
        assert answer.status_code == 200
        document = json.loads(answer.data)
    _validate(document)
    video = tmp_path / "downloaded.mp4"
    with client.get(by_name["lesson.mp4"]["url"], headers=member) as answer:
        assert answer.status_code == 200 and answer.mimetype == "video/mp4"
        video.write_bytes(answer.data)
    assert sorted(stream["codec_type"] for stream in media.probe(video)["streams"]) == ["audio", "video"]
    assert abs(media.duration(video) - document["duration"]) <= 0.2
    assert abs(row.result["duration"] - media.duration(video)) <= 0.05


# The case: the last block a long code listing typed out while a short narration ends.
LAST_CODE = "def finish(queue, task, result):\n    queue.done(task, result)\n    return result"
ENDING = [
    {
        "title": "Finishing a task",
        "narration": "Here is how a task ends.",
        "blocks": [{"type": "code", "content": LAST_CODE, "language": "python", "animation": "typing"}],
    }
]


@pytest.mark.skipif(probes.missing() is not None, reason=str(probes.missing()))
def test_probe_the_last_animation_is_whole_and_held_a_second_at_the_end(tmp_path):
    _, ctx = _run(
        {"sections": ENDING, "aspect": "16:9", "resolution": 720, "subtitles": False},
        _settings(tmp_path),
        tmp_path / "w",
    )
    video = _by_name(ctx)["lesson.mp4"]["path"]
    document = json.loads(pathlib.Path(_by_name(ctx)["lesson.json"]["path"]).read_text())
    (section,) = document["sections"]
    _, code = section["blocks"]
    typed_by = section["start"] + code["start"] + code["duration"]
    length = media.duration(video)
    hold = length - typed_by
    print(f"\nlesson {length:.2f} s, code typed by {typed_by:.2f} s: final state held {hold:.2f} s")
    assert hold >= lesson.HOLD_SECONDS - 0.05, "the typing ends too close to the end of the video"

    last_at = length - 0.15  # the last frame ffmpeg can seek to
    change = probes.held(video, code["box"], typed_by + 0.05, last_at, tmp_path)
    last = media.frame(video, last_at, tmp_path / "last.png")
    accuracy = probes.word_accuracy(LAST_CODE, probes.ocr(last.crop(code["box"]), tmp_path / "last-code.png"))
    print(f"largest change after the typing {change:.2f}; OCR of the last frame: {accuracy:.0%} of the code's words")
    assert change < 0.5, "the code changes after its animation ended"
    assert accuracy >= 0.95, "the last frame does not show the code whole"
