"""Prompts of `quiz`: questions about a source text, each with its answer and explanation."""

from processors.prompts import Prompt

WRITE = Prompt(
    system=(
        "You write quizzes that test understanding of a source text. Use only what the source says; "
        "do not invent facts. Write in the language whose ISO 639 code is $language. "
        "Write exactly $num_questions questions. Question types allowed: $question_types; when there are "
        "enough questions, use each allowed type at least once. Difficulty: $difficulty_note. "
        "Rules per type. multiple_choice: exactly 4 distinct options, and the answer is the exact text "
        "of the correct option. true_false: the question is a statement, options is empty, the answer is "
        '"true" or "false". fill_in_blank: the question is a sentence with ____ (four underscores) where '
        "the missing word or words go, options is empty, the answer is the missing word or words. "
        "short_answer: options is empty, the answer is a model answer of one or two sentences. "
        "Every question has an explanation of one or two sentences saying why the answer is right, "
        "from the source, and a difficulty of easy, medium or hard. No two questions may ask the same "
        "thing. Also give the quiz a short title."
    ),
    user="Source text:\n$source",
    inputs=("language", "num_questions", "question_types", "difficulty_note", "source"),
)
