"""course_video: an outline (given, or from the LLM) and one explainer_video child per lesson,
built from the lesson's content; the parent's progress follows its children's, it fails naming
the lessons that failed, and cancelling it cancels them. Real workers, espeak-ng and ffmpeg;
the LLM is the fake OpenAI server."""

import json
import pathlib
import subprocess

import pytest
import sqlalchemy as sa

from app import config, models, runtime
from app.extensions import db
from app.services import tasks as task_service
from processors import base, course_video, errors
from tests import media, probes
from tests.conftest import wait_for
from tests.fakes import openai_server
from tests.queue import helpers

OUTLINE = {
    "title": "Otters",
    "chapters": [
        {
            "title": "Life in water",
            "lessons": [
                {"title": "Floating", "content": "Otters float on their backs. They hold hands while asleep."},
                {"title": "Eating", "content": "Otters eat crabs and clams. They use stones as tools."},
            ],
        }
    ],
}


def _children(parent_id) -> list[models.Task]:
    db.session.rollback()
    query = sa.select(models.Task).where(models.Task.parent_id == parent_id).order_by(models.Task.created_at)
    return list(db.session.scalars(query))


def test_a_lesson_script_narrates_its_content():
    scenes = course_video.lesson_script("Life in water", "Floating", OUTLINE["chapters"][0]["lessons"][0]["content"])
    assert scenes[0] == {"narration": "Floating.", "slide": "# Floating\n\nLife in water"}
    assert scenes[1]["narration"] == "Otters float on their backs. They hold hands while asleep."
    assert scenes[1]["slide"].splitlines()[2:] == ["- Otters float on their backs.", "- They hold hands while asleep."]


def test_a_topic_without_an_llm_fails_at_once(tmp_path):
    ctx = base.Context("course", 1, tmp_path / "w", settings=config.load({"CONVEYOR_VAR_DIR": str(tmp_path)}))
    params = course_video.CourseVideoProcessor.load_params({"topic": "otters"})
    with pytest.raises(errors.PermanentError, match="OPENAI_API_KEY"):
        course_video.CourseVideoProcessor().run(params, ctx)
    assert ctx.children == []


def test_a_bad_llm_outline_is_asked_again_once_then_fails(tmp_path):
    dup = {"title": "T", "chapters": [{"title": "C", "lessons": [{"title": "Same", "content": "a."}] * 2}]}
    with openai_server.OpenAIServer(chat=lambda body: dup) as server:
        settings = config.load({"CONVEYOR_VAR_DIR": str(tmp_path)}, server.settings())
        ctx = base.Context("course", 1, tmp_path / "w", settings=settings)
        params = course_video.CourseVideoProcessor.load_params({"topic": "otters"})
        with pytest.raises(errors.PermanentError, match="lesson titles must be unique"):
            course_video.CourseVideoProcessor().run(params, ctx)
        assert len(server.requests_to("/v1/chat/completions")) == 2
    assert ctx.children == []


def test_a_given_outline_runs_with_no_key(backend, app, account, processes, tmp_path):
    processes.worker("io", concurrency=1)
    processes.worker("cpu", concurrency=2)
    parent, _ = task_service.submit("course_video", {"outline": OUTLINE, "aspect": "1:1"}, account_id=account.id)
    done = helpers.wait_status(parent.id, ("succeeded", "failed"), timeout=180)
    assert done.status == "succeeded", done.error
    children = _children(parent.id)
    assert [c.type for c in children] == ["explainer_video", "explainer_video"]
    assert all(c.status == "succeeded" for c in children)
    # Built from the lesson's content, not only its title.
    narrated = " ".join(scene["narration"] for scene in children[1].params["script"])
    assert "They use stones as tools." in narrated
    assert [lesson["title"] for lesson in done.result["lessons"]] == ["Floating", "Eating"]
    assert {lesson["task_id"] for lesson in done.result["lessons"]} == {str(c.id) for c in children}
    progress = [e.data["progress"] for e in helpers.events(parent.id, "progress")]
    assert progress == sorted(progress) and progress[-1] == 100.0
    assert len(progress) >= 3, "the parent reports its children's progress while it waits"
    outline = [a for a in task_service.artifacts(parent.id, account.id) if a.kind == "outline"]
    assert len(outline) == 1 and outline[0].name == "outline.json"

    # The joined course: a title card, then each lesson, with a chapter marker for each.
    (joined,) = [a for a in task_service.artifacts(parent.id, account.id) if a.kind == "video"]
    assert joined.name == "course.mp4" and done.result["video"] == "course.mp4"
    course = tmp_path / "course.mp4"
    runtime.current().storage.fetch(joined.storage_key, course)
    lessons = [media.duration(_lesson_video(child, account, tmp_path)) for child in children]
    chapters = _chapters(course)
    print(f"\ncourse {media.duration(course):.2f} s, lessons {lessons}, chapters {chapters}")
    assert [title for title, _, _ in chapters] == ["Otters", "Life in water: Floating", "Life in water: Eating"]
    assert chapters == [
        (c["title"], pytest.approx(c["start"], abs=0.05), pytest.approx(c["end"], abs=0.05))
        for c in done.result["chapters"]
    ]
    assert chapters[1][1] == pytest.approx(course_video.join.TITLE_SECONDS, abs=0.05)
    assert [end - start for _, start, end in chapters[1:]] == pytest.approx(lessons, abs=0.1)
    assert media.duration(course) == pytest.approx(course_video.join.TITLE_SECONDS + sum(lessons), abs=0.2)
    kinds = sorted(stream["codec_type"] for stream in media.probe(course)["streams"])
    assert kinds == ["audio", "data", "video"], "one picture, one sound, and mp4's chapter track"
    if probes.missing() is None:
        card = media.frame(course, 1.0, tmp_path / "card.png")
        seen = probes.ocr(card, tmp_path / "card-ocr.png")
        assert probes.word_accuracy("Otters Life in water", seen) >= 0.95, seen
        later = media.frame(course, chapters[2][1] + 0.5, tmp_path / "lesson2.png")
        assert probes.word_accuracy("Eating", probes.ocr(later, tmp_path / "lesson2-ocr.png")) == 1.0


