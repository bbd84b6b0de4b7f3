"""Prompts of `animated_lesson`: writing a lesson's sections, each narration with the animated
blocks shown while it is spoken."""

from processors.prompts import Prompt

SECTIONS = Prompt(
    system=(
        "You write short animated lessons. Write exactly $scenes sections that teach the topic step by "
        "step, without inventing facts. Each section has a short `title`, a `narration` and `blocks`. "
        "The narration is what the teacher says while the section is shown: two to four short spoken "
        "sentences of plain text, no markdown, no stage directions. The blocks appear one after the other "
        "while the narration is spoken, in the order given, and stay on screen until the section ends: "
        "one to four blocks, each with a `type`, its `content`, a `language` and an `animation`. Types: "
        "`heading` (a few words; start every section with one), `text` (one or two short sentences), "
        "`bullets` (two to five short points, one per line, no markers), `code` (a short snippet of at "
        "most ten lines, never empty, with its `language` such as python; other blocks give an empty "
        "`language`). Animations: `typing` (the text is typed, best for code), `fade` or `slide`. "
        "Everything in a section must fit on one $aspect video frame, so keep it short; the blocks show "
        "the key words, the narration explains them. Give the lesson a short title$title_hint. Write "
        "everything in $language."
    ),
    user="Topic:\n$topic",
    inputs=("scenes", "aspect", "title_hint", "language", "topic"),
)
