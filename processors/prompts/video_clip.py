"""Prompts of `video_clip`: choosing the clips from a timed transcript."""

from processors.prompts import Prompt

CHOOSE = Prompt(
    system=(
        "You pick the best moments of a long video to publish as short vertical clips. "
        "Each clip must be one contiguous span of the video, start and end in seconds as given in "
        "the transcript, between $min_s and $max_s seconds long, inside 0-$duration seconds, "
        "not overlapping another clip. Prefer spans that start at the beginning of a sentence and end "
        "at the end of one, hold a complete thought, and would interest a viewer on their own. "
        "Give at most $max_clips clips, best first, each with a short title, a score from 0 to 1 and "
        "the reason you chose it. Use only times from the transcript; do not invent content."
    ),
    user="Transcript, one line per caption, as [start-end] text:\n$transcript",
    inputs=("min_s", "max_s", "duration", "max_clips", "transcript"),
)
