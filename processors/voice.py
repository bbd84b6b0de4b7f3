"""`voice`: text to narrated audio with captions.

The text is split at sentence ends; each sentence is spoken on its own by the chosen provider
(espeak-ng, the default that needs no key; OpenAI-compatible TTS; ElevenLabs) and normalised
to one WAV format, so its exact duration is known. The pieces are joined and encoded to mp3,
wav or ogg with ffmpeg; the result's duration is measured with ffprobe. Caption cues are the
sentences, timed by the measured durations, so they follow the audio rather than a guess.

`narrate` is that speaking, joining and timing on its own, for the types that narrate
(explainer_video speaks each scene with it); the `voice` type encodes and stores its result.
"""

import dataclasses
import json
import pathlib
from collections.abc import Callable

import marshmallow
from marshmallow import validate

from processors import base, captions, errors, providers
from processors.policy import Policy
from processors.providers import elevenlabs_api, espeak, ffmpeg, openai_api

MAX_CHARS = 20_000
SENTENCE_CHARS = 300  # longer sentences are split at spaces (TTS quality drops past this)
PROVIDERS = ("espeak", "openai", "elevenlabs")
DEFAULT_VOICES = {"espeak": "en-us", "openai": "alloy", "elevenlabs": "21m00Tcm4TlvDq8ikWAM"}
MIME = {"mp3": "audio/mpeg", "wav": "audio/wav", "ogg": "audio/ogg"}
PIECE_RATE = 24_000  # every piece is resampled to this, mono, before joining


class NarrationParams(marshmallow.Schema):
    """The narration params every narrated type takes (voice, explainer_video, animated_lesson)."""

    provider = marshmallow.fields.String(
        load_default="espeak",
        validate=validate.OneOf(PROVIDERS),
        metadata={"description": "espeak (local, no key), openai or elevenlabs; see GET /api/voices"},
    )
    voice = marshmallow.fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=100),
        metadata={"description": "a voice id of the provider from GET /api/voices (default: the provider's first)"},
    )
    rate = marshmallow.fields.Float(
        load_default=1.0, validate=validate.Range(min=0.5, max=2.0), metadata={"description": "speed, 1.0 is normal"}
    )


