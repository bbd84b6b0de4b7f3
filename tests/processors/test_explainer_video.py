"""The `explainer_video` type: a given script narrated by real espeak-ng and rendered by real
ffmpeg, probed from the outside (the video lasts as long as its narrations, slides change and
captions run where the narration says, every aspect has its size, code is coloured); a prompt
scripted through the fake OpenAI server over real HTTP, with one re-ask and then a clear
failure; cancel mid-narration and mid-render; and one task through the API and a real worker.
"""

import colorsys
import json
import pathlib
import threading
import time
import uuid

import pytest
from PIL import Image, ImageChops, ImageStat

from app import config
from processors import base, captions, errors
from processors.explainer_video import ExplainerVideoProcessor, markup, render, slides, themes
from processors.providers import ffmpeg
from tests import media, probes
from tests.api import conftest as api_fixtures
from tests.fakes import openai_server
from tests.queue import helpers

CHAT = "/v1/chat/completions"
CODE_SLIDE = """# Area of a circle

```python
def area(radius):
    return 3.14159 * radius ** 2  # pi r squared

print(area(2.0), "square units")
```"""
TABLE_SLIDE = """# Shapes compared

| Shape | Area |
|---|---|
| Circle | pi r squared |
| Square | side squared |"""
SCRIPT = [
    {
        "narration": "Circles are everywhere. Let us measure one.",
        "slide": "# Circles\n\n- Round\n  - no corners\n- Common",
    },
    {"narration": "The area is pi times the radius squared.", "slide": CODE_SLIDE},
    {"narration": "Here is a table. It compares two shapes.", "slide": TABLE_SLIDE},
]
# A grey accent, so that the only coloured pixels on a slide are the code's syntax colours.
GREY = {"theme": "light", "accent": "#555555"}

# The API's fixtures (a test client, callers' keys), for the end-to-end test.
client = api_fixtures.client
keys = api_fixtures.keys


def _settings(tmp_path, **overrides) -> dict:
    return config.load({"CONVEYOR_VAR_DIR": str(tmp_path / "var")}, overrides)


def _run(params: dict, settings: dict, workdir) -> tuple[dict, base.Context]:
    ctx = base.Context("task-explainer", 1, workdir, settings=settings)
    processor = ExplainerVideoProcessor()
    return processor.run(ExplainerVideoProcessor.load_params(params), ctx), ctx


def _by_name(ctx: base.Context) -> dict[str, dict]:
    return {item["name"]: item for item in ctx.artifacts}


def _image(path) -> Image.Image:
    """Return a PNG's pixels as RGB, with the file closed."""
    with Image.open(path) as image:
        return image.convert("RGB")


def _hues(image: Image.Image) -> set[int]:
    """Return the hue twelfths that strongly saturated colours cover with at least 40 pixels."""
    counts: dict[int, int] = {}
    for count, (red, green, blue) in image.getcolors(maxcolors=1 << 24):
        if max(red, green, blue) - min(red, green, blue) < 80:
            continue  # greys, and the soft edges of anti-aliased text
        hue = int(colorsys.rgb_to_hsv(red / 255, green / 255, blue / 255)[0] * 12) % 12
        counts[hue] = counts.get(hue, 0) + count
    return {hue for hue, count in counts.items() if count >= 40}


def _differing(image: Image.Image, colour: tuple, box: tuple) -> int:
    """Count the pixels in `box` far from `colour`."""
    flat = Image.new("RGB", image.size, colour)
    difference = ImageChops.difference(image, flat).crop(box).convert("L")
    return sum(count for level, count in enumerate(difference.histogram()) if level > 60)


def _mean_difference(one: Image.Image, other: Image.Image, box: tuple) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(one.crop(box), other.crop(box))).mean) / 3


