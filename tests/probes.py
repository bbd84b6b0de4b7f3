"""Objective probes of media output, shared by the processor tests: OCR of a frame (Debian's
`tesseract-ocr`) scored against the words it should show, and whether a region of a video
stays unchanged over a span (an animation's final state held, not cut short). Each probe
returns its figure; the tests print it and hold it to a threshold."""

import collections
import re
import shutil
import subprocess

from PIL import Image, ImageChops

from tests import media


def missing() -> str | None:
    """Why OCR cannot run here, or None."""
    return None if shutil.which("tesseract") else "tesseract is not installed (apt install tesseract-ocr)"


def ocr(image: Image.Image, path) -> str:
    """Return the text tesseract reads in `image` (written to `path`, a .png, on the way)."""
    image.save(path)
    done = subprocess.run(["tesseract", str(path), "stdout", "--psm", "6"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def words(text: str) -> list[str]:
    """The words of `text` as the probes compare them: runs of letters and digits, lowercased."""
    return re.findall(r"[a-z0-9]+", text.casefold())


def word_accuracy(expected: str, seen: str) -> float:
    """Return the share of `expected`'s words (with their counts) found in `seen`."""
    wanted = collections.Counter(words(expected))
    found = collections.Counter(words(seen))
    total = sum(wanted.values())
    return sum(min(count, found[word]) for word, count in wanted.items()) / total if total else 1.0


def held(video, box, start: float, end: float, folder, step: float = 0.25) -> float:
    """Return the largest mean pixel difference, inside `box`, between the frame at `start` and
    the frames sampled every `step` seconds up to `end`: 0 when the region does not change."""
    first = media.frame(video, start, folder / "held-0.png").crop(box)
    worst, at, index = 0.0, start + step, 1
    while at <= end + 1e-6:
        later = media.frame(video, at, folder / f"held-{index}.png").crop(box)
        worst = max(worst, _mean(ImageChops.difference(first, later)))
        at, index = at + step, index + 1
    return worst


def _mean(image: Image.Image) -> float:
    histogram = image.convert("L").histogram()
    pixels = sum(histogram)
    return sum(level * count for level, count in enumerate(histogram)) / pixels if pixels else 0.0


def loudness(path) -> float:
    """Return a file's integrated loudness (LUFS) as ffmpeg's `ebur128` summary reports it."""
    argv = ["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-vn", "-af", "ebur128", "-f", "null", "-"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.findall(r"^\s*I:\s+(-?[\d.]+) LUFS", done.stderr, re.MULTILINE)
    assert found, done.stderr[-2000:]
    return float(found[-1])


def silences(path, noise_db: float = -45.0, least: float = 0.04) -> list[tuple[float, float]]:
    """Return the pauses ffmpeg's `silencedetect` finds in a file's audio, as (start, end)."""
    graph = f"silencedetect=noise={noise_db}dB:d={least}"
    argv = ["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-vn", "-af", graph, "-f", "null", "-"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    starts = [float(v) for v in re.findall(r"silence_start: (-?[\d.]+)", done.stderr)]
    ends = [float(v) for v in re.findall(r"silence_end: (-?[\d.]+)", done.stderr)]
    return list(zip(starts, ends + [float("inf")] * (len(starts) - len(ends)), strict=True))


def caption_offsets(cues, pauses) -> list[float]:
    """Return, for each boundary between two cues, how far it lies from the nearest pause in the
    audio (0 when inside one): a cue that changes while speech goes on is off by that much."""
    offsets = []
    for cue in cues[:-1]:
        at = cue.end
        offsets.append(min((max(0.0, start - at, at - end) for start, end in pauses), default=float("inf")))
    return offsets
