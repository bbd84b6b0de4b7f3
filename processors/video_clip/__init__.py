"""`video_clip`: a long video into short clips (the SupoClip job).

Stages: probe and limits (5), download with yt-dlp (10), transcribe (30), choose segments (50),
ground them (60), render clip i of N (70-95), done (100). Each clip is an `artifact` (kind
`clip`) as soon as it is rendered, with start and end in float seconds, text, score and reason
in its metadata; the transcript and the analysis are stored as JSON.

Modules: `transcript` (speech-to-text or subtitles), `analysis` (loudness and scene changes),
`segments` (grounding and the heuristic), `choose` (the LLM), `titles` (a clip's key phrase
when the LLM gave no title), `render` (one ffmpeg command per clip).
"""

import dataclasses
import json
import pathlib

import marshmallow
from marshmallow import validate

from processors import base, captions, errors, fonts
from processors.policy import Policy
from processors.providers import download, ffmpeg
from processors.video_clip import analysis, choose, render, segments, titles, transcript


class Source(marshmallow.Schema):
    url = marshmallow.fields.Url(
        schemes={"http", "https"}, require_tld=False, metadata={"description": "a video page or file URL (yt-dlp)"}
    )
    upload_id = marshmallow.fields.UUID(metadata={"description": "a video uploaded with POST /api/uploads"})
    subtitles_upload_id = marshmallow.fields.UUID(
        metadata={"description": "an uploaded .srt or .vtt to use as the transcript"}
    )

    @marshmallow.validates_schema
    def _one_source(self, data: dict, **kwargs) -> None:
        if ("url" in data) == ("upload_id" in data):
            raise marshmallow.ValidationError("give exactly one of url and upload_id", "url")


class Params(marshmallow.Schema):
    source = marshmallow.fields.Nested(Source, required=True)
    max_clips = marshmallow.fields.Integer(load_default=5, validate=validate.Range(min=1, max=10))
    min_s = marshmallow.fields.Float(load_default=15.0, validate=validate.Range(min=1, max=600))
    max_s = marshmallow.fields.Float(load_default=60.0, validate=validate.Range(min=2, max=900))
    aspect = marshmallow.fields.String(load_default="9:16", validate=validate.OneOf(("9:16", "1:1", "original")))
    subtitles = marshmallow.fields.Boolean(load_default=True, metadata={"description": "burn captions in"})
    font_family = marshmallow.fields.String(
        load_default=fonts.DEFAULT,
        validate=validate.OneOf(tuple(fonts.FONTS)),
        metadata={"description": "a font name from GET /api/fonts"},
    )
    font_size = marshmallow.fields.Integer(load_default=24, validate=validate.Range(min=12, max=72))
    font_color = marshmallow.fields.String(load_default="#FFFFFF", validate=validate.Regexp(r"^#[0-9A-Fa-f]{6}$"))
    language = marshmallow.fields.String(
        load_default=None,
        validate=validate.Regexp(r"^[a-z]{2,3}$"),
        metadata={"description": "ISO 639-1 code of the speech, a hint for transcription"},
    )

    @marshmallow.validates_schema
    def _lengths(self, data: dict, **kwargs) -> None:
        if data.get("min_s", 15.0) >= data.get("max_s", 60.0):
            raise marshmallow.ValidationError("must be greater than min_s", "max_s")