def test_a_given_script_becomes_a_video_as_long_as_its_narration(tmp_path):
    result, ctx = _run({"script": SCRIPT, "aspect": "1:1", **GREY}, _settings(tmp_path), tmp_path / "w")

    names = _by_name(ctx)
    per_scene = [f"scene-{n:02d}.{ext}" for n in (1, 2, 3) for ext in ("png", "wav", "srt")]
    assert sorted(names) == sorted([*per_scene, "video.mp4", "video.srt", "script.json", "thumbnail.png"])
    video = names["video.mp4"]["path"]
    probed = media.probe(video)
    (picture,) = [s for s in probed["streams"] if s["codec_type"] == "video"]
    (sound,) = [s for s in probed["streams"] if s["codec_type"] == "audio"]
    assert (picture["codec_name"], picture["pix_fmt"], picture["width"], picture["height"]) == (
        "h264",
        "yuv420p",
        1080,
        1080,
    )
    assert sound["codec_name"] == "aac"
    level = probes.loudness(video)
    print(f"\nexplainer video narration: {level:.1f} LUFS")
    assert abs(level - ffmpeg.VOICE_LUFS) <= 1.0, "the narration is brought to -16 LUFS"

    narrations = [media.duration(names[f"scene-{n:02d}.wav"]["path"]) for n in (1, 2, 3)]
    length = float(probed["format"]["duration"])
    assert abs(length - sum(narrations)) <= 0.2, (length, narrations)
    assert abs(result["duration"] - length) <= 0.01
    assert [scene["duration"] for scene in result["scenes"]] == pytest.approx(narrations, abs=0.01)

    # Captions: the whole video's cues are each scene's cues moved to where that scene starts.
    starts = [0.0, narrations[0], narrations[0] + narrations[1]]
    whole = captions.read(names["video.srt"]["path"])
    assert abs(whole[-1].end - length) <= 0.2
    moved = []
    for number, (start, scene) in enumerate(zip(starts, SCRIPT, strict=True), 1):
        local = captions.read(names[f"scene-{number:02d}.srt"]["path"])
        assert [cue.text for cue in local] == captions.sentences(scene["narration"], 300)
        assert local[0].start == 0.0 and abs(local[-1].end - narrations[number - 1]) <= 0.02
        moved += [(cue.text, cue.start + start, cue.end + start) for cue in local]
    assert [cue.text for cue in whole] == [text for text, _, _ in moved]
    for cue, (_, start, end) in zip(whole, moved, strict=True):
        assert abs(cue.start - start) <= 0.02 and abs(cue.end - end) <= 0.02
    assert [scene["start"] for scene in result["scenes"]] == pytest.approx(starts, abs=0.02)

    # The slides: the aspect's size; syntax colours in the code, none on the table's slide.
    pictures = [_image(names[f"scene-{n:02d}.png"]["path"]) for n in (1, 2, 3)]
    assert {image.size for image in pictures} == {(1080, 1080)}
    assert len(_hues(pictures[1])) >= 3, _hues(pictures[1])
    assert _hues(pictures[2]) == set() and _hues(pictures[0]) == set()

    # The video shows slide 2 from its scene's start, and burns the captions into the bottom band.
    band = (0, 1080 - slides.caption_band((1080, 1080)), 1080, 1080)
    upper = (0, 0, 1080, band[1])
    before, after = (
        media.frame(video, starts[1] - 0.12, tmp_path / "a.png"),
        media.frame(video, starts[1] + 0.12, tmp_path / "b.png"),
    )
    assert _mean_difference(before, pictures[0], upper) < 2 < _mean_difference(before, pictures[1], upper)
    assert _mean_difference(after, pictures[1], upper) < 2 < _mean_difference(after, pictures[0], upper)
    assert _differing(pictures[1], (255, 255, 255), band) == 0, "the slide leaves the captions' band empty"
    assert _differing(after, (255, 255, 255), band) > 500, "captions are burned in"
    if probes.missing() is None:  # OCR of each cue's frame reads the narration
        read = [
            probes.ocr(
                media.frame(video, (cue.start + cue.end) / 2, tmp_path / "cue.png").crop(band), tmp_path / "c.png"
            )
            for cue in whole
        ]
        accuracy = probes.word_accuracy(" ".join(cue.text for cue in whole), " ".join(read))
        print(f"burned captions, OCR of a frame per cue: {accuracy:.0%} of the narration's words")
        assert accuracy >= 0.95

    stored = json.loads(pathlib.Path(names["script.json"]["path"]).read_text())
    assert stored == {"title": "Circles", "by": "given", "scenes": SCRIPT}
    assert result["script"] == SCRIPT, "the result carries the words, for a quiz to read"
    with Image.open(names["thumbnail.png"]["path"]) as thumb:
        assert thumb.size == (640, 640)
    assert result["script_by"] == "given" and "usage" not in result
    assert (result["aspect"], result["width"], result["height"]) == ("1:1", 1080, 1080)

    percents = [percent for percent, _, _ in ctx.reports]
    assert percents == sorted(percents) and percents[-1] == 100.0
    stages = [stage for _, stage, _ in ctx.reports]
    assert list(dict.fromkeys(stages)) == ["script", "slides", "narrating", "rendering", "concatenating", "done"]


