"""`animated_lesson`: a prompt or ready sections to a lesson a browser player can play, and its
mp4 render with the blocks animated frame by frame.

Stages: sections, by the LLM unless given (10); narration per section with captions timed by the
measured audio (50); rendering, frames drawn with Pillow and piped into ffmpeg (95); done.
Artifacts: per section its narration (`section-NN.wav`) and captions (`section-NN.srt`,
`section-NN.vtt`, times from the section's start); `lesson.json` (see `player`), `lesson.mp4`
and `lesson.srt` (the whole video's captions).

A section lasts as long as its narration, or longer (silence) until its last animation has
ended and been held a second (`lesson.section_length`); the video lasts the sum of the
sections. When each block appears within its section is `lesson.schedule`'s rule.

With given sections it needs no key at all (espeak-ng speaks by default); a prompt needs the
LLM (OPENAI_API_KEY), and a task that needs a key it lacks fails at once, saying which.

Modules: `lesson` (the sections, given or written by the LLM, and their timing), `animate`
(frames, drawn with the explainer's slide layout, themes and fonts), `render` (ffmpeg),
`player` (lesson.json and its JSON Schema). Narration is `processors.voice.narrate`.
"""

import json
import pathlib

import marshmallow
from marshmallow import validate

from processors import base, captions, providers, voice
from processors.animated_lesson import animate, lesson, player, render
from processors.explainer_video import render as slide_render
from processors.explainer_video import themes
from processors.policy import Policy
from processors.providers import ffmpeg

MAX_SECTIONS = 25
RESOLUTIONS = (360, 480, 720, 1080)
CAPTION_FILES = (("srt", captions.to_srt, "application/x-subrip"), ("vtt", captions.to_vtt, "text/vtt"))
NOT_BLANK = validate.Regexp(r"\s*\S", error="must not be blank")


class BlockParams(marshmallow.Schema):
    type = marshmallow.fields.String(required=True, validate=validate.OneOf(lesson.BLOCK_TYPES))
    content = marshmallow.fields.String(
        required=True,
        validate=[validate.Length(min=1, max=3_000), NOT_BLANK],
        metadata={"description": "the text; bullets: one point a line; code: the source"},
    )
    language = marshmallow.fields.String(
        load_default=None, validate=validate.Length(max=40), metadata={"description": "code only: its language"}
    )
    animation = marshmallow.fields.String(
        load_default=None,
        validate=validate.OneOf(lesson.ANIMATIONS),
        metadata={"description": "typing, fade or slide (default: typing for code, slide for bullets, else fade)"},
    )
    duration = marshmallow.fields.Float(
        load_default=None,
        validate=validate.Range(min=0.1, max=120),
        metadata={"description": "seconds the animation takes (default: by type and length, within its share)"},
    )


class SectionParams(marshmallow.Schema):
    title = marshmallow.fields.String(required=True, validate=[validate.Length(min=1, max=200), NOT_BLANK])
    narration = marshmallow.fields.String(
        required=True,
        validate=[validate.Length(min=1, max=lesson.MAX_NARRATION), NOT_BLANK],
        metadata={"description": "what the narrator says while the section is shown"},
    )
    blocks = marshmallow.fields.List(
        marshmallow.fields.Nested(BlockParams), required=True, validate=validate.Length(min=1, max=lesson.MAX_BLOCKS)
    )


