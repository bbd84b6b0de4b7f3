"""Analysis for the segment heuristic: momentary loudness per second (ffmpeg's `ebur128`) and
scene changes (the `select` filter's scene score), both from one ffmpeg pass over the source.
The video is scaled down first: scene scores need no detail and this keeps the pass cheap.
"""

import dataclasses
import pathlib
import re
from collections.abc import Callable

from processors import base
from processors.providers import ffmpeg

SCENE_THRESHOLD = 0.3
_PTS = re.compile(r"pts_time:([0-9.]+)")
_LOUDNESS = re.compile(r"lavfi\.r128\.M=(-?[0-9.]+|-inf|nan)")


@dataclasses.dataclass(frozen=True)
class Analysis:
    """Loudness (LUFS) per whole second, and scene change times in seconds."""

    loudness: list[float]
    scene_changes: list[float]

    def to_dict(self) -> dict:
        return {"loudness_per_second": self.loudness, "scene_changes": self.scene_changes}


def analyse(
    source: pathlib.Path,
    duration: float,
    has_audio: bool,
    ctx: base.Context,
    on_progress: Callable[[float], None] | None = None,
) -> Analysis:
    """Measure loudness and scene changes of `source` in one ffmpeg pass."""
    loud_file, scene_file = ctx.workdir / "loudness.txt", ctx.workdir / "scenes.txt"
    command = ffmpeg.Command().input(source)
    graph = [
        f"[0:v:0]scale=160:-2,select='gt(scene,{SCENE_THRESHOLD})',"
        f"metadata=mode=print:file={ffmpeg.escape_filter_path(scene_file)}[v]"
    ]
    if has_audio:
        graph.append(
            "[0:a:0]ebur128=metadata=1,"
            f"ametadata=mode=print:key=lavfi.r128.M:file={ffmpeg.escape_filter_path(loud_file)}[a]"
        )
    command.filter_complex(";".join(graph))
    command.output("-", map="[v]", f="null")
    if has_audio:
        command.output("-", map="[a]", f="null")
    ffmpeg.run(command, ctx, duration=duration, on_progress=on_progress)
    loudness = _per_second(_pairs(loud_file, _LOUDNESS), duration) if has_audio else []
    scenes = [round(t, 3) for t, _ in _pairs(scene_file, None)]
    return Analysis(loudness, scenes)


def _pairs(path: pathlib.Path, value: re.Pattern | None) -> list[tuple[float, float]]:
    """Read `metadata=print` output: a `pts_time:` line, then its key=value lines."""
    if not path.is_file():
        return []
    found: list[tuple[float, float]] = []
    time = None
    for line in path.read_text(errors="replace").splitlines():
        stamp = _PTS.search(line)
        if stamp:
            time = float(stamp.group(1))
            if value is None:
                found.append((time, 0.0))
            continue
        match = value.search(line) if value is not None else None
        if match and time is not None:
            raw = match.group(1)
            found.append((time, float(raw) if raw not in ("-inf", "nan") else -70.0))
    return found


def _per_second(samples: list[tuple[float, float]], duration: float) -> list[float]:
    seconds = max(1, int(duration + 0.999))
    buckets: list[list[float]] = [[] for _ in range(seconds)]
    for time, level in samples:
        buckets[min(seconds - 1, int(time))].append(level)
    return [round(sum(b) / len(b), 2) if b else -70.0 for b in buckets]