@pytest.mark.parametrize(("aspect", "size"), [("16:9", (1920, 1080)), ("9:16", (1080, 1920))])
def test_each_aspect_has_its_size_and_subtitles_can_be_left_out(aspect, size, tmp_path):
    script = [{"narration": "One short scene.", "slide": "# One\n\n- a single point"}]
    params = {"script": script, "aspect": aspect, "subtitles": False, "theme": "dark"}
    result, ctx = _run(params, _settings(tmp_path), tmp_path / "w")

    names = _by_name(ctx)
    (picture,) = [s for s in media.probe(names["video.mp4"]["path"])["streams"] if s["codec_type"] == "video"]
    assert (picture["width"], picture["height"]) == size
    assert _image(names["scene-01.png"]["path"]).size == size
    frame = media.frame(names["video.mp4"]["path"], 0.5, tmp_path / "f.png")
    bottom = (0, size[1] - slides.caption_band(size), size[0], size[1])
    assert _differing(frame, themes.THEMES["dark"].background, bottom) == 0, "no captions burned in"
    assert captions.read(names["video.srt"]["path"])[0].text == "One short scene.", "the SRT is written anyway"
    assert abs(media.duration(names["video.mp4"]["path"]) - media.duration(names["scene-01.wav"]["path"])) <= 0.2
    assert result["subtitles"] is False


def test_themes_and_colours_paint_the_slide(tmp_path):
    for name, theme in themes.THEMES.items():
        out = slides.render("# Title\n\nSome text.", "1:1", theme, tmp_path / f"{name}.png", captions=True)
        assert _image(out).getpixel((5, 5)) == theme.background
    mine = themes.resolve("dark", background="#102030", accent="#FF0000")
    out = slides.render("# Red title", "1:1", mine, tmp_path / "mine.png", captions=False)
    image = _image(out)
    assert image.getpixel((5, 5)) == (0x10, 0x20, 0x30)
    assert image.getcolors(1 << 24) and max(image.getcolors(1 << 24))[1] == (0x10, 0x20, 0x30)
    assert (255, 0, 0) in {colour for _, colour in image.getcolors(1 << 24)}, "the heading takes the accent"


def test_the_slide_markdown_is_parsed_into_blocks():
    blocks = markup.parse(
        "# Title\n## Sub *title*\n\n- one **bold**\n  - nested\n1. first\n\n"
        "```js\nlet x = 1;\n```\n\n| a | b |\n|---|:-:|\n| 1 | 2 | 3 |\n| 4 |\n\nSome\ntext with [a link](http://x)."
    )

    assert blocks == [
        markup.Heading(1, "Title"),
        markup.Heading(2, "Sub title"),
        markup.Bullets((markup.Item(0, "-", "one bold"), markup.Item(1, "-", "nested"), markup.Item(0, "1.", "first"))),
        markup.Code("js", "let x = 1;"),
        markup.Table(("a", "b"), (("1", "2"), ("4", ""))),
        markup.Paragraph("Some text with a link."),
    ]
    assert markup.inline("snake_case_name and 2 * 3 * 4") == "snake_case_name and 2 * 3 * 4"