class Params(voice.NarrationParams):
    title = marshmallow.fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    prompt = marshmallow.fields.String(
        validate=[validate.Length(min=1, max=4_000), NOT_BLANK],
        metadata={"description": "the topic; the LLM writes the sections (needs OPENAI_API_KEY)"},
    )
    sections = marshmallow.fields.List(
        marshmallow.fields.Nested(SectionParams),
        validate=validate.Length(min=1, max=MAX_SECTIONS),
        metadata={"description": "ready sections (title, narration, blocks); runs with no key at all"},
    )
    scenes = marshmallow.fields.Integer(
        load_default=5,
        validate=validate.Range(min=1, max=MAX_SECTIONS),
        metadata={"description": "how many sections the LLM writes (given sections are their own count)"},
    )
    aspect = marshmallow.fields.String(load_default="16:9", validate=validate.OneOf(("16:9", "9:16", "1:1")))
    resolution = marshmallow.fields.Integer(
        load_default=720,
        validate=validate.OneOf(RESOLUTIONS),
        metadata={"description": "the video frame's shorter side in pixels"},
    )
    subtitles = marshmallow.fields.Boolean(
        load_default=True, metadata={"description": "burn captions into the video (SRT/VTT files are always written)"}
    )
    theme = marshmallow.fields.String(load_default=themes.DEFAULT, validate=validate.OneOf(tuple(themes.THEMES)))
    language = marshmallow.fields.String(
        load_default=None,
        validate=validate.Regexp(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"),
        metadata={"description": "language of the lesson; with espeak and no voice it picks the voice"},
    )

    @marshmallow.validates_schema
    def _prompt_or_sections(self, data: dict, **kwargs) -> None:
        if ("prompt" in data) == ("sections" in data):
            raise marshmallow.ValidationError("give exactly one of prompt and sections", "prompt")


class AnimatedLessonProcessor(base.Processor):
    """Sections, narration and captions per section, lesson.json, and an animated mp4."""

    type = "animated_lesson"
    description = (
        "A narrated lesson of animated blocks (typing, fade, slide): lesson.json for a browser player, "
        "audio and captions per section, and an mp4 render; from ready sections (no key needed: espeak-ng "
        "narrates) or from a prompt (needs the LLM: OPENAI_API_KEY)."
    )
    Params = Params
    # Needed by every run; `needs` adds the LLM for a prompt and a paid voice's key.
    providers = ("ffmpeg", "ffprobe", "espeak")
    optional_providers = ("openai", "elevenlabs")
    policy = Policy(max_attempts=3, backoff_base=10, soft_timeout=3600, hard_timeout=3660, pool="cpu", estimate=120)

    @classmethod
    def needs(cls, params: dict) -> dict[str, tuple[str, str]]:
        """The programs always; the LLM for a prompt, a paid voice's key when asked for."""
        needs = {**super().needs(params), **providers.voice_key(params["provider"])}
        if params.get("prompt"):
            needs["openai"] = (
                "writing the lesson from a prompt needs the LLM",
                " (give ready `sections` to run without one)",
            )
        return needs

    def run(self, params: dict, ctx: base.Context) -> dict:
        providers.require(self.needs(params), ctx.settings)  # fail at once, saying which
        size = animate.frame_size(params["aspect"], params["resolution"])
        taught = self._lesson(params, size, ctx)
        spoken = self._narrate(taught, params, ctx)
        timings = [lesson.schedule(s.blocks, n.duration) for s, n in zip(taught.sections, spoken, strict=True)]
        lengths = [lesson.section_length(t, n.duration) for t, n in zip(timings, spoken, strict=True)]
        theme = themes.THEMES[params["theme"]]
        painters = [
            animate.Painter(s, t, size, theme, params["subtitles"])
            for s, t in zip(taught.sections, timings, strict=True)
        ]
        video = self._video(painters, spoken, lengths, size, params, ctx)
        duration = ffmpeg.probe(video).duration
        stored = ctx.artifact(video, "video", "video/mp4", {"duration": duration, "sections": len(spoken)})
        ctx.meter("media_seconds", duration)
        entries = self._entries(taught, lengths, timings, painters)
        frame = {
            "language": params["language"],
            "aspect": params["aspect"],
            "width": size[0],
            "height": size[1],
            "fps": animate.FPS,
            "duration": round(sum(lengths), 3),
            "video": video.name,
        }
        document = player.document(taught, entries, frame, params["theme"], theme)
        listing = ctx.workdir / "lesson.json"
        listing.write_text(json.dumps(document, indent=1, ensure_ascii=False), encoding="utf-8")
        ctx.artifact(listing, "lesson", "application/json", {"by": taught.by, "sections": len(entries)})
        ctx.progress(100, "done", f"{len(entries)} sections")
        result = {
            "title": taught.title,
            "sections_by": taught.by,
            "duration": duration,
            "aspect": params["aspect"],
            "width": size[0],
            "height": size[1],
            "video": video.name,
            "artifact": stored.get("id"),
            "lesson": listing.name,
            "sections": [_section_result(entry) for entry in entries],
        }
        if taught.usage is not None:
            result["usage"] = taught.usage
        return result

    def _lesson(self, params: dict, size, ctx: base.Context) -> lesson.Lesson:
        def fits(section: lesson.Section) -> str | None:
            return animate.problem(section, size, params["subtitles"])

        if params.get("sections"):
            taught = lesson.given(params, fits)
            ctx.progress(10, "sections", f"given: {len(taught.sections)} sections")
            return taught
        ctx.progress(2, "sections", "asking the LLM")
        taught = lesson.written(params, ctx, fits)
        ctx.progress(10, "sections", f"written: {len(taught.sections)} sections")
        return taught

    def _narrate(self, taught: lesson.Lesson, params: dict, ctx: base.Context) -> list[voice.Narration]:
        provider = params["provider"]
        speaker = params["voice"] or voice.default_voice(provider, params["language"])
        spoken, total = [], len(taught.sections)
        for number, section in enumerate(taught.sections, 1):

            def step(stage: str, done: int, pieces: int, number: int = number) -> None:
                share = (number - 1 + done / pieces) / total
                ctx.progress(10 + 40 * share, "narrating", f"section {number} of {total}")

            folder = ctx.workdir / _stem(number)
            said = voice.narrate(section.narration, provider, speaker, ctx, folder, rate=params["rate"], on_step=step)
            spoken.append(self._store_narration(number, said, ctx))
        return spoken

    def _store_narration(self, number: int, said: voice.Narration, ctx: base.Context) -> voice.Narration:
        audio = said.audio.rename(ctx.workdir / f"{_stem(number)}.wav")
        meta = {"section": number, "duration": round(said.duration, 3)}
        ctx.artifact(audio, "audio", "audio/wav", meta)
        for suffix, write, mime in (
            ("srt", captions.to_srt, "application/x-subrip"),
            ("vtt", captions.to_vtt, "text/vtt"),
        ):
            path = ctx.workdir / f"{_stem(number)}.{suffix}"
            path.write_text(write(said.cues), encoding="utf-8")
            ctx.artifact(path, "captions", mime, {**meta, "format": suffix, "cues": len(said.cues)})
        return voice.Narration(audio, said.cues, said.duration)

    def _video(self, painters, spoken, lengths, size, params: dict, ctx: base.Context) -> pathlib.Path:
        counts = slide_render.frame_counts(lengths, animate.FPS)
        total = sum(counts)
        ctx.progress(50, "rendering", f"{total} frames")
        narration = ffmpeg.concat_audio([n.audio for n in spoken], ctx.workdir / "narration.wav", ctx, lengths)
        whole = _whole_cues(spoken, lengths)
        srt = ctx.workdir / "lesson.srt"
        srt.write_text(captions.to_srt(whole), encoding="utf-8")
        frames = (data for painter, count in zip(painters, counts, strict=True) for data in painter.frames(count))
        video = render.encode(
            frames,
            total,
            size,
            animate.FPS,
            narration,
            ctx.workdir / "lesson.mp4",
            ctx,
            cues=whole if params["subtitles"] else None,
            on_frame=lambda done: ctx.progress(50 + 45 * done / total, "rendering", f"frame {done} of {total}"),
        )
        ctx.artifact(srt, "captions", "application/x-subrip", {"format": "srt", "scope": "video"})
        return video

    def _entries(self, taught: lesson.Lesson, lengths, timings, painters) -> list[dict]:
        entries, start = [], 0.0
        for number, (section, length, timing, painter) in enumerate(
            zip(taught.sections, lengths, timings, painters, strict=True), 1
        ):
            blocks = [player.block_entry(*item) for item in zip(section.blocks, timing, painter.boxes(), strict=True)]
            stem = _stem(number)
            files = {"audio": f"{stem}.wav", "srt": f"{stem}.srt", "vtt": f"{stem}.vtt"}
            entries.append(player.section_entry(number, section, start, length, files, blocks))
            start += length
        return entries


def _stem(number: int) -> str:
    return f"section-{number:02d}"


def _whole_cues(spoken: list[voice.Narration], lengths: list[float]) -> list[captions.Cue]:
    cues, start = [], 0.0
    for narration, length in zip(spoken, lengths, strict=True):
        cues += [captions.Cue(round(c.start + start, 3), round(c.end + start, 3), c.text) for c in narration.cues]
        start += length
    return cues


def _section_result(entry: dict) -> dict:
    keys = ("index", "title", "start", "duration", "audio", "captions")
    return {**{key: entry[key] for key in keys}, "blocks": len(entry["blocks"])}
