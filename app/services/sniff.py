"""Content sniffing for uploads: what a file is, read from its first bytes, never from its name.

Only the kinds a task can use are recognised: video (MP4/MOV, WebM/Matroska, AVI), audio (WAV,
MP3, Ogg, FLAC, M4A), image (PNG, JPEG, GIF, WebP) and subtitles (SRT, WebVTT). Anything else
is refused. A match on magic bytes is a first check only; workers still probe media with
ffprobe before using it.
"""

import dataclasses
import re

# Bytes read from the start of a file; enough for every signature below.
HEAD_BYTES = 4096

_SRT_CUE = re.compile(rb"^\s*\d+\s*\r?\n\s*\d{1,2}:\d{2}:\d{2}[,.]\d{3}\s*-->", re.MULTILINE)
_MP3_FRAME = re.compile(rb"^\xff[\xe0-\xff]")


@dataclasses.dataclass(frozen=True)
class Sniffed:
    """What a file's content says it is."""

    kind: str  # video, audio, image or subtitles
    mime: str
    extension: str


def sniff(head: bytes) -> Sniffed | None:
    """Return what the file starting with `head` is, or None if it is no kind we accept."""
    for check in (_iso_media, _riff, _binary_signature, _subtitles):
        found = check(head)
        if found is not None:
            return found
    return None


def _iso_media(head: bytes) -> Sniffed | None:
    # ISO base media (MP4, MOV, M4A): a box size, then `ftyp` and the major brand.
    if head[4:8] != b"ftyp":
        return None
    brand = head[8:12]
    if brand == b"qt  ":
        return Sniffed("video", "video/quicktime", "mov")
    if brand in (b"M4A ", b"M4B "):
        return Sniffed("audio", "audio/mp4", "m4a")
    return Sniffed("video", "video/mp4", "mp4")


def _riff(head: bytes) -> Sniffed | None:
    if head[:4] != b"RIFF":
        return None
    return {
        b"WAVE": Sniffed("audio", "audio/wav", "wav"),
        b"AVI ": Sniffed("video", "video/x-msvideo", "avi"),
        b"WEBP": Sniffed("image", "image/webp", "webp"),
    }.get(head[8:12])


_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", Sniffed("image", "image/png", "png")),
    (b"\xff\xd8\xff", Sniffed("image", "image/jpeg", "jpg")),
    (b"GIF87a", Sniffed("image", "image/gif", "gif")),
    (b"GIF89a", Sniffed("image", "image/gif", "gif")),
    (b"OggS", Sniffed("audio", "audio/ogg", "ogg")),
    (b"fLaC", Sniffed("audio", "audio/flac", "flac")),
    (b"ID3", Sniffed("audio", "audio/mpeg", "mp3")),
)


def _binary_signature(head: bytes) -> Sniffed | None:
    for magic, found in _SIGNATURES:
        if head.startswith(magic):
            return found
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: WebM says so in its doctype
        return (
            Sniffed("video", "video/webm", "webm")
            if b"webm" in head[:64]
            else Sniffed("video", "video/x-matroska", "mkv")
        )
    if _MP3_FRAME.match(head):
        return Sniffed("audio", "audio/mpeg", "mp3")
    return None


def _subtitles(head: bytes) -> Sniffed | None:
    text = head.removeprefix(b"\xef\xbb\xbf")
    if b"\x00" in text:
        return None
    if text.startswith(b"WEBVTT"):
        return Sniffed("subtitles", "text/vtt", "vtt")
    if _SRT_CUE.search(text[:512]):
        return Sniffed("subtitles", "application/x-subrip", "srt")
    return None
