"""The `documentation` type against the fake OpenAI chat API over real HTTP (the real openai SDK):
a document in each format whose headings, ids and toc.json agree (the PDF read back with
pdftotext); a bad outline or section re-asked once, then a clear failure; a rate limit honoured;
token usage summed; untrusted Markdown kept inert; and one task through the API and a worker.
"""

import html.parser
import json
import pathlib
import re
import subprocess
import uuid

import pytest

from app import config
from processors import base, documentation, errors
from processors.documentation import writing
from tests.api import conftest as api_fixtures
from tests.fakes import openai_server
from tests.queue import helpers

CHAT = "/v1/chat/completions"
TITLE = "The Otter Tracker Handbook"
HEADINGS = ["What the tracker is for", "Installing the app", "Recording a sighting", "Exporting the data"]
SOURCE = """## What the tracker is for

The otter tracker records where river otters are seen along the Wensum. Volunteers walk a stretch
of river each week and note every otter they spot, with the time and the place. The records help
the river trust see which banks the otters use, and where new holts may be forming after floods.
Nobody needs training to take part, only patience and a phone.

## Installing the app

The app runs on phones with Android 12 or later. Install it from the trust's page, open it once
while online so it can fetch the river map, and sign in with the code the trust sends by email.
After that first start the app works without a signal, which matters on the quieter stretches.
Keep about 300 MB free for the map tiles.

## Recording a sighting

Tap the otter button as soon as you see one, even before you are sure. The app notes the time and
the place at once; you then add how many otters you saw, whether there were cubs, and what they
were doing. A photo helps but is not required. Sightings stay on the phone until you next have a
signal, then they upload on their own.

## Exporting the data

Coordinators export the season's records as a CSV file from the trust's website. Each row is one
sighting with its date, time, grid reference, count and notes. The export for 2024 held 1,250
sightings from 48 volunteers, and it is the file the annual report is built from.
"""
# Fixed token counts per answer, so the summed usage is known exactly.
OUTLINE_USAGE = {"prompt_tokens": 400, "completion_tokens": 60, "total_tokens": 460}
SECTION_USAGE = {"prompt_tokens": 150, "completion_tokens": 90, "total_tokens": 240}

client = api_fixtures.client
keys = api_fixtures.keys


class Writer:
    """Answers the outline and section requests from what they carry: one section per passage,
    titled by its heading, and a body that repeats the passage's sentences. `spoil` maps a
    section title to bodies to answer first, one per request (bad answers to be re-asked)."""

    def __init__(self):
        self.spoil: dict[str, list[str]] = {}

    def __call__(self, body: dict) -> dict:
        kind = body["response_format"]["json_schema"]["name"]
        user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        passages = dict(re.findall(r"^\[(\d+)\]\n(.*?)(?=\n\n\[\d+\]\n|\Z)", user, re.MULTILINE | re.DOTALL))
        if kind == "DocumentOutline":
            return {"title": TITLE, "sections": [_planned(int(n), text) for n, text in passages.items()]}
        title = re.search(r"^Section to write: (.*)$", user, re.MULTILINE).group(1)
        if self.spoil.get(title):
            return {"markdown": self.spoil[title].pop(0)}
        return {"markdown": "\n\n".join(_faithful(text) for text in passages.values())}


def _planned(number: int, text: str) -> dict:
    heading, _, rest = text.partition("\n\n")
    return {"title": heading.lstrip("# "), "points": _sentences(rest)[:2], "passages": [number]}


def _sentences(text: str) -> list[str]:
    return re.split(r"(?<=\.)\s+", " ".join(text.split()))


def _faithful(passage: str) -> str:
    heading, _, rest = passage.partition("\n\n")
    sentences = _sentences(rest)
    points = "\n".join(f"- {sentence}" for sentence in sentences[1:3])
    return f"## {heading.lstrip('# ')}\n\n{' '.join(sentences)}\n\n## Key points\n\n{points}"


