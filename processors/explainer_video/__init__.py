"""`explainer_video`: a prompt or a ready script to a narrated slide video.

Stages: script, by the LLM unless given (10); slides drawn to PNG (30); narration per scene with
captions timed by the measured audio (80); a clip per scene (90); joining (100). Artifacts:
per scene its slide (`scene-NN.png`), narration (`scene-NN.wav`) and captions (`scene-NN.srt`,
times from the scene's start); then `video.mp4`, `video.srt` (the whole video's captions, each
scene's cues offset by its start), `script.json` and `thumbnail.png`.

With a given script it needs no key at all (espeak-ng speaks by default); a prompt needs the
LLM (OPENAI_API_KEY), and a task that needs a key it lacks fails at once, saying which.

Modules: `script` (given or written by the LLM), `markup` (the slide markdown), `slides` and
`highlight` (drawing with Pillow, code coloured by pygments), `themes`, `render` (ffmpeg).
Narration is `processors.voice.narrate`, the `voice` type's own speaking and timing.
"""

import json
import pathlib

import marshmallow
from marshmallow import validate

from processors import base, captions, errors, providers, voice
from processors.explainer_video import render, script, slides, themes
from processors.policy import Policy
from processors.providers import ffmpeg

MAX_SCENES = 50
COLOUR = validate.Regexp(r"^#[0-9A-Fa-f]{6}$", error="must be a colour as #RRGGBB")
NOT_BLANK = validate.Regexp(r"\s*\S", error="must not be blank")


class SceneParams(marshmallow.Schema):
    narration = marshmallow.fields.String(
        required=True,
        validate=[validate.Length(min=1, max=script.MAX_NARRATION), NOT_BLANK],
        metadata={"description": "what the narrator says while the slide is shown"},
    )
    slide = marshmallow.fields.String(
        required=True,
        validate=[validate.Length(min=1, max=5_000), NOT_BLANK],
        metadata={"description": "the slide as markdown: # headings, - bullets, ``` code, | tables"},
    )


