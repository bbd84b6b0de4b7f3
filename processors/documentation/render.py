"""From written sections to files: the Markdown document (title, table of contents, sections),
HTML converted from it with Python-Markdown (tables, fenced code with Pygments colours, heading
ids from its `toc` extension), a PDF of that HTML with WeasyPrint, and the table of contents as
JSON entries (level, title, anchor, and the page in the PDF).

The LLM's Markdown is not trusted: raw HTML in it is shown as text, links and images keep only
http(s), mailto and in-page targets, and WeasyPrint fetches nothing but `data:` URLs, so a
document can neither run script nor make the worker read files or call the network.
"""

import dataclasses
import html
import pathlib
import re
import xml.etree.ElementTree as etree

import markdown
import pygments.formatters
from markdown.extensions import toc

from processors import errors

CONTENTS = "Contents"
SAFE_SCHEMES = ("http", "https", "mailto")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_ESCAPE = re.compile(r"([\\`*_\[\]#])")

CSS = """
@page { size: A4; margin: 2cm 2cm 2.3cm;
  @bottom-center { content: counter(page) " / " counter(pages); font-size: 9pt; color: #555; } }
html { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 11pt; line-height: 1.5;
  color: #1a1a1a; }
body { max-width: 46em; margin: 0 auto; padding: 1.5em; }
h1, h2, h3, h4 { line-height: 1.25; break-after: avoid; }
h1 { font-size: 2em; margin: 0 0 .6em; }
h2 { font-size: 1.45em; margin-top: 1.8em; border-bottom: 1px solid #ccc; padding-bottom: .2em; }
h3 { font-size: 1.15em; margin-top: 1.3em; }
p, li { orphans: 2; widows: 2; }
code, pre { font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: .9em; }
pre { background: #f5f5f5; border: 1px solid #e2e2e2; padding: .6em .8em; white-space: pre-wrap;
  overflow-wrap: anywhere; break-inside: avoid; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
tr, img { break-inside: avoid; }
img { max-width: 100%; }
a { color: #0b57d0; }
h1 + h2 + ul { list-style: none; padding-left: 0; }
h1 + h2 + ul ul { list-style: none; padding-left: 1.5em; }
@media print {
  body { max-width: none; padding: 0; }
  a { color: inherit; text-decoration: none; }
  h1 + h2 + ul a::after { content: leader(".") target-counter(attr(href), page); }
}
"""

PAGE = """<!DOCTYPE html>
<html lang="{language}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}{code_css}</style>
</head>
<body>
<main>
{body}
</main>
</body>
</html>
"""


@dataclasses.dataclass(frozen=True)
class Document:
    """An assembled document: its Markdown, the HTML of its body, its table of contents."""

    markdown: str
    body_html: str
    toc: list[dict]


def assemble(title: str, sections: list[tuple[str, str]]) -> Document:
    """Assemble `# title`, a linked table of contents and `## section` + body for each section.

    The anchors are the ids Python-Markdown gives the headings, read from a first conversion
    without the contents list (which holds no heading, so the ids cannot change). Raises
    PermanentError if the document's sections are not exactly the given ones, in order.
    """
    _, tokens = convert(_markdown(title, sections, []))
    entries = _entries(tokens)
    tops = [entry for entry in entries if entry["level"] == 2]
    text = _markdown(title, sections, entries)
    body, again = convert(text)
    found = [entry["title"] for entry in tops]
    wanted = [clean for clean, _ in sections]
    if found != wanted or again != tokens:
        raise errors.PermanentError(f"the assembled document's sections {found} differ from the outline's {wanted}")
    return Document(text, body, entries)


def _markdown(title: str, sections: list[tuple[str, str]], entries: list[dict]) -> str:
    contents = "\n".join(
        f"{'    ' * (entry['level'] - 2)}- [{escape(entry['title'])}](#{entry['anchor']})" for entry in entries
    )
    parts = [f"# {escape(title)}", f"## {CONTENTS}", contents]
    for heading, body in sections:
        parts += [f"## {escape(heading)}", body]
    return "\n\n".join(part for part in parts if part) + "\n"


