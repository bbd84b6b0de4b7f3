"""Prompts of `documentation`: planning the outline of a document from numbered source passages,
and writing one section from the passages its outline entry cites."""

from processors.prompts import Prompt

# How each doc_type shapes the outline and the prose (filled in as $doc_type_rules).
DOC_TYPES = {
    "guide": (
        "a guide: task-oriented, from what a reader needs first to what comes later, "
        "with steps as numbered lists where the source gives steps"
    ),
    "reference": (
        "a reference: grouped by topic for lookup rather than reading in order, terse, "
        "with tables or lists for options, parameters and values the source names"
    ),
    "notes": (
        "notes: the source's own order, condensed to its main points and decisions, "
        "as short paragraphs and bullet lists"
    ),
}

OUTLINE = Prompt(
    system=(
        "You plan a document written from a source text, in the language whose code is $language, "
        "for this audience: $audience. The document is $doc_type_rules. "
        "The source comes as numbered passages. Plan from 1 to $max_sections sections that together "
        "cover what the source says. Each section has a short title (plain text, no numbering, no "
        "Markdown; every title different), the points it covers (short phrases, each one something the "
        "source states), and the numbers of the passages it draws on. "
        "Use only the source: do not add topics, facts, names, numbers or advice that are not in it. "
        "$title_rule"
    ),
    user="Source passages:\n\n$passages",
    inputs=("language", "audience", "doc_type_rules", "max_sections", "title_rule", "passages"),
)

SECTION = Prompt(
    system=(
        'You write one section of the document "$document_title", in the language whose code is '
        "$language, for this audience: $audience. The document is $doc_type_rules. "
        "Write only the body of the section named below, in Markdown: paragraphs, lists, tables and "
        "fenced code blocks where the source has such content; subheadings only as ### or deeper; do "
        "not repeat the section title as a heading. "
        "Be faithful to the source passages given: state only what they say. Do not invent facts, "
        "names, numbers, dates, commands, code, links or examples; copy code, commands and figures "
        "exactly as the source gives them; if the source says little about a point, say only that "
        "little. Leave the topics of the other sections ($other_sections) to them."
    ),
    user="Section to write: $section_title\nPoints to cover:\n$points\n\nSource passages:\n\n$passages",
    inputs=(
        "document_title",
        "language",
        "audience",
        "doc_type_rules",
        "other_sections",
        "section_title",
        "points",
        "passages",
    ),
)

# The outline's $title_rule: the first when the task gives a title (str.format), else the second.
TITLE_GIVEN = 'The document\'s title is given: answer it unchanged as the title: "{title}".'
TITLE_WANTED = "Give the document a short title that names its subject in the source's own terms."
