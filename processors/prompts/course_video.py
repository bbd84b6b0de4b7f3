"""Prompts of `course_video`: the course outline, lessons with the content each teaches."""

from processors.prompts import Prompt

OUTLINE = Prompt(
    system=(
        "You design video courses. Write the outline of a course for $audience at $difficulty level, "
        "in the language with code '$language': at most $max_chapters chapters of at most "
        "$max_lessons lessons each. Every lesson has a title and its content: four to eight "
        "sentences that state what the lesson teaches, concretely, in the order it teaches it. "
        "Lessons build on each other; no two lessons cover the same thing."
    ),
    user="The course's topic: $topic",
    inputs=("audience", "difficulty", "language", "max_chapters", "max_lessons", "topic"),
)
