"""`documentation`: a document written by an LLM from given text (notes, markdown, a transcript),
faithful to it, as Markdown, HTML or PDF, with its table of contents as JSON. With `as_is` the
content is the finished document, laid out and converted as given with no LLM (no key needed).

Stages: outline (0-10), sections, one LLM call each with progress per section (10-80),
assembly into Markdown (80), HTML (85), PDF (90), done (100). Artifacts: the document in the
asked format, always `document.md` too, and `toc.json` (level, title, anchor, and the PDF page).

Modules: `writing` (passages, outline and sections with their checks), `given` (a finished
document split into its sections), `render` (Markdown assembly, HTML, PDF, table of contents);
the prompts are in `processors.prompts.documentation`.
"""

import json
import re

import marshmallow
from marshmallow import validate

from processors import base, providers
from processors.documentation import given, render, writing
from processors.policy import Policy
from processors.prompts import documentation as prompts

MAX_CONTENT = 200_000  # characters: about 50k tokens, sent once whole for the outline
FORMATS = ("markdown", "html", "pdf")
MIMES = {"markdown": "text/markdown", "html": "text/html", "pdf": "application/pdf"}
SUFFIXES = {"markdown": "md", "html": "html", "pdf": "pdf"}


def _has_text(value: str) -> None:
    if not value.strip():
        raise marshmallow.ValidationError("must contain some text")


class Params(marshmallow.Schema):
    content = marshmallow.fields.String(
        required=True,
        validate=[validate.Length(min=1, max=MAX_CONTENT), _has_text],
        metadata={"description": "the source: text, markdown or a transcript"},
    )
    title = marshmallow.fields.String(
        load_default=None,
        validate=[validate.Length(min=1, max=writing.MAX_TITLE), _has_text],
        metadata={"description": "the document's title; unset, the LLM proposes one"},
    )
    doc_type = marshmallow.fields.String(load_default="guide", validate=validate.OneOf(tuple(prompts.DOC_TYPES)))
    format = marshmallow.fields.String(load_default="markdown", validate=validate.OneOf(FORMATS))
    language = marshmallow.fields.String(
        load_default="en",
        validate=validate.Regexp(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$"),
        metadata={"description": "language code of the document (BCP 47, e.g. en, de, pt-BR)"},
    )
    audience = marshmallow.fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=200),
        metadata={"description": f"who the document is for (unset: {writing.DEFAULT_AUDIENCE})"},
    )
    max_sections = marshmallow.fields.Integer(load_default=8, validate=validate.Range(min=1, max=20))
    as_is = marshmallow.fields.Boolean(
        load_default=False,
        metadata={
            "description": "the content is the finished Markdown document: lay it out and convert it as given "
            "(its first `#` heading is the title, each `##` a section), with no LLM and no key"
        },
    )

    @marshmallow.validates_schema
    def _finished_document(self, data: dict, **kwargs) -> None:
        if not data.get("as_is") or not data.get("content"):
            return
        title, sections = given.split(data["content"], data.get("title"))
        if not title:
            raise marshmallow.ValidationError("give a `title`, or start the content with a `# ` heading", "title")
        if not sections or not any(body for _, body in sections):
            raise marshmallow.ValidationError("has no text besides its title", "content")
        if not all(heading for heading, _ in sections):
            raise marshmallow.ValidationError("has a heading with no text", "content")


