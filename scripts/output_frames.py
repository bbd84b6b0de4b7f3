"""Draw docs/frames/: one picture of each keyless type's real output, for docs/processors.md.

Runs each processor in memory (no database, no workers, no keys) on a small fixed input and
saves a frame of what it made, 960 px wide: a moment of each video with its captions, the
first page of a document, the spectrogram of a voice. story, quiz and image need an LLM or
image model and are not drawn. Run `python scripts/output_frames.py`, then commit the pictures.
"""

import pathlib
import shutil
import subprocess
import sys
import tempfile
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from PIL import Image

from app import config
from processors import animated_lesson, base, documentation, explainer_video, video_clip, voice
from processors.course_video import join

OUT = pathlib.Path(__file__).resolve().parent.parent / "docs" / "frames"
WIDTH = 960
SCRIPT = [
    {"narration": "Circles are everywhere. Let us measure one.", "slide": "# Circles\n\n- Round\n- No corners"},
    {
        "narration": "The area is pi times the radius squared.",
        "slide": "## Area\n\n```python\narea = math.pi * radius ** 2\n```\n\n- grows with the square",
    },
]
SECTIONS = [
    {
        "title": "Finishing a task",
        "narration": "A worker ends a task by storing its result.",
        "blocks": [
            {"type": "heading", "content": "Finishing a task"},
            {
                "type": "code",
                "content": "def finish(queue, task, result):\n    queue.done(task, result)\n    return result",
                "language": "python",
            },
        ],
    }
]
DOCUMENT = (
    "# The Otter Tracker Handbook\n\nA guide for volunteers.\n\n## Recording a sighting\n\n"
    "Tap the otter button as soon as you see one. The app notes the time and the place at once.\n\n"
    "## Exporting the data\n\nCoordinators export the season's records as a CSV file.\n"
)
SPEECH = "Welcome to the clip factory. Today we cut long videos into short ones. Every clip gets captions."


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="conveyor-frames-") as folder:
        work = pathlib.Path(folder)
        for name, draw in DRAWINGS.items():
            picture = draw(work / name)
            _save(picture, OUT / f"{name}.png")
            print(f"{OUT / name}.png")


def _context(folder: pathlib.Path, **extra) -> base.Context:
    settings = config.load({"CONVEYOR_VAR_DIR": str(folder / "var")})
    return base.Context(f"frames-{folder.name}", 1, folder / "work", settings=settings, **extra)


def _run(processor, params: dict, ctx: base.Context) -> dict:
    return processor.run(processor.load_params(params), ctx)


def _file(ctx: base.Context, name: str) -> pathlib.Path:
    return pathlib.Path(next(item["path"] for item in ctx.artifacts if item["name"] == name))


def _frame(video: pathlib.Path, seconds: float, out: pathlib.Path) -> Image.Image:
    argv = ["ffmpeg", "-v", "error", "-y", "-ss", f"{seconds:.3f}", "-i", str(video), "-frames:v", "1", str(out)]
    subprocess.run(argv, check=True, timeout=60)
    return Image.open(out).convert("RGB")


def explainer(folder: pathlib.Path) -> Image.Image:
    ctx = _context(folder)
    result = _run(explainer_video.ExplainerVideoProcessor(), {"script": SCRIPT, "aspect": "16:9"}, ctx)
    second = result["scenes"][1]
    return _frame(_file(ctx, "video.mp4"), second["start"] + second["duration"] / 2, folder / "f.png")


def lesson(folder: pathlib.Path) -> Image.Image:
    ctx = _context(folder)
    result = _run(animated_lesson.AnimatedLessonProcessor(), {"sections": SECTIONS, "resolution": 720}, ctx)
    return _frame(_file(ctx, "lesson.mp4"), result["duration"] - 0.2, folder / "f.png")


def course(folder: pathlib.Path) -> Image.Image:
    ctx = _context(folder)
    card = join.title_card("Otters", ["Life in water", "Food and tools"], "16:9", ctx.workdir / "title.mp4", ctx)
    return _frame(card, 1.0, folder / "f.png")


def clip(folder: pathlib.Path) -> Image.Image:
    source = _talk(folder / "talk.mp4")
    upload = str(uuid.uuid4())
    ctx = _context(folder, uploads={upload: source})
    params = {"source": {"upload_id": upload}, "max_clips": 1, "min_s": 3, "max_s": 5, "aspect": "9:16"}
    result = _run(video_clip.VideoClipProcessor(), params, ctx)
    first = result["clips"][0]
    return _frame(_file(ctx, first["name"]), first["duration"] / 2, folder / "f.png")


def document(folder: pathlib.Path) -> Image.Image:
    ctx = _context(folder)
    _run(documentation.DocumentationProcessor(), {"content": DOCUMENT, "as_is": True, "format": "pdf"}, ctx)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", str(_file(ctx, "document.pdf")), str(folder / "page")],
        check=True,
        timeout=60,
    )
    return Image.open(next(folder.glob("page*.png"))).convert("RGB")


def speech(folder: pathlib.Path) -> Image.Image:
    ctx = _context(folder)
    _run(voice.VoiceProcessor(), {"text": SPEECH, "format": "wav"}, ctx)
    out = folder / "spectrum.png"
    graph = "showspectrumpic=s=960x360:legend=1:color=intensity"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(_file(ctx, "voice.wav")), "-lavfi", graph, str(out)],
        check=True,
        timeout=60,
    )
    return Image.open(out).convert("RGB")


def _talk(path: pathlib.Path) -> pathlib.Path:
    """A 12 s test-pattern video with espeak-ng speech and matching embedded subtitles."""
    path.parent.mkdir(parents=True, exist_ok=True)
    wav = path.with_suffix(".wav")
    subprocess.run(["espeak-ng", "-w", str(wav), SPEECH], check=True, timeout=60)
    sentences = [s.strip() + "." for s in SPEECH.split(".") if s.strip()]
    srt = path.with_suffix(".srt")
    srt.write_text(
        "".join(
            f"{n}\n00:00:{n * 3 - 3:02d},000 --> 00:00:{n * 3:02d},000\n{s}\n\n" for n, s in enumerate(sentences, 1)
        )
    )
    argv = [
        "ffmpeg",
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=1280x720:rate=25",
        "-i",
        str(wav),
        "-i",
        str(srt),
    ]
    argv += ["-map", "0:v", "-map", "1:a", "-map", "2:s", "-c:s", "mov_text", "-c:v", "libx264", "-preset", "ultrafast"]
    argv += ["-pix_fmt", "yuv420p", "-af", "apad", "-c:a", "aac", "-t", "12", str(path)]
    subprocess.run(argv, check=True, timeout=120)
    return path


def _save(picture: Image.Image, out: pathlib.Path) -> None:
    scale = WIDTH / max(picture.size)
    if scale < 1:
        picture = picture.resize((round(picture.width * scale), round(picture.height * scale)), Image.LANCZOS)
    picture.save(out, optimize=True)


DRAWINGS = {
    "explainer_video": explainer,
    "animated_lesson": lesson,
    "course_video": course,
    "video_clip": clip,
    "documentation": document,
    "voice": speech,
}

if __name__ == "__main__":
    if shutil.which("ffmpeg") is None or shutil.which("espeak-ng") is None:
        sys.exit("needs ffmpeg, espeak-ng and pdftoppm (apt install ffmpeg espeak-ng poppler-utils)")
    main()