def _lesson_video(child: models.Task, account, folder) -> pathlib.Path:
    (video,) = [a for a in task_service.artifacts(child.id, account.id) if a.name == "video.mp4"]
    path = folder / f"{child.id}.mp4"
    runtime.current().storage.fetch(video.storage_key, path)
    return path


def _chapters(path) -> list[tuple[str, float, float]]:
    argv = ["ffprobe", "-v", "error", "-print_format", "json", "-show_chapters", str(path)]
    found = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout)
    return [(c["tags"]["title"], float(c["start_time"]), float(c["end_time"])) for c in found["chapters"]]


def test_a_failed_lesson_fails_the_course_naming_it(backend, app, account, processes, settings):
    processes.worker("io", concurrency=1)
    processes.worker("cpu", concurrency=2)
    broken = json.loads(json.dumps(OUTLINE))
    broken["chapters"][0]["lessons"][1]["content"] = "x" * 10
    # An unknown espeak voice fails every lesson's narration at once (a permanent error).
    parent, _ = task_service.submit(
        "course_video", {"outline": broken, "aspect": "1:1", "voice": "no-such-voice"}, account_id=account.id
    )
    done = helpers.wait_status(parent.id, ("succeeded", "failed"), timeout=180)
    assert done.status == "failed"
    message = done.error["message"]
    assert "2 of 2 lessons did not succeed" in message
    assert "Life in water / Floating (failed)" in message and "Life in water / Eating (failed)" in message


def test_cancelling_a_course_cancels_its_lessons(backend, app, account, processes):
    processes.worker("io", concurrency=1)
    processes.worker("cpu", concurrency=1)  # one lesson renders, the other waits
    long = json.loads(json.dumps(OUTLINE))
    for lesson in long["chapters"][0]["lessons"]:
        lesson["content"] = "Otters are playful animals that live near water. " * 30
    parent, _ = task_service.submit("course_video", {"outline": long, "aspect": "1:1"}, account_id=account.id)
    wait_for(lambda: any(c.status == "running" for c in _children(parent.id)), timeout=60, message="a lesson running")
    assert task_service.cancel(parent.id, account.id) == "cancel_requested"
    helpers.wait_status(parent.id, "cancelled", timeout=30)
    children = _children(parent.id)
    assert len(children) == 2
    for child in children:
        helpers.wait_status(child.id, "cancelled", timeout=30)


def test_probe_a_long_narration_is_summed_up_on_its_slide_not_repeated():
    """With no LLM a lesson's slides show each long sentence as its key phrase: the on-screen
    words are at most half the narration's, and every bullet's words are the narration's."""
    content = (
        "Sea otters spend almost their whole lives floating on their backs in cold coastal water. "
        "To keep from drifting apart while they sleep, members of a group often hold each other's paws. "
        "Their thick fur traps a layer of air that keeps them warm without any blubber at all. "
        "They are short."
    )
    scenes = course_video.lesson_script("Life in water", "Floating", content)[1:]
    narrated = " ".join(scene["narration"] for scene in scenes)
    bullets = [line[2:] for scene in scenes for line in scene["slide"].splitlines() if line.startswith("- ")]
    shown = " ".join(bullets)
    ratio = len(probes.words(shown)) / len(probes.words(narrated))
    print(f"\non screen {ratio:.0%} of the narration's words: {bullets}")
    assert ratio <= 0.5
    assert len(bullets) == 4 and bullets[3] == "They are short.", "a short sentence is shown as written"
    assert all(set(probes.words(b)) <= set(probes.words(narrated)) for b in bullets), "the narration's own words"
