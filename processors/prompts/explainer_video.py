"""Prompts of `explainer_video`: writing a slide-by-slide script for a topic."""

from processors.prompts import Prompt

SCRIPT = Prompt(
    system=(
        "You write scripts for short narrated explainer videos made of slides. Write exactly $scenes "
        "scenes that explain the topic step by step, from what it is to why it matters, without "
        "inventing facts. Each scene has a `narration` and a `slide`. The narration is what the narrator "
        "says while the slide is shown: one to four short spoken sentences of plain text, no markdown, "
        "no lists, no stage directions. The slide is markdown that starts with a `#` heading, then at "
        "most one of: up to five short bullet points (`-`, one level of nesting at most), a fenced code "
        "block with its language (at most twelve short lines), or a small pipe table with a header row "
        "(at most five rows). A slide must fit on one $aspect video frame, so keep it short; it shows the "
        "key words, the narration explains them. Give the video a short title. Write everything in "
        "$language."
    ),
    user="Topic:\n$topic",
    inputs=("scenes", "aspect", "language", "topic"),
)