class DocumentationProcessor(base.Processor):
    """Plan an outline, write each section, assemble, convert; store the document and toc.json."""

    type = "documentation"
    description = (
        "A guide, reference or notes written by an LLM from given text and faithful to it: "
        "Markdown, HTML or PDF, with a table of contents as JSON."
    )
    Params = Params
    optional_providers = ("openai",)  # for writing; a finished document (`as_is`) needs no key
    policy = Policy(
        max_attempts=3, backoff_base=10.0, soft_timeout=1200.0, hard_timeout=1260.0, pool="io", estimate=90.0
    )

    @classmethod
    def needs(cls, params: dict) -> dict[str, tuple[str, str]]:
        """The LLM, unless the content is the finished document (`as_is`)."""
        if params.get("as_is"):
            return {}
        return {"openai": ("writing the document needs the LLM", " (set `as_is` to lay out a finished document)")}

    def run(self, params: dict, ctx: base.Context) -> dict:
        providers.require(self.needs(params), ctx.settings)  # fail at once, saying which
        if params["as_is"]:
            ctx.progress(0, "sections", "the document as given")
            title, written = given.split(params["content"], params["title"])
            model, usage = None, {}
        else:
            title, written, model, usage = self._write(params, ctx)
        ctx.progress(80, "assembly")
        document = render.assemble(title, written)
        words = sum(len(re.findall(r"\w+", body)) for _, body in written)
        stored, pages = self._store(title, document, params, ctx)
        ctx.progress(100, "done", f"{len(written)} sections, {words} words")
        return {
            "title": title,
            "sections": len(written),
            "section_titles": [title for title, _ in written],
            "words": words,
            "format": params["format"],
            "doc_type": params["doc_type"],
            "language": params["language"],
            "pages": pages,
            "document": stored.get("id"),
            "model": model,
            "usage": usage,
        }

    def _write(self, params: dict, ctx: base.Context) -> tuple[str, list[tuple[str, str]], str, dict]:
        """Outline and write each section with the LLM; return the title, the sections, the
        model and the tokens used."""
        ctx.progress(0, "outline", "planning the sections")
        pieces = writing.passages(params["content"])
        plan = writing.outline(ctx, pieces, params)
        usage = _added({}, plan.usage)
        written, count = [], len(plan.sections)
        for index, planned in enumerate(plan.sections):
            ctx.progress(10 + 70 * index / count, "sections", f"section {index + 1} of {count}: {planned.title}")
            answer = writing.section(ctx, plan, index, pieces, params)
            usage = _added(usage, answer.usage)
            written.append((planned.title, answer.value))
        return plan.title, written, plan.model, usage

    def _store(self, title: str, document: render.Document, params: dict, ctx: base.Context) -> tuple[dict, int | None]:
        asked = params["format"]
        meta = {"title": title, "format": asked, "sections": sum(e["level"] == 2 for e in document.toc)}
        markdown_file = ctx.workdir / "document.md"
        markdown_file.write_text(document.markdown, encoding="utf-8")
        stored = ctx.artifact(markdown_file, "document" if asked == "markdown" else "markdown", MIMES["markdown"], meta)
        pages, count = {}, None
        if asked != "markdown":
            out, pages, count = self._convert(title, document, params, ctx)
            stored = ctx.artifact(out, "document", MIMES[asked], {**meta, "pages": count})
        entries = [{**entry, "page": pages[entry["anchor"]]} if pages else entry for entry in document.toc]
        toc_file = ctx.workdir / "toc.json"
        toc_file.write_text(json.dumps({"title": title, "entries": entries}, indent=2, ensure_ascii=False))
        ctx.artifact(toc_file, "toc", "application/json", {"entries": len(entries)})
        return stored, count

    def _convert(self, title: str, document: render.Document, params: dict, ctx: base.Context) -> tuple:
        """Write the HTML or PDF file; return it, the page of each anchor and the page count."""
        ctx.progress(85, "html")
        page = render.page(title, document.body_html, params["language"])
        out = ctx.workdir / f"document.{SUFFIXES[params['format']]}"
        if params["format"] == "html":
            out.write_text(page, encoding="utf-8")
            return out, {}, None
        ctx.progress(90, "pdf")
        pages, count = render.pdf(page, out)
        ctx.check()
        return out, pages, count


def _added(total: dict, usage: dict) -> dict:
    """Return token counts summed key by key."""
    summed = dict(total)
    for key, value in (usage or {}).items():
        if isinstance(value, int):
            summed[key] = summed.get(key, 0) + value
    return summed