def test_text_shrinks_to_fit_and_a_slide_too_full_is_refused(tmp_path):
    full = "# Many points\n\n" + "\n".join(f"- Point {n} says something about the topic" for n in range(16))
    out = slides.render(full, "16:9", themes.THEMES["light"], tmp_path / "full.png", captions=True)
    image = _image(out)
    margin = round(1080 * slides.MARGIN)
    content = ImageChops.difference(image, Image.new("RGB", image.size, (255, 255, 255))).getbbox()
    assert content[1] >= margin - 2 and content[3] <= 1080 - slides.caption_band((1920, 1080)), content
    few = slides.layout(markup.parse("# Few\n\n- Point"), (1920, 1080), themes.THEMES["light"])
    many = slides.layout(markup.parse(full), (1920, 1080), themes.THEMES["light"])
    assert max(op.font.size for op in many if hasattr(op, "font")) < max(
        op.font.size for op in few if hasattr(op, "font")
    )

    overfull = "# Too much\n\n" + "\n".join(f"- Point {n}" for n in range(120))
    script = [SCRIPT[0], {"narration": "Too much.", "slide": overfull}]
    with pytest.raises(errors.PermanentError, match="scene 2: the slide holds too much"):
        _run({"script": script, "aspect": "1:1"}, _settings(tmp_path), tmp_path / "w2")


def _llm_scene(number: int) -> dict:
    return {"narration": f"Scene {number} explains one idea.", "slide": f"# Idea {number}\n\n- a point\n- another"}


def test_a_prompt_is_scripted_by_the_llm_with_one_re_ask(tmp_path):
    answers = [
        # First a slide without a heading, which the type's own check refuses.
        {"title": "Ideas", "scenes": [_llm_scene(1), {"narration": "Two.", "slide": "- no heading here"}]},
        {"title": "Ideas", "scenes": [_llm_scene(1), _llm_scene(2)]},
    ]
    with openai_server.OpenAIServer(chat=lambda body: answers.pop(0)) as fake:
        params = {"prompt": "Explain two ideas", "scenes": 2, "aspect": "1:1", "subtitles": False}
        result, ctx = _run(params, _settings(tmp_path, **fake.settings()), tmp_path / "w")
        asked = fake.requests_to(CHAT)

    assert len(asked) == 2
    system = asked[0].json["messages"][0]["content"]
    assert "exactly 2 scenes" in system and "1:1" in system
    assert asked[0].json["messages"][1]["content"].endswith("Explain two ideas")
    reask = asked[1].json["messages"][-1]["content"]
    assert "scene 2: the slide must start with a `#` heading" in reask
    assert result["script_by"] == "llm" and result["title"] == "Ideas"
    assert result["usage"]["asks"] == 2 and result["usage"]["total_tokens"] > 0
    names = _by_name(ctx)
    stored = json.loads(pathlib.Path(names["script.json"]["path"]).read_text())
    assert stored == {"title": "Ideas", "by": "llm", "scenes": [_llm_scene(1), _llm_scene(2)]}
    narrations = [media.duration(names[f"scene-{n:02d}.wav"]["path"]) for n in (1, 2)]
    assert abs(media.duration(names["video.mp4"]["path"]) - sum(narrations)) <= 0.2


def test_a_wrong_scene_count_is_asked_again_once_then_fails(tmp_path):
    one_scene = {"title": "Short", "scenes": [_llm_scene(1)]}
    with openai_server.OpenAIServer(chat=lambda body: one_scene) as fake:
        with pytest.raises(errors.PermanentError, match="exactly 3 scenes, not 1") as failed:
            _run({"prompt": "Explain three ideas"}, _settings(tmp_path, **fake.settings()), tmp_path / "w")
        asked = fake.requests_to(CHAT)

    assert "invalid twice" in str(failed.value)
    assert len(asked) == 2, "one re-ask, no more"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"prompt": "Explain otters"}, "from a prompt needs the LLM: OPENAI_API_KEY is not set"),
        ({"script": SCRIPT, "provider": "elevenlabs"}, "with elevenlabs needs its key: ELEVENLABS_API_KEY is not set"),
    ],
)
def test_a_run_needing_a_missing_key_fails_at_once_saying_which(params, message, tmp_path):
    ctx = base.Context("task-explainer", 1, tmp_path / "w", settings=_settings(tmp_path))

    with pytest.raises(errors.PermanentError, match=message):
        ExplainerVideoProcessor().run(ExplainerVideoProcessor.load_params(params), ctx)

    assert ctx.artifacts == [] and ctx.reports == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"prompt": "x", "script": SCRIPT}, "prompt"),
        ({}, "prompt"),
        ({"script": []}, "script"),
        ({"script": [{"narration": " ", "slide": "# A"}]}, "script"),
        ({"prompt": "x", "aspect": "4:3"}, "aspect"),
        ({"prompt": "x", "scenes": 51}, "scenes"),
        ({"prompt": "x", "accent": "red"}, "accent"),
        ({"prompt": "x", "theme": "neon"}, "theme"),
        ({"prompt": "x", "provider": "piper"}, "provider"),
    ],
)
def test_bad_params_are_refused_naming_the_field(params, field):
    with pytest.raises(errors.InvalidParams) as refused:
        ExplainerVideoProcessor.load_params(params)

    assert list(refused.value.errors) == [field]