class VideoClipProcessor(base.Processor):
    """Download or fetch the source, transcribe, choose and ground segments, render clips."""

    type = "video_clip"
    endpoint = "clips"
    description = "A long video into short captioned clips (9:16, 1:1 or original)."
    Params = Params
    providers = ("ffmpeg", "ffprobe")
    policy = Policy(max_attempts=3, backoff_base=10, soft_timeout=3600, hard_timeout=3660, pool="cpu", estimate=180)

    @classmethod
    def uploads(cls, params: dict) -> dict[str, tuple[str, frozenset[str]]]:
        source = params["source"]
        found = {}
        if source.get("upload_id"):
            found["source.upload_id"] = (str(source["upload_id"]), frozenset({"video"}))
        if source.get("subtitles_upload_id"):
            found["source.subtitles_upload_id"] = (str(source["subtitles_upload_id"]), frozenset({"subtitles"}))
        return found

    @classmethod
    def urls(cls, params: dict) -> dict[str, str]:
        url = params["source"].get("url")
        return {"source.url": url} if url else {}

    def run(self, params: dict, ctx: base.Context) -> dict:
        ctx.progress(0, "probing")
        media, subtitle_files, title = self._source(params["source"], ctx)
        probed = _check_media(media, ctx.settings)
        heard = self._transcript(media, probed, subtitle_files, params, ctx)
        if params["subtitles"] and not heard.cues:
            raise errors.PermanentError(
                "captions were asked for but the source has no transcript: configure speech-to-text "
                "(OPENAI_API_KEY), give a source with subtitles, or set subtitles to false"
            )
        chosen, how, usage, analysed = self._segments(media, probed, heard, params, ctx)
        chosen = [_titled(segment, heard, title) for segment in chosen]
        clips = self._render_all(media, probed, heard, chosen, params, ctx)
        self._store_json(ctx, "transcript.json", heard.to_dict(), "transcript")
        self._store_json(ctx, "analysis.json", {"segments_by": how, **analysed}, "analysis")
        ctx.progress(100, "done", f"{len(clips)} clips")
        return {
            "title": title,
            "source_duration": probed.duration,
            "transcript_origin": heard.origin,
            "segments_by": how,
            "clips": clips,
            "usage": usage,
        }

    def _source(self, source: dict, ctx) -> tuple[pathlib.Path, list, str]:
        subtitle_files = []
        if source.get("subtitles_upload_id"):
            subtitle_files.append(("uploaded_subtitles", ctx.fetch_upload(str(source["subtitles_upload_id"]))))
        if source.get("upload_id"):
            media = ctx.fetch_upload(str(source["upload_id"]))
            ctx.progress(10, "downloading", "uploaded file")
            return media, subtitle_files, media.name
        ctx.progress(5, "downloading", source["url"])
        got = download.download_for(
            source["url"], ctx.workdir / "source", ctx, on_progress=lambda f: ctx.progress(5 + 5 * f, "downloading")
        )
        subtitle_files += [("source_subtitles", sub.path) for sub in got.subtitles]
        return got.path, subtitle_files, got.title

    def _transcript(self, media, probed, subtitle_files, params, ctx) -> transcript.Transcript:
        ctx.progress(10, "transcribing")
        if transcript.speech_to_text_available(ctx.settings) and probed.audio:
            heard = transcript.from_speech(
                media, probed.duration, params["language"], ctx, lambda f: ctx.progress(10 + 20 * f, "transcribing")
            )
        else:
            heard = transcript.from_subtitles(subtitle_files, media, ctx)
        ctx.progress(30, "transcribing", f"{len(heard.cues)} cues from {heard.origin}")
        return heard

    def _segments(self, media, probed, heard, params, ctx) -> tuple[list[segments.Segment], str, dict, dict]:
        limits = (probed.duration, params["min_s"], params["max_s"])
        if probed.duration < params["min_s"]:
            raise errors.PermanentError(
                f"the source is {probed.duration:.1f}s long, shorter than min_s ({params['min_s']:g}s)"
            )
        ctx.progress(30, "choosing segments")
        usage: dict = {}
        if heard.cues and transcript.speech_to_text_available(ctx.settings):
            lines = [f"[{c.start:.2f}-{c.end:.2f}] {c.text}" for c in heard.cues]
            proposals, usage = choose.choose(lines, probed.duration, params, ctx)
            how, analysed = "llm", {}
        else:
            found = analysis.analyse(
                media, probed.duration, bool(probed.audio), ctx, lambda f: ctx.progress(30 + 20 * f, "analysing")
            )
            proposals = segments.heuristic(
                found.loudness, found.scene_changes, *limits, heard.cues, params["max_clips"]
            )
            how, analysed = "heuristic", found.to_dict()
        ctx.progress(50, "grounding segments")
        chosen = segments.ground(proposals, *limits, heard.cues, params["max_clips"])
        if not chosen:
            raise errors.PermanentError(f"no segment of {params['min_s']:g}-{params['max_s']:g}s fits the source")
        ctx.progress(60, "grounding segments", f"{len(chosen)} segments")
        return chosen, how, usage, analysed

    def _render_all(self, media, probed, heard, chosen, params, ctx) -> list[dict]:
        look = render.Look(
            params["aspect"],
            params["subtitles"],
            fonts.get(params["font_family"]),
            params["font_size"],
            params["font_color"],
        )
        cues = transcript_cues(heard, params["aspect"])
        clips = []
        for index, segment in enumerate(chosen, 1):
            base_pct, span = 70 + 25 * (index - 1) / len(chosen), 25 / len(chosen)
            label = f"clip {index} of {len(chosen)}"
            ctx.progress(base_pct, "rendering", label)
            out = ctx.workdir / f"clip-{index:02d}.mp4"

            def report(fraction: float, start: float = base_pct, size: float = span, text: str = label) -> None:
                ctx.progress(start + size * fraction, "rendering", text)

            render.render(media, probed, segment.start, segment.end, cues, look, out, ctx, report)
            meta = {
                "index": index,
                "start": segment.start,
                "end": segment.end,
                "duration": round(segment.length, 3),
                "title": segment.title,
                "text": heard.between(segment.start, segment.end),
                "score": segment.score,
                "reason": segment.reason,
                "aspect": params["aspect"],
            }
            stored = ctx.artifact(out, "clip", "video/mp4", meta)
            ctx.meter("media_seconds", segment.length)
            clips.append({**meta, "artifact": stored.get("id"), "name": out.name})
        return clips

    def _store_json(self, ctx, name: str, data: dict, kind: str) -> None:
        path = ctx.workdir / name
        path.write_text(json.dumps(data, indent=1))
        ctx.artifact(path, kind, "application/json")