@pytest.fixture
def writer():
    return Writer()


@pytest.fixture
def openai_fake(writer):
    """The fake chat API answering through `writer`, with fixed usage per answer."""
    with openai_server.OpenAIServer() as fake:

        def answer(request):
            outline = request.json["response_format"]["json_schema"]["name"] == "DocumentOutline"
            return _reply(writer(request.json), OUTLINE_USAGE if outline else SECTION_USAGE)

        fake.on(CHAT, answer)
        yield fake


def _reply(content, usage: dict):
    reply = openai_server.chat_reply(content)
    reply.json["usage"] = dict(usage)
    return reply


@pytest.fixture
def settings(settings, openai_fake) -> dict:
    """The end-to-end test's settings, pointed at the fake."""
    return {**settings, **openai_fake.settings()}


def _context(openai_fake, tmp_path) -> base.Context:
    settings = config.load({"CONVEYOR_VAR_DIR": str(tmp_path / "var")}, openai_fake.settings())
    return base.Context("task-doc", 1, tmp_path / "work", settings=settings)


def _run(params: dict, openai_fake, tmp_path, ctx: base.Context | None = None) -> tuple[dict, base.Context]:
    ctx = ctx or _context(openai_fake, tmp_path)
    processor = documentation.DocumentationProcessor()
    return processor.run(processor.load_params({"content": SOURCE, **params}), ctx), ctx


def _artifact(ctx: base.Context, name: str) -> dict:
    (found,) = [item for item in ctx.artifacts if item["name"] == name]
    return found


def _pdftotext(path) -> str:
    done = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _in_order(text: str, items: list[str]) -> None:
    at = 0
    for item in items:
        found = text.find(item, at)
        assert found >= 0, f"{item!r} missing after position {at} in:\n{text}"
        at = found + len(item)


class _Headings(html.parser.HTMLParser):
    """Collects the ids of h1-h3 and the in-page link targets of an HTML page."""

    def __init__(self):
        super().__init__()
        self.ids: list[tuple[int, str]] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("h1", "h2", "h3"):
            self.ids.append((int(tag[1]), attrs.get("id")))
        if tag == "a" and (attrs.get("href") or "").startswith("#"):
            self.links.append(attrs["href"][1:])


def _usage(sections: int) -> dict:
    return {key: OUTLINE_USAGE[key] + sections * SECTION_USAGE[key] for key in OUTLINE_USAGE}