class _CancelAt(base.Context):
    """Tells when the run first reports a given stage."""

    def __init__(self, stage: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stage = stage
        self.reached = threading.Event()

    def progress(self, percent, stage=None, message=None):
        if stage == self.stage:
            self.reached.set()
        super().progress(percent, stage, message)


@pytest.mark.parametrize("stage", ["narrating", "rendering"])
def test_cancel_during_narration_or_rendering_stops_within_two_seconds(stage, tmp_path):
    long_text = "This scene goes on for a while so that there is time to cancel it. " * 6
    script = [{"narration": long_text, "slide": "# Long"}, {"narration": long_text, "slide": "# Longer"}]
    params = ExplainerVideoProcessor.load_params({"script": script, "aspect": "1:1"})
    ctx = _CancelAt(stage, "task-explainer", 1, tmp_path / "w", settings=_settings(tmp_path))
    outcome = {}

    def work():
        try:
            ExplainerVideoProcessor().run(params, ctx)
        except BaseException as exc:  # kept for the test to judge
            outcome["error"] = exc

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    assert ctx.reached.wait(30), f"the run never reached {stage}"
    # Cancel while espeak-ng or ffmpeg is at work for that stage.
    deadline = time.monotonic() + 10
    while not ctx.tracked() and time.monotonic() < deadline:
        time.sleep(0.002)
    assert ctx.tracked() and ctx.reports[-1][1] == stage, "a child process is at work in the stage"
    cancelled_at = time.monotonic()
    ctx.cancel()
    worker.join(5)

    assert not worker.is_alive() and time.monotonic() - cancelled_at < 2.0
    assert isinstance(outcome.get("error"), errors.Cancelled), outcome
    assert ctx.tracked() == [], "no child process is left behind"
    assert "video.mp4" not in _by_name(ctx)


def test_explainer_through_the_api_and_a_worker(backend, client, keys, processes, tmp_path):
    member = api_fixtures.bearer(keys["a_member"])
    types = {item["type"]: item for item in client.get("/api/task-types", headers=member).get_json()}
    assert types["explainer_video"]["available"] is True
    assert types["explainer_video"]["endpoint"] == "/api/video/generate"
    processes.worker("cpu", concurrency=1)
    params = {"script": SCRIPT[:2], "aspect": "1:1"}
    submitted = client.post("/api/video/generate", json={"params": params}, headers=member)
    assert submitted.status_code == 202, submitted.get_json()
    task_id = uuid.UUID(submitted.get_json()["task_id"])

    row = helpers.wait_status(task_id, ("succeeded", "failed"), timeout=90)
    assert row.status == "succeeded", row.error
    listed = client.get(f"/api/tasks/{task_id}/artifacts", headers=member).get_json()
    by_name = {item["name"]: item for item in listed}
    assert sorted(by_name) == sorted(
        [f"scene-{n:02d}.{ext}" for n in (1, 2) for ext in ("png", "wav", "srt")]
        + ["video.mp4", "video.srt", "script.json", "thumbnail.png"]
    )
    assert by_name["video.mp4"]["kind"] == "video"

    video = tmp_path / "downloaded.mp4"
    with client.get(by_name["video.mp4"]["url"], headers=member) as answer:
        assert answer.status_code == 200 and answer.mimetype == "video/mp4"
        video.write_bytes(answer.data)
    kinds = sorted(stream["codec_type"] for stream in media.probe(video)["streams"])
    assert kinds == ["audio", "video"]
    assert abs(media.duration(video) - row.result["duration"]) <= 0.05
    assert abs(row.result["duration"] - sum(scene["duration"] for scene in row.result["scenes"])) <= 0.2


# Slides as a script gives them: a title alone, a few short points, a title and a paragraph.
LAYOUT_SLIDES = {
    "title": "# Why otters hold hands",
    "few points": "# Circles\n\n- Round\n  - no corners\n- Common",
    "points": "# Circles\n\n- Round shapes have no corners\n- The area grows with the square of the radius\n"
    "- Circles appear in wheels, coins and clocks",
    "paragraph": "# Area\n\nThe area of a circle is pi times the radius squared.",
}


@pytest.mark.skipif(probes.missing() is not None, reason=str(probes.missing()))
@pytest.mark.parametrize("aspect", ["16:9", "9:16", "1:1"])
def test_probe_slides_fill_the_frame_centred_inside_the_margins_and_read_back(aspect, tmp_path):
    """Each slide's content covers at least 12% of the room above the captions (a title alone
    on a portrait frame; a few points much more), its centre is near the room's centre, nothing
    crosses the margins, and OCR reads at least 95% of the slides' words."""
    theme = themes.THEMES["light"]
    width, height = slides.SIZES[aspect]
    margin = round(min(width, height) * slides.MARGIN)
    room_height = height - slides.caption_band((width, height))
    shown, read = [], []
    for name, text in LAYOUT_SLIDES.items():
        image = _image(slides.render(text, aspect, theme, tmp_path / "slide.png", captions=True))
        left, top, right, bottom = ImageChops.difference(
            image, Image.new("RGB", image.size, theme.background)
        ).getbbox()
        share = (right - left) * (bottom - top) / (width * room_height)
        centre = ((left + right) / 2 / width, (top + bottom) / 2 / room_height)
        shown.append(text)
        read.append(probes.ocr(image, tmp_path / "ocr.png"))
        accuracy = probes.word_accuracy(text, read[-1])
        print(f"\n{aspect} {name}: covers {share:.0%}, centre at {centre[0]:.2f}, {centre[1]:.2f}; OCR {accuracy:.0%}")
        assert share >= 0.12, f"{name}: the content covers {share:.0%} of the frame"
        assert abs(centre[0] - 0.5) <= 0.05 and abs(centre[1] - 0.5) <= 0.08, f"{name}: off centre {centre}"
        assert left >= margin - 2 and right <= width - margin + 2 and top >= margin - 2, (name, left, top, right)
        assert bottom <= room_height, f"{name}: into the captions' band"
    accuracy = probes.word_accuracy("\n".join(shown), "\n".join(read))
    print(f"{aspect}: OCR read {accuracy:.0%} of the slides' words")
    assert accuracy >= 0.95


@pytest.mark.skipif(probes.missing() is not None, reason=str(probes.missing()))
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_probe_burned_captions_read_back_at_half_size(theme, tmp_path):
    """Captions burned into a 1920x1080 scene, watched at 960x540: OCR of the caption band
    reads at least 95% of the cue's words on a light slide and on a dark one."""
    text = "The area of a circle is pi times the radius squared, which grows quickly."
    ctx = base.Context("task-captions", 1, tmp_path / "w", settings=_settings(tmp_path))
    slide = slides.render("# Area", "16:9", themes.THEMES[theme], tmp_path / "slide.png", captions=True)
    clip = render.scene_clip(slide, 10, [captions.Cue(0.0, 5.0, text)], tmp_path / "clip.mp4", ctx)
    frame = media.frame(clip, 0.1, tmp_path / "frame.png").resize((960, 540), Image.LANCZOS)
    band = frame.crop((0, 540 - slides.caption_band((960, 540)), 960, 540))
    seen = probes.ocr(band, tmp_path / "band.png")
    accuracy = probes.word_accuracy(text, seen)
    print(f"\n{theme} slide, captions at 960x540: OCR read {accuracy:.0%} ({seen.strip()!r})")
    assert accuracy >= 0.95
