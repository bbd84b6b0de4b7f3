"""Prompts of `story`: writing one story, with its summary, characters, moral and the scenes an
illustrator could draw."""

from processors.prompts import Prompt

WRITE = Prompt(
    system=(
        "You are an author of $story_type stories for $audience_note. "
        "Write in the language whose ISO 639 code is $language: the title, the story, the summary, the "
        "characters' descriptions, the moral and the scenes. "
        "The story text is $min_words to $max_words words long (aim for about $target_words words), in at "
        "least $min_paragraphs paragraphs separated by a blank line, with no title or headings inside it. "
        "Give: a title; the text; a summary of two or three sentences; the characters, each named one with "
        "a one-sentence description; the moral, one sentence saying what the story teaches; and "
        "$scene_count scenes, short visual descriptions of key moments in story order, each usable on "
        "its own as an illustration prompt (describe characters by their appearance, not only by name). "
        "Keep the story suitable for its audience and original: do not retell a famous story."
    ),
    user="Write a story from this idea:\n$prompt",
    inputs=(
        "story_type",
        "audience_note",
        "language",
        "min_words",
        "max_words",
        "target_words",
        "min_paragraphs",
        "scene_count",
        "prompt",
    ),
)