@pytest.mark.parametrize("form", ["markdown", "html", "pdf"])
def test_a_document_in_each_format_with_a_matching_table_of_contents(form, openai_fake, tmp_path):
    result, ctx = _run({"title": TITLE, "format": form, "doc_type": "reference"}, openai_fake, tmp_path)

    names = sorted(item["name"] for item in ctx.artifacts)
    suffix = {"markdown": "md", "html": "html", "pdf": "pdf"}[form]
    assert names == sorted({"document.md", f"document.{suffix}", "toc.json"})
    assert _artifact(ctx, f"document.{suffix}")["kind"] == "document"
    assert (result["title"], result["sections"], result["format"]) == (TITLE, 4, form)
    assert result["section_titles"] == HEADINGS and result["usage"] == _usage(4)
    assert len(openai_fake.requests_to(CHAT)) == 5, "one outline request and one per section"

    toc = json.loads(pathlib.Path(_artifact(ctx, "toc.json")["path"]).read_text())
    entries = toc["entries"]
    assert toc["title"] == TITLE
    assert [e["title"] for e in entries if e["level"] == 2] == HEADINGS
    assert [e["title"] for e in entries if e["level"] == 3] == ["Key points"] * 4
    anchors = [e["anchor"] for e in entries]
    assert len(set(anchors)) == len(anchors), "anchors are unique though subheadings repeat"

    text = pathlib.Path(_artifact(ctx, "document.md")["path"]).read_text()
    assert text.startswith(f"# {TITLE}\n\n## Contents\n")
    _in_order(text, [f"[{e['title']}](#{e['anchor']})" for e in entries] + [f"## {h}\n" for h in HEADINGS])
    assert text.count("\n## ") == 5 and "## What the tracker is for\n\n## " not in text, "no empty section"
    sentences = _sentences(SOURCE.split("## ")[4].partition("\n\n")[2])
    assert all(sentence in " ".join(text.split()) for sentence in sentences), "the source's words, not others"
    assert result["words"] == sum(len(re.findall(r"\w+", s.partition("\n\n")[2])) for s in text.split("\n## ")[2:])

    if form == "html":
        parser = _Headings()
        parser.feed(pathlib.Path(_artifact(ctx, "document.html")["path"]).read_text())
        assert parser.ids[0][0] == 1 and parser.ids[1][0] == 2, "the title, then the contents heading"
        assert [(e["level"], e["anchor"]) for e in entries] == parser.ids[2:]
        assert parser.links == anchors, "the table of contents links every entry"
    if form == "pdf":
        assert all(isinstance(e["page"], int) and e["page"] >= 1 for e in entries)
        pages = _pdftotext(_artifact(ctx, "document.pdf")["path"]).split("\f")
        assert result["pages"] == len([p for p in pages if p.strip()]) >= 2
        _in_order("".join(pages), [TITLE, "Contents", *HEADINGS, *HEADINGS])
        for entry in entries[::2]:
            assert entry["title"] in pages[entry["page"] - 1], f"{entry} is on the page toc.json names"
        assert [e["page"] for e in entries] == sorted(e["page"] for e in entries)
    else:
        assert all("page" not in e for e in entries)


@pytest.mark.parametrize(
    "bad, problem",
    [
        ({"title": TITLE, "sections": []}, "the outline has no sections"),
        (
            {
                "title": TITLE,
                "sections": [
                    {"title": "Recording", "points": ["tap the button"], "passages": [1]},
                    {"title": "recording ", "points": ["add a count"], "passages": [2]},
                ],
            },
            "sections 1 and 2 have the same title 'recording'",
        ),
    ],
)
def test_a_bad_outline_is_asked_again_once_then_fails_clearly(bad, problem, openai_fake, tmp_path):
    openai_fake.queue(CHAT, _reply(bad, OUTLINE_USAGE), _reply(bad, OUTLINE_USAGE))
    ctx = _context(openai_fake, tmp_path)

    with pytest.raises(errors.PermanentError, match="invalid twice") as caught:
        _run({}, openai_fake, tmp_path, ctx)

    assert problem in str(caught.value)
    first, second = openai_fake.requests_to(CHAT)
    assert len(openai_fake.requests_to(CHAT)) == 2
    reask = second.json["messages"][-1]
    assert reask["role"] == "user" and problem in reask["content"]
    assert second.json["messages"][: len(first.json["messages"])] == first.json["messages"]
    assert ctx.artifacts == [] and [r[1] for r in ctx.reports] == ["outline"]


def test_an_outline_citing_missing_passages_is_fixed_by_the_re_ask(openai_fake, tmp_path):
    wrong = {"title": TITLE, "sections": [{"title": "Everything", "points": ["all"], "passages": [1, 99]}]}
    openai_fake.queue(CHAT, _reply(wrong, OUTLINE_USAGE))

    result, _ = _run({}, openai_fake, tmp_path)

    requests = openai_fake.requests_to(CHAT)
    assert len(requests) == 2 + 4 and result["section_titles"] == HEADINGS
    assert "cites passages that do not exist: [99]" in requests[1].json["messages"][-1]["content"]
    assert result["usage"] == {key: 2 * OUTLINE_USAGE[key] + 4 * SECTION_USAGE[key] for key in OUTLINE_USAGE}


