"""Segments: the spans of the source that become clips. Grounding turns any proposal (the
LLM's or the heuristic's) into spans that are inside the video, contiguous, within the
length limits and not overlapping; the heuristic proposes spans from loudness and scene
changes when no LLM is configured.

The heuristic, documented in docs/processors.md: slide a window of the preferred length
(the middle of min_s and max_s) over the source one second at a time; score each window by
its mean momentary loudness relative to the whole source (speech and action are louder than
pauses) plus a bonus per scene change inside it (visual activity), and prefer windows that
start on a scene change or a caption boundary. The best windows that do not overlap win.
"""

import dataclasses
import math

from processors import captions

# The LLM sees cue times rounded to 1/100 s: a time that close to a cue edge means that edge.
# Without this, a clip ending on a cue snapped to its exact end (5.512) and the next clip
# starting at the printed "5.51" overlap by 2 ms, and the lower-scored one is dropped.
EDGE_SLACK = 0.01


@dataclasses.dataclass(frozen=True)
class Segment:
    """A span of the source in float seconds, with why it was chosen."""

    start: float
    end: float
    score: float
    reason: str
    title: str = ""

    @property
    def length(self) -> float:
        return self.end - self.start


def ground(
    proposals: list[Segment],
    duration: float,
    min_s: float,
    max_s: float,
    cues: list[captions.Cue],
    max_clips: int,
) -> list[Segment]:
    """Return the proposals made valid: clamped into [0, duration], snapped outward to whole
    caption cues, stretched or cut to [min_s, max_s], without overlaps (higher score wins),
    at most `max_clips`, in time order."""
    fixed = [_fit(p, duration, min_s, max_s, cues) for p in proposals]
    chosen: list[Segment] = []
    for candidate in sorted((f for f in fixed if f is not None), key=lambda s: -s.score):
        if len(chosen) < max_clips and not any(_overlaps(candidate, c) for c in chosen):
            chosen.append(candidate)
    return sorted(chosen, key=lambda s: s.start)


def _fit(proposal: Segment, duration: float, min_s: float, max_s: float, cues) -> Segment | None:
    if duration < min_s or not math.isfinite(proposal.start) or not math.isfinite(proposal.end):
        return None
    start = min(max(0.0, proposal.start), duration)
    end = min(max(start, proposal.end), duration)
    start, end = _snap(start, end, cues, max_s)
    end = min(end, duration)  # a cue may run past the end of the video
    if end - start < min_s:  # too short: grow forward, then backward
        end = min(duration, start + min_s)
        start = max(0.0, end - min_s)
    if end - start > max_s:
        end = start + max_s
    return dataclasses.replace(proposal, start=round(start, 3), end=round(end, 3))


def _snap(start: float, end: float, cues: list[captions.Cue], max_s: float) -> tuple[float, float]:
    """Move start back to the start of the cue it cuts, and end on to the end of the cue it
    cuts, unless that would pass max_s: a clip should not cut a sentence in half."""
    start, end = _on_edge(start, cues), _on_edge(end, cues)
    for cue in cues:
        if cue.start < start < cue.end and end - cue.start <= max_s:
            start = cue.start
        if cue.start < end < cue.end and cue.end - start <= max_s:
            end = cue.end
    return start, end


def _on_edge(time: float, cues: list[captions.Cue]) -> float:
    """Return the cue edge `time` is within EDGE_SLACK of, else `time`."""
    for cue in cues:
        for edge in (cue.start, cue.end):
            if abs(time - edge) <= EDGE_SLACK:
                return edge
    return time


def _overlaps(a: Segment, b: Segment) -> bool:
    return a.start < b.end and b.start < a.end


def problems(proposals: list[Segment], duration: float, min_s: float, max_s: float) -> list[str]:
    """Return what is wrong with an LLM's proposals (for one re-ask); empty when usable."""
    found = []
    if not proposals:
        found.append("no clips were proposed")
    for n, p in enumerate(proposals, 1):
        if not 0 <= p.start < p.end <= duration + 0.5:
            found.append(f"clip {n}: start {p.start} and end {p.end} must satisfy 0 <= start < end <= {duration:.2f}")
        elif not min_s - 1 <= p.length <= max_s + 1:
            found.append(f"clip {n}: length {p.length:.1f}s must be between {min_s:g} and {max_s:g} seconds")
    return found


def heuristic(
    loudness: list[float],
    scene_changes: list[float],
    duration: float,
    min_s: float,
    max_s: float,
    cues: list[captions.Cue],
    max_clips: int,
) -> list[Segment]:
    """Propose the best windows by loudness and scene changes (see the module docstring).

    loudness: momentary loudness (LUFS) per second of the source.
    scene_changes: times (s) where the picture changes.
    """
    window = min(max_s, max(min_s, (min_s + max_s) / 2), duration)
    if duration < min_s:
        return []
    floor = -70.0
    levels = [max(floor, value) for value in loudness] or [floor]
    overall = sum(levels) / len(levels)
    spread = max(1.0, max(levels) - min(levels))
    boundaries = sorted({*scene_changes, *(c.start for c in cues)})
    proposals = []
    for start in _starts(duration, window):
        end = start + window
        inside = levels[int(start) : max(int(start) + 1, int(end))]
        mean = sum(inside) / len(inside)
        cuts = sum(1 for t in scene_changes if start < t < end)
        on_boundary = any(abs(b - start) <= 0.5 for b in boundaries)
        score = 0.5 + 0.5 * (mean - overall) / spread + 0.1 * min(cuts, 3) / 3 + (0.05 if on_boundary else 0.0)
        reason = f"loudness {mean:.1f} LUFS against {overall:.1f} overall, {cuts} scene change(s)"
        proposals.append(Segment(start, end, round(max(0.0, min(1.0, score)), 3), reason))
    return ground(proposals, duration, min_s, max_s, cues, max_clips)


def _starts(duration: float, window: float) -> list[float]:
    last = max(0.0, duration - window)
    step = max(1.0, last / 600)  # at most ~600 windows, whatever the source's length
    count = int(last // step) + 1
    return [round(i * step, 3) for i in range(count)]