def _titled(segment: segments.Segment, heard: transcript.Transcript, source_title: str | None) -> segments.Segment:
    """Return the segment with a title: the LLM's, else the key phrase of what is said in it."""
    if segment.title.strip():
        return segment
    said = heard.between(segment.start, segment.end)
    return dataclasses.replace(segment, title=titles.title(said, source_title, segment.start, segment.end))


def transcript_cues(heard: transcript.Transcript, aspect: str):
    """Return the cues to burn in: short ones from words when known, else the subtitles'."""
    if heard.words:
        return captions.from_words(heard.words, max_chars=24 if aspect == "9:16" else 36, max_seconds=2.5)
    return heard.cues


def _check_media(media: pathlib.Path, settings: dict) -> ffmpeg.Probe:
    probed = ffmpeg.probe(media)
    if not probed.video:
        raise errors.PermanentError("the source has no video stream")
    max_seconds, max_bytes = float(settings["CONVEYOR_SOURCE_MAX_SECONDS"]), int(settings["CONVEYOR_SOURCE_MAX_BYTES"])
    # Worded as the download's own checks, so both routes name the setting to change.
    if probed.duration > max_seconds:
        raise errors.PermanentError(
            f"the source lasts {probed.duration:.0f} s, over the limit of {max_seconds:.0f} s "
            "(CONVEYOR_SOURCE_MAX_SECONDS)"
        )
    if probed.size > max_bytes:
        raise errors.PermanentError(
            f"the source is {probed.size} bytes, over the limit of {max_bytes} bytes (CONVEYOR_SOURCE_MAX_BYTES)"
        )
    return probed