class Params(NarrationParams):
    text = marshmallow.fields.String(
        required=True,
        # Whitespace alone splits into no sentences at all, so there would be nothing to join.
        validate=[validate.Length(min=1, max=MAX_CHARS), validate.Regexp(r"\s*\S", error="there is no text to speak")],
    )
    language = marshmallow.fields.String(
        load_default=None,
        validate=validate.Regexp(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"),
        metadata={"description": "language of the text; with espeak and no voice it picks the voice"},
    )
    pitch = marshmallow.fields.Integer(
        load_default=None, validate=validate.Range(min=0, max=99), metadata={"description": "espeak only: 0-99"}
    )
    format = marshmallow.fields.String(load_default="mp3", validate=validate.OneOf(tuple(MIME)))
    captions = marshmallow.fields.Boolean(load_default=True, metadata={"description": "write SRT and VTT captions"})

    @marshmallow.validates_schema
    def _pitch_needs_espeak(self, data: dict, **kwargs) -> None:
        if data.get("pitch") is not None and data.get("provider", "espeak") != "espeak":
            raise marshmallow.ValidationError("only the espeak provider takes a pitch", "pitch")


class VoiceProcessor(base.Processor):
    """Speak each sentence, join, encode, measure, and caption by the measured times."""

    type = "voice"
    endpoint = "voice-generation"
    description = "Text to speech (espeak-ng, OpenAI-compatible or ElevenLabs) with SRT/VTT captions."
    Params = Params
    providers = ("espeak", "ffmpeg", "ffprobe")
    policy = Policy(max_attempts=3, backoff_base=5.0, soft_timeout=900.0, hard_timeout=960.0, pool="io", estimate=20.0)

    @classmethod
    def needs(cls, params: dict) -> dict[str, tuple[str, str]]:
        """The programs always (espeak-ng speaks by default); a paid voice's key when asked for."""
        return {**super().needs(params), **providers.voice_key(params["provider"])}

    def run(self, params: dict, ctx: base.Context) -> dict:
        providers.require(self.needs(params), ctx.settings)  # fail at once, saying which
        provider = params["provider"]
        voice = params["voice"] or default_voice(provider, params["language"])
        spoken = narrate(
            params["text"],
            provider,
            voice,
            ctx,
            ctx.workdir,
            rate=params["rate"],
            pitch=params["pitch"],
            on_step=lambda stage, done, total: _report(ctx, stage, done, total),
        )
        ctx.progress(90, "encoding", params["format"])
        # Levelled again as encoded: a lossy codec's low-pass takes some loudness away.
        audio = ffmpeg.normalise_loudness(spoken.audio, ctx.workdir / f"voice.{params['format']}", ctx)
        duration = ffmpeg.probe(audio).duration
        level = ffmpeg.loudness(audio, ctx)
        meta = {"provider": provider, "voice": voice, "rate": params["rate"], "duration": duration, "loudness": level}
        stored = ctx.artifact(audio, "audio", MIME[params["format"]], meta)
        ctx.meter("media_seconds", duration)
        names = self._captions(spoken.cues, params, ctx) if params["captions"] else []
        ctx.progress(100, "done")
        return {
            "audio": audio.name,
            "artifact": stored.get("id"),
            "duration": duration,
            "loudness": level,
            "format": params["format"],
            "provider": provider,
            "voice": voice,
            "sentences": len(spoken.cues),
            "characters": len(params["text"]),
            "captions": names,
        }

    def _captions(self, cues: list[captions.Cue], params: dict, ctx) -> list[str]:
        srt = ctx.workdir / "voice.srt"
        srt.write_text(captions.to_srt(cues), encoding="utf-8")
        vtt = ctx.workdir / "voice.vtt"
        vtt.write_text(captions.to_vtt(cues), encoding="utf-8")
        cue_file = ctx.workdir / "cues.json"
        cue_file.write_text(json.dumps([cue.__dict__ for cue in cues], indent=1))
        ctx.artifact(srt, "captions", "application/x-subrip", {"format": "srt", "cues": len(cues)})
        ctx.artifact(vtt, "captions", "text/vtt", {"format": "vtt", "cues": len(cues)})
        return [srt.name, vtt.name]


@dataclasses.dataclass(frozen=True)
class Narration:
    """Spoken text: one mono PCM WAV at PIECE_RATE, a caption cue per piece (from 0 s), and
    its length, the sum of the measured pieces."""

    audio: pathlib.Path
    cues: list[captions.Cue]
    duration: float


def narrate(
    text: str,
    provider: str,
    voice: str,
    ctx: base.Context,
    folder: pathlib.Path,
    *,
    rate: float = 1.0,
    pitch: int | None = None,
    on_step: Callable[[str, int, int], None] | None = None,
) -> Narration:
    """Speak `text` sentence by sentence into `folder/joined.wav`, brought to -16 LUFS
    (`ffmpeg.normalise_loudness`), and time a cue per sentence.

    provider: espeak, openai or elevenlabs; voice: that provider's voice id.
    rate: speed, 1.0 is normal; pitch: espeak only, 0-99 (None: the voice's own).
    on_step: told (stage, done, total) at "splitting" (0 done), after each piece "speaking",
        and before the join "joining"; it may raise `Cancelled`.
    Raises PermanentError for text with nothing to speak and the providers' errors.
    """
    pieces = captions.sentences(text, SENTENCE_CHARS)
    if not pieces:
        raise errors.PermanentError("there is no text to speak")
    step = on_step or (lambda stage, done, total: None)
    step("splitting", 0, len(pieces))
    folder.mkdir(parents=True, exist_ok=True)
    paths, durations = [], []
    for index, piece in enumerate(pieces, 1):
        stem = folder / f"piece-{index:04d}"
        raw = _speak(provider, piece, voice, rate, pitch, ctx, stem)
        ctx.meter("speech_characters", len(piece), speech_model(provider, ctx.settings))
        paths.append(_normalise(raw, folder / f"piece-{index:04d}.norm.wav", ctx))
        durations.append(ffmpeg.probe(paths[-1]).duration)
        step("speaking", index, len(pieces))
    step("joining", len(pieces), len(pieces))
    joined = ffmpeg.concat_audio(paths, folder / "pieces.wav", ctx)
    levelled = ffmpeg.normalise_loudness(joined, folder / "joined.wav", ctx)
    return Narration(levelled, _cues(pieces, durations), sum(durations))


def default_voice(provider: str, language: str | None) -> str:
    """Return the voice to use when none is given: espeak's for the language, else the provider's first."""
    if provider == "espeak" and language:
        return language.lower()  # espeak-ng names its voices by language ("en-us", "de", "fr")
    return DEFAULT_VOICES[provider]


def speech_model(provider: str, settings: dict) -> str:
    """Return the name speech is metered under: the provider and its model ("openai:tts-1")."""
    model = {"openai": settings.get("CONVEYOR_TTS_MODEL"), "elevenlabs": settings.get("ELEVENLABS_MODEL")}
    return f"{provider}:{model[provider]}" if model.get(provider) else provider


def _report(ctx: base.Context, stage: str, done: int, total: int) -> None:
    if stage == "splitting":
        ctx.progress(5, "splitting", f"{total} sentences")
    elif stage == "speaking":
        ctx.progress(10 + 70 * done / total, "speaking", f"sentence {done} of {total}")
    else:
        ctx.progress(85, "joining")


def _speak(provider: str, text: str, voice: str, rate: float, pitch: int | None, ctx, stem):
    """Speak one piece with the provider; return the file written (its format varies)."""
    if provider == "espeak":
        wpm, pitch = round(175 * rate), 50 if pitch is None else pitch
        return espeak.speak(text, voice, stem.with_suffix(".wav"), rate_wpm=wpm, pitch=pitch, ctx=ctx)
    if provider == "openai":
        out = stem.with_suffix(".wav")
        openai_api.speak(ctx.settings, text, voice, out, speed=rate, response_format="wav", ctx=ctx)
        return out
    out = stem.with_suffix(".mp3")
    elevenlabs_api.speak(ctx.settings, text, voice, out, ctx=ctx)
    if rate != 1.0:  # ElevenLabs has no speed parameter: change tempo, keep pitch
        return _tempo(out, stem.with_suffix(".tempo.wav"), rate, ctx)
    return out


def _tempo(src, dst, rate: float, ctx):
    command = ffmpeg.Command().input(src).output(dst, af=f"atempo={rate:.3f}", ac=1)
    ffmpeg.run(command, ctx)
    return dst


def _normalise(src, dst, ctx):
    """Resample a piece to mono 16-bit PCM at PIECE_RATE, so pieces join without a seam."""
    command = ffmpeg.Command().input(src).output(dst, ac=1, ar=PIECE_RATE, **{"c:a": "pcm_s16le"})
    ffmpeg.run(command, ctx)
    if not dst.is_file() or dst.stat().st_size <= 44:
        raise errors.RetryableError("the speech provider returned no audio")
    return dst


def _cues(pieces: list[str], durations: list[float]) -> list[captions.Cue]:
    cues, start = [], 0.0
    for text, seconds in zip(pieces, durations, strict=True):
        cues.append(captions.Cue(round(start, 3), round(start + seconds, 3), text))
        start += seconds
    return cues
