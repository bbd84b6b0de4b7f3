"""The transcript of a source: words with times from the speech-to-text provider when one is
configured, otherwise the cues of subtitles that came with it (an uploaded .srt/.vtt, the
captions yt-dlp fetched, or a subtitle stream inside the file), otherwise none.

Speech-to-text gets the audio as mono 16 kHz MP3 in pieces of at most `STT_PIECE_SECONDS`
(the OpenAI endpoint takes 25 MB a request); word times are shifted back by each piece's start.
"""

import dataclasses
import pathlib

from processors import base, captions, providers
from processors.providers import ffmpeg, openai_api

STT_PIECE_SECONDS = 1200.0


@dataclasses.dataclass(frozen=True)
class Transcript:
    """What was said when: caption cues, the words when known, and where it came from."""

    origin: str  # speech_to_text, uploaded_subtitles, source_subtitles, embedded_subtitles, none
    cues: list[captions.Cue]
    words: list[captions.Word]
    language: str | None = None

    @property
    def text(self) -> str:
        return " ".join(cue.text for cue in self.cues)

    def between(self, start: float, end: float) -> str:
        """Return what is said between two times."""
        if self.words:
            return " ".join(w.text.strip() for w in self.words if start <= (w.start + w.end) / 2 < end)
        return " ".join(c.text for c in self.cues if c.start < end and c.end > start)

    def to_dict(self) -> dict:
        return {
            "origin": self.origin,
            "language": self.language,
            "cues": [dataclasses.asdict(c) for c in self.cues],
            "words": [dataclasses.asdict(w) for w in self.words],
        }


def speech_to_text_available(settings: dict) -> bool:
    """Tell whether a speech-to-text provider is configured."""
    return providers.availability(["openai"], settings)["openai"] is None


def from_speech(
    source: pathlib.Path, duration: float, language: str | None, ctx: base.Context, on_progress
) -> Transcript:
    """Transcribe the source's audio with word timestamps."""
    words: list[captions.Word] = []
    found_language = language
    pieces = max(1, int(-(-duration // STT_PIECE_SECONDS)))
    for index in range(pieces):
        offset = index * STT_PIECE_SECONDS
        audio = ctx.workdir / f"speech-{index}.mp3"
        command = ffmpeg.Command().input(source, ss=offset, t=STT_PIECE_SECONDS)
        ffmpeg.run(command.output(audio, vn=True, sn=True, ac=1, ar=16000, **{"c:a": "libmp3lame", "b:a": "32k"}), ctx)
        heard = openai_api.transcribe(ctx.settings, audio, language=language, ctx=ctx)
        ctx.meter("transcribed_seconds", min(STT_PIECE_SECONDS, duration - offset), ctx.settings["CONVEYOR_STT_MODEL"])
        words += [captions.Word(w.text, w.start + offset, w.end + offset) for w in heard.words]
        found_language = found_language or heard.language
        on_progress((index + 1) / pieces)
    return Transcript(
        "speech_to_text", captions.from_words(words, max_chars=80, max_seconds=8.0), words, found_language
    )


def from_subtitles(files: list[tuple[str, pathlib.Path]], source: pathlib.Path, ctx: base.Context) -> Transcript:
    """Read the first usable subtitles: given files in order, then the source's own stream."""
    for origin, path in files:
        cues = captions.read(path)
        if cues:
            return Transcript(origin, cues, [])
    embedded = _embedded(source, ctx)
    if embedded:
        return Transcript("embedded_subtitles", embedded, [])
    return Transcript("none", [], [])


def _embedded(source: pathlib.Path, ctx: base.Context) -> list[captions.Cue]:
    if not ffmpeg.probe(source).subtitles:
        return []
    out = ctx.workdir / "embedded.srt"
    ffmpeg.run(ffmpeg.Command().input(source).output(out, map="0:s:0", **{"c:s": "srt"}), ctx)
    return captions.read(out)
