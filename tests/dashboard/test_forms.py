"""The New task form's generator on its own: a params JSON Schema to fields, a posted form back
to params, and the service's nested error messages onto the fields they name."""

from werkzeug.datastructures import MultiDict

from app.dashboard import forms

COMPONENTS = {
    "Source": {
        "type": "object",
        "properties": {"url": {"type": "string", "format": "url"}, "upload_id": {"type": "string", "format": "uuid"}},
    }
}
SCHEMA = {
    "type": "object",
    "properties": {
        "prompt": {"type": "string", "minLength": 1, "maxLength": 4000},
        "title": {"type": ["string", "null"], "default": None, "maxLength": 200},
        "resolution": {"type": "integer", "default": 720, "enum": [360, 720, 1080]},
        "rate": {"type": "number", "default": 1.0, "minimum": 0.5, "maximum": 2.0},
        "pitch": {"type": ["integer", "null"], "default": None, "minimum": 0, "maximum": 99},
        "subtitles": {"type": "boolean", "default": True},
        "kinds": {"type": "array", "items": {"type": "string", "enum": ["a", "b", "c"]}},
        "source": {"$ref": "#/components/schemas/Source", "description": "where the video is"},
        "scenes": {"type": "array", "items": {"$ref": "#/components/schemas/Scene"}},
        "echo": {"default": None},
    },
    "required": ["prompt"],
}


def _by_name(fields) -> dict:
    found = {}
    for field in fields:
        found[field.name] = field
        found.update(_by_name(field.children))
    return found


def test_widgets_follow_the_schema():
    fields = _by_name(forms.build(SCHEMA, COMPONENTS))
    widgets = {name: field.widget for name, field in fields.items()}
    assert widgets == {
        "p.prompt": "textarea",
        "p.title": "text",
        "p.resolution": "select",
        "p.rate": "number",
        "p.pitch": "number",
        "p.subtitles": "checkbox",
        "p.kinds": "checks",
        "p.source": "group",
        "p.source.url": "text",
        "p.source.upload_id": "text",
        "p.scenes": "json",
        "p.echo": "json",
    }
    assert fields["p.prompt"].required and not fields["p.title"].required
    assert fields["p.resolution"].options == [360, 720, 1080] and fields["p.resolution"].value == "720"
    assert fields["p.rate"].value == "1.0" and fields["p.title"].value == ""
    assert fields["p.rate"].limits == "from 0.5 to 2" and fields["p.resolution"].limits == ""
    assert fields["p.subtitles"].value is True
    assert fields["p.source"].description == "where the video is" and fields["p.source.url"].id == "f-source-url"


def test_a_posted_form_reads_back_into_params_and_blanks_keep_defaults():
    fields = forms.build(SCHEMA, COMPONENTS)
    form = MultiDict(
        [
            ("p.prompt", "a cat"),
            ("p.title", ""),
            ("p.resolution", "1080"),
            ("p.rate", "1.5"),
            ("p.pitch", "40"),
            ("p.subtitles", "false"),
            ("p.kinds", "a"),
            ("p.kinds", "c"),
            ("p.source.url", "http://127.0.0.1/v.mp4"),
            ("p.source.upload_id", ""),
            ("p.scenes", '[{"narration": "hi"}]'),
        ]
    )
    params, problems = forms.read(fields, form)
    assert problems == {}
    assert params == {
        "prompt": "a cat",
        "resolution": 1080,
        "rate": 1.5,
        "pitch": 40,
        "subtitles": False,
        "kinds": ["a", "c"],
        "source": {"url": "http://127.0.0.1/v.mp4"},
        "scenes": [{"narration": "hi"}],
    }
    checked = MultiDict([("p.subtitles", "false"), ("p.subtitles", "true")])  # the hidden field, then the box
    assert forms.read(fields, checked)[0] == {"subtitles": True}


def test_unreadable_values_are_problems_of_their_fields():
    fields = forms.build(SCHEMA, COMPONENTS)
    form = MultiDict([("p.pitch", "4.5"), ("p.rate", "fast"), ("p.resolution", "999"), ("p.echo", "{")])
    params, problems = forms.read(fields, form)
    assert params == {}
    assert problems[("pitch",)] == ["must be a whole number"]
    assert problems[("rate",)] == ["must be a number"]
    assert problems[("resolution",)] == ["must be one of: 360, 720, 1080"]
    assert problems[("echo",)][0].startswith("not valid JSON")


def test_service_errors_land_on_the_fields_they_name():
    fields = forms.build(SCHEMA, COMPONENTS)
    messages = {
        "prompt": ["Missing data for required field."],
        "source": {"url": ["Not a valid URL."]},
        "scenes": {"0": {"narration": ["Shorter than minimum length 1."]}},
        "_schema": ["give a prompt or scenes"],
        "colour": ["Unknown field."],
    }
    unplaced = forms.place(fields, messages)
    named = _by_name(fields)
    assert named["p.prompt"].errors == ["Missing data for required field."]
    assert named["p.source.url"].errors == ["Not a valid URL."]
    assert named["p.scenes"].errors == ["0.narration: Shorter than minimum length 1."]
    assert unplaced == ["give a prompt or scenes", "colour: Unknown field."]
    shown = _by_name(forms.build(SCHEMA, COMPONENTS, MultiDict([("p.rate", "3")])))
    assert shown["p.rate"].value == "3" and shown["p.subtitles"].value is False  # a posted form shows what was sent