def test_a_section_with_an_invented_figure_is_asked_again(writer, openai_fake, tmp_path):
    writer.spoil["Installing the app"] = ["The app needs 512 MB and was first released in 2019."]

    result, ctx = _run({"format": "markdown"}, openai_fake, tmp_path)

    requests = openai_fake.requests_to(CHAT)
    assert len(requests) == 1 + 4 + 1, "only the spoiled section is asked again"
    reask = requests[3].json["messages"][-1]["content"]
    assert "these figures are not in the source: 2019, 512" in reask
    text = pathlib.Path(_artifact(ctx, "document.md")["path"]).read_text()
    assert "512" not in text and "2019" not in text and "about 300 MB free" in text
    assert result["sections"] == 4


def test_an_empty_section_twice_fails_naming_the_problem(writer, openai_fake, tmp_path):
    writer.spoil["Recording a sighting"] = ["", "## Recording a sighting\n"]

    with pytest.raises(errors.PermanentError, match="invalid twice: the section is empty"):
        _run({}, openai_fake, tmp_path)

    assert len(openai_fake.requests_to(CHAT)) == 1 + 2 + 2, "the third section fails after its re-ask"


def test_a_rate_limit_is_waited_out_as_the_server_asks(openai_fake, tmp_path):
    openai_fake.queue(CHAT, openai_server.error(429, "Rate limit reached for requests", retry_after=0.6))

    result, ctx = _run({}, openai_fake, tmp_path)

    requests = openai_fake.requests_to(CHAT)
    assert len(requests) == 1 + 1 + 4 and result["sections"] == 4
    assert requests[1].time - requests[0].time >= 0.6, "Retry-After was honoured"
    assert result["usage"] == _usage(4), "the refused request used no tokens"
    assert any("rate limited" in line for line in ctx.logs)


def test_untrusted_markdown_stays_inert(openai_fake, tmp_path):
    spy = f"{openai_fake.url}/spy.png"
    odd = f"The page showed <script>alert(1)</script> and ![map]({spy}) and [x](javascript:alert(2))."
    extra = f"\n\n## Odd input\n\n{odd}\n"
    ctx = _context(openai_fake, tmp_path)
    processor = documentation.DocumentationProcessor()

    processor.run(processor.load_params({"content": SOURCE + extra, "format": "pdf"}), ctx)

    assert openai_fake.requests_to("/spy.png") == [], "WeasyPrint fetched nothing"
    text = pathlib.Path(_artifact(ctx, "document.md")["path"]).read_text()
    assert "<script>alert(1)</script>" in text, "the Markdown keeps the source's words"
    page = documentation.render.page("t", documentation.render.convert(text)[0], "en")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "javascript:" not in page and f'src="{spy}"' in page
    assert "alert(1)" in _pdftotext(_artifact(ctx, "document.pdf")["path"])


def test_passages_keep_headings_with_their_text_and_cut_long_transcripts():
    pieces = writing.passages(SOURCE)
    assert len(pieces) == 4 and all(p.startswith("## ") and "\n\n" in p for p in pieces)
    transcript = " ".join(f"Sentence number {n} says something about otters." for n in range(200))
    cut = writing.passages(transcript)
    assert len(cut) > 3 and all(len(p) <= writing.MAX_PASSAGE for p in cut)
    assert " ".join(cut) == transcript, "nothing lost or reordered"


@pytest.mark.parametrize(
    "params, field",
    [
        ({"content": "   "}, "content"),
        ({"content": "x" * (documentation.MAX_CONTENT + 1)}, "content"),
        ({"content": "text", "format": "docx"}, "format"),
        ({"content": "text", "doc_type": "novel"}, "doc_type"),
        ({"content": "text", "max_sections": 0}, "max_sections"),
        ({"content": "text", "language": "English"}, "language"),
    ],
)
def test_bad_params_are_refused_naming_the_field(params, field):
    with pytest.raises(errors.InvalidParams) as caught:
        documentation.DocumentationProcessor.load_params(params)
    assert list(caught.value.errors) == [field]