class Params(voice.NarrationParams):
    prompt = marshmallow.fields.String(
        validate=[validate.Length(min=1, max=4_000), NOT_BLANK],
        metadata={"description": "the topic; the LLM writes the script (needs OPENAI_API_KEY)"},
    )
    script = marshmallow.fields.List(
        marshmallow.fields.Nested(SceneParams),
        validate=validate.Length(min=1, max=MAX_SCENES),
        metadata={"description": "a ready script, scene by scene; runs with no key at all"},
    )
    title = marshmallow.fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    scenes = marshmallow.fields.Integer(
        load_default=3,
        validate=validate.Range(min=1, max=MAX_SCENES),
        metadata={"description": "how many scenes the LLM writes (a given script has its own)"},
    )
    aspect = marshmallow.fields.String(load_default="16:9", validate=validate.OneOf(tuple(slides.SIZES)))
    subtitles = marshmallow.fields.Boolean(
        load_default=True, metadata={"description": "burn captions into the video (SRT files are always written)"}
    )
    theme = marshmallow.fields.String(load_default=themes.DEFAULT, validate=validate.OneOf(tuple(themes.THEMES)))
    background = marshmallow.fields.String(load_default=None, validate=COLOUR)
    foreground = marshmallow.fields.String(load_default=None, validate=COLOUR)
    accent = marshmallow.fields.String(load_default=None, validate=COLOUR)
    language = marshmallow.fields.String(
        load_default=None,
        validate=validate.Regexp(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"),
        metadata={"description": "language of the script; with espeak and no voice it picks the voice"},
    )

    @marshmallow.validates_schema
    def _prompt_or_script(self, data: dict, **kwargs) -> None:
        if ("prompt" in data) == ("script" in data):
            raise marshmallow.ValidationError("give exactly one of prompt and script", "prompt")


class ExplainerVideoProcessor(base.Processor):
    """Script, slides, narration and captions per scene, a clip per scene, one joined video."""

    type = "explainer_video"
    endpoint = "video"
    description = (
        "A narrated slide video (16:9, 9:16 or 1:1) with captions, from a ready script (no key needed: "
        "espeak-ng narrates) or from a prompt (needs the LLM: OPENAI_API_KEY)."
    )
    Params = Params
    # Needed by every run; `needs` adds the LLM for a prompt and a paid voice's key.
    providers = ("ffmpeg", "ffprobe", "espeak")
    optional_providers = ("openai",)  # for a prompt; a given script needs no key
    policy = Policy(max_attempts=3, backoff_base=10, soft_timeout=3600, hard_timeout=3660, pool="cpu", estimate=120)

    @classmethod
    def needs(cls, params: dict) -> dict[str, tuple[str, str]]:
        """The programs always; the LLM for a prompt, a paid voice's key when asked for."""
        needs = {**super().needs(params), **providers.voice_key(params["provider"])}
        if params.get("prompt"):
            needs["openai"] = (
                "writing the script from a prompt needs the LLM",
                " (give a ready `script` to run without one)",
            )
        return needs

    def run(self, params: dict, ctx: base.Context) -> dict:
        providers.require(self.needs(params), ctx.settings)  # fail at once, saying which
        theme = themes.resolve(params["theme"], params["background"], params["foreground"], params["accent"])
        written = self._script(params, ctx)
        pictures = self._slides(written, theme, params, ctx)
        spoken = self._narrate(written, params, ctx)
        video, srt = self._video(pictures, spoken, params, ctx)
        stored = self._finish(written, pictures[0], video, srt, ctx)
        starts = _starts([narration.duration for narration in spoken])
        ctx.progress(100, "done", f"{len(written.scenes)} scenes")
        result = {
            "title": written.title,
            "script_by": written.by,
            "duration": stored["duration"],
            "aspect": params["aspect"],
            "width": slides.SIZES[params["aspect"]][0],
            "height": slides.SIZES[params["aspect"]][1],
            "subtitles": params["subtitles"],
            "video": video.name,
            "artifact": stored["id"],
            "scenes": [_scene_result(n, start, spoken[n - 1]) for n, start in enumerate(starts, 1)],
            # The scenes' words, so a quiz (or anything else reading this result) can use them.
            "script": [dict(scene) for scene in written.scenes],
        }
        if written.usage is not None:
            result["usage"] = written.usage
        return result

    def _script(self, params: dict, ctx: base.Context) -> script.Script:
        if params.get("script"):
            ctx.progress(10, "script", f"given: {len(params['script'])} scenes")
            return script.given(params)
        ctx.progress(2, "script", "asking the LLM")
        written = script.written(params, ctx)
        ctx.progress(10, "script", f"written: {len(written.scenes)} scenes")
        return written

    def _slides(self, written: script.Script, theme, params: dict, ctx: base.Context) -> list[pathlib.Path]:
        pictures = []
        for number, scene in enumerate(written.scenes, 1):
            out = ctx.workdir / f"{_stem(number)}.png"
            try:
                slides.render(scene["slide"], params["aspect"], theme, out, params["subtitles"])
            except ValueError as exc:
                raise errors.PermanentError(f"scene {number}: {exc}") from exc
            ctx.artifact(out, "slide", "image/png", {"scene": number})
            pictures.append(out)
            ctx.progress(10 + 20 * number / len(written.scenes), "slides", f"slide {number} of {len(written.scenes)}")
        return pictures

    def _narrate(self, written: script.Script, params: dict, ctx: base.Context) -> list[voice.Narration]:
        provider = params["provider"]
        speaker = params["voice"] or voice.default_voice(provider, params["language"])
        spoken, start, total = [], 0.0, len(written.scenes)
        for number, scene in enumerate(written.scenes, 1):

            def step(stage: str, done: int, pieces: int, number: int = number) -> None:
                share = (number - 1 + done / pieces) / total
                ctx.progress(30 + 50 * share, "narrating", f"scene {number} of {total}")

            said = voice.narrate(
                scene["narration"],
                provider,
                speaker,
                ctx,
                ctx.workdir / _stem(number),
                rate=params["rate"],
                on_step=step,
            )
            spoken.append(self._store_narration(number, said, start, ctx))
            start += said.duration
        return spoken

    def _store_narration(self, number: int, said: voice.Narration, start: float, ctx) -> voice.Narration:
        audio = said.audio.rename(ctx.workdir / f"{_stem(number)}.wav")
        srt = ctx.workdir / f"{_stem(number)}.srt"
        srt.write_text(captions.to_srt(said.cues), encoding="utf-8")
        meta = {"scene": number, "start": round(start, 3), "duration": round(said.duration, 3)}
        ctx.artifact(audio, "audio", "audio/wav", meta)
        ctx.artifact(srt, "captions", "application/x-subrip", {**meta, "format": "srt", "cues": len(said.cues)})
        return voice.Narration(audio, said.cues, said.duration)

    def _video(self, pictures, spoken, params: dict, ctx: base.Context) -> tuple[pathlib.Path, pathlib.Path]:
        frames = render.frame_counts([narration.duration for narration in spoken])
        clips, total = [], len(pictures)
        for number, (picture, narration, count) in enumerate(zip(pictures, spoken, frames, strict=True), 1):
            ctx.progress(80 + 10 * (number - 1) / total, "rendering", f"scene {number} of {total}")
            burned = narration.cues if params["subtitles"] else []
            clips.append(
                render.scene_clip(
                    picture,
                    count,
                    burned,
                    ctx.workdir / f"{_stem(number)}.mp4",
                    ctx,
                    lambda f, n=number: ctx.progress(80 + 10 * (n - 1 + f) / total, "rendering"),
                )
            )
        ctx.progress(90, "concatenating")
        narration = ffmpeg.concat_audio([n.audio for n in spoken], ctx.workdir / "narration.wav", ctx)
        video = render.join(clips, narration, ctx.workdir / "video.mp4", ctx)
        srt = ctx.workdir / "video.srt"
        srt.write_text(captions.to_srt(_whole_cues(spoken)), encoding="utf-8")
        return video, srt

    def _finish(self, written: script.Script, first_slide, video, srt, ctx) -> dict:
        probed = ffmpeg.probe(video)
        meta = {"duration": probed.duration, "scenes": len(written.scenes), "title": written.title}
        stored = ctx.artifact(video, "video", "video/mp4", meta)
        ctx.meter("media_seconds", probed.duration)
        ctx.artifact(srt, "captions", "application/x-subrip", {"format": "srt", "scope": "video"})
        script_file = ctx.workdir / "script.json"
        script_file.write_text(json.dumps(written.to_dict(), indent=1, ensure_ascii=False), encoding="utf-8")
        ctx.artifact(script_file, "script", "application/json", {"by": written.by})
        thumb = render.thumbnail(first_slide, ctx.workdir / "thumbnail.png")
        ctx.artifact(thumb, "thumbnail", "image/png", {"of": video.name})
        return {"id": stored.get("id"), "duration": probed.duration}


def _stem(number: int) -> str:
    return f"scene-{number:02d}"


def _starts(durations: list[float]) -> list[float]:
    starts, elapsed = [], 0.0
    for seconds in durations:
        starts.append(elapsed)
        elapsed += seconds
    return starts


def _whole_cues(spoken: list[voice.Narration]) -> list[captions.Cue]:
    cues = []
    for start, narration in zip(_starts([n.duration for n in spoken]), spoken, strict=True):
        cues += [captions.Cue(round(c.start + start, 3), round(c.end + start, 3), c.text) for c in narration.cues]
    return cues


def _scene_result(number: int, start: float, narration: voice.Narration) -> dict:
    stem = _stem(number)
    return {
        "scene": number,
        "start": round(start, 3),
        "duration": round(narration.duration, 3),
        "slide": f"{stem}.png",
        "audio": f"{stem}.wav",
        "captions": f"{stem}.srt",
    }
