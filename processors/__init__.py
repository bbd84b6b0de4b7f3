"""Processors: the plugin package. One module per task type, the contract in `base`, the
registry in `registry`, outside services behind `providers/`. Imports no Flask, SQLAlchemy or
Celery: a processor sees the world only through its context.
"""

# The built-in task types; installed plugins add theirs through the `conveyor.processors` entry points.
BUILTIN = [
    "processors.noop:NoopProcessor",
    "processors.sleep:SleepProcessor",
    "processors.flaky:FlakyProcessor",
    "processors.video_clip:VideoClipProcessor",
    "processors.voice:VoiceProcessor",
    "processors.image:ImageProcessor",
    "processors.explainer_video:ExplainerVideoProcessor",
    "processors.story:StoryProcessor",
    "processors.quiz:QuizProcessor",
    "processors.documentation:DocumentationProcessor",
    "processors.course_video:CourseVideoProcessor",
    "processors.animated_lesson:AnimatedLessonProcessor",
]