def _entries(tokens: list[dict]) -> list[dict]:
    """Return the level 2 and 3 headings after the contents heading as table-of-contents entries."""
    flat = list(_walk(tokens))
    after = next(i for i, token in enumerate(flat) if token["level"] == 2) + 1
    wanted = [token for token in flat[after:] if token["level"] in (2, 3)]
    return [{"level": t["level"], "title": html.unescape(t["name"]), "anchor": t["id"]} for t in wanted]


def _walk(tokens: list[dict]):
    for token in tokens:
        yield token
        yield from _walk(token["children"])


def escape(text: str) -> str:
    """Escape the characters that would make a title's plain text into Markdown markup."""
    return _ESCAPE.sub(r"\\\1", text)


def convert(text: str) -> tuple[str, list[dict]]:
    """Convert Markdown to HTML (tables, fenced code, heading ids); return it and the heading tree."""
    converter = markdown.Markdown(
        extensions=["tables", "fenced_code", "sane_lists", "codehilite", "toc", _Untrusted()],
        extension_configs={
            # No `[TOC]` marker: a section body that happens to contain one stays text.
            "toc": {"slugify": toc.slugify_unicode, "marker": ""},
            "codehilite": {"guess_lang": False, "css_class": "codehilite"},
        },
        output_format="html",
    )
    return converter.convert(text), converter.toc_tokens


def headings(text: str) -> list[tuple[int, str]]:
    """Return the (level, text) of every heading in a Markdown text, setext ones included."""
    return [(t["level"], html.unescape(t["name"])) for t in _walk(convert(text)[1])]


def page(title: str, body_html: str, language: str) -> str:
    """Return a whole HTML document around `body_html`, with print-friendly CSS."""
    code_css = pygments.formatters.HtmlFormatter(style="default").get_style_defs(".codehilite")
    return PAGE.format(
        language=html.escape(language, quote=True),
        title=html.escape(title),
        css=CSS,
        code_css=code_css,
        body=body_html,
    )


def pdf(page_html: str, path: pathlib.Path) -> tuple[dict[str, int], int]:
    """Write the page as a PDF; return the page (1-based) each element id lands on, and the page count."""
    try:
        # Imported here: it costs half a second and needs Pango, and only PDF runs use it.
        import weasyprint
    except (ImportError, OSError) as exc:
        raise errors.PermanentError(f"PDF output needs WeasyPrint and the Pango libraries: {exc}") from exc
    fetcher = weasyprint.URLFetcher(allowed_protocols={"data"})
    rendered = weasyprint.HTML(string=page_html, url_fetcher=fetcher).render()
    rendered.write_pdf(path)
    pages: dict[str, int] = {}
    for number, rendered_page in enumerate(rendered.pages, 1):
        for anchor in rendered_page.anchors:
            pages.setdefault(anchor, number)
    return pages, len(rendered.pages)


class _Untrusted(markdown.Extension):
    """Show raw HTML as text and drop links and image sources that are not safe to follow."""

    def extendMarkdown(self, md: markdown.Markdown) -> None:
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        md.treeprocessors.register(_SafeUrls(md), "safe_urls", 1)


class _SafeUrls(markdown.treeprocessors.Treeprocessor):
    def run(self, root: etree.Element) -> None:
        for element in root.iter():
            for attribute in ("href", "src"):
                value = element.get(attribute)
                if value is not None and not safe_url(value):
                    del element.attrib[attribute]


def safe_url(value: str) -> bool:
    """Tell whether a link target is in-page, relative, or http(s)/mailto (no javascript: etc.)."""
    compact = re.sub(r"[\x00-\x20]", "", value)
    scheme = _SCHEME.match(compact)
    return scheme is None or scheme.group(1).lower() in SAFE_SCHEMES