def test_a_pdf_document_through_the_api_and_a_worker(backend, client, keys, processes, openai_fake, tmp_path):
    member = api_fixtures.bearer(keys["a_member"])
    processes.worker("io", concurrency=1)
    params = {"content": SOURCE, "title": TITLE, "format": "pdf"}
    submitted = client.post("/api/documentation/generate", json={"params": params}, headers=member)
    assert submitted.status_code == 202, submitted.get_json()
    task_id = uuid.UUID(submitted.get_json()["task_id"])

    row = helpers.wait_status(task_id, ("succeeded", "failed"), timeout=60)

    assert row.status == "succeeded", row.error
    assert (row.result["sections"], row.result["usage"]) == (4, _usage(4))
    listed = client.get(f"/api/tasks/{task_id}/artifacts", headers=member).get_json()
    by_name = {item["name"]: item for item in listed}
    assert sorted(by_name) == ["document.md", "document.pdf", "toc.json"]
    with client.get(by_name["document.pdf"]["url"], headers=member) as answer:
        assert answer.status_code == 200 and answer.mimetype == "application/pdf"
        (tmp_path / "got.pdf").write_bytes(answer.data)
    _in_order(_pdftotext(tmp_path / "got.pdf"), [TITLE, *HEADINGS, *HEADINGS])
    with client.get(by_name["toc.json"]["url"], headers=member) as answer:
        entries = json.loads(answer.data)["entries"]
    assert [e["title"] for e in entries if e["level"] == 2] == HEADINGS


def test_a_finished_document_is_laid_out_as_given_with_no_key(tmp_path):
    """`as_is`: the content's `#` heading is the title and its `##` headings the sections; text
    before them an Overview; a heading inside a code fence stays code. No LLM, no key."""
    ctx = base.Context("task-doc", 1, tmp_path / "work", settings=config.load({"CONVEYOR_VAR_DIR": str(tmp_path)}))
    assert ctx.settings["OPENAI_API_KEY"] is None
    content = f"# {TITLE}\n\nA handbook for volunteers.\n\n{SOURCE}\n## Shell\n\n```sh\n# not a heading\nls\n```\n"
    processor = documentation.DocumentationProcessor()
    result = processor.run(processor.load_params({"content": content, "as_is": True, "format": "pdf"}), ctx)

    wanted = ["Overview", *HEADINGS, "Shell"]
    assert (result["title"], result["section_titles"], result["model"]) == (TITLE, wanted, None)
    assert result["usage"] == {} and result["sections"] == len(wanted)
    text = pathlib.Path(_artifact(ctx, "document.md")["path"]).read_text()
    assert "A handbook for volunteers." in text and "# not a heading\nls" in text
    sentences = _sentences(SOURCE)
    assert all(sentence in " ".join(text.split()) for sentence in sentences), "every word kept as given"
    _in_order(_pdftotext(_artifact(ctx, "document.pdf")["path"]), [TITLE, "Contents", *wanted, *wanted])
    toc = json.loads(pathlib.Path(_artifact(ctx, "toc.json")["path"]).read_text())
    assert [e["title"] for e in toc["entries"] if e["level"] == 2] == wanted


@pytest.mark.parametrize(
    "params, field",
    [
        ({"content": "no heading, no title", "as_is": True}, "title"),
        ({"content": "# Only a title", "as_is": True}, "content"),
        ({"content": "# Title\n\n## \n\ntext", "as_is": True}, "content"),
    ],
)
def test_a_finished_document_it_cannot_lay_out_is_refused_naming_the_field(params, field):
    with pytest.raises(errors.InvalidParams) as caught:
        documentation.DocumentationProcessor.load_params(params)
    assert list(caught.value.errors) == [field]
