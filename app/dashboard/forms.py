"""The New task form, generated from a type's params JSON Schema (as `/api/task-types` gives
it): enums become selects, numbers become number inputs with their limits, booleans
checkboxes, lists of choices checkbox groups, nested objects field groups, and anything else
a JSON text area. The posted form is read back into params for `tasks.submit`, and the
service's field errors are placed next to the fields they name.

Form names are the params' paths under `p.` (`p.source.url`). A field left empty is left out,
so the type's default applies.
"""

import dataclasses
import json
from typing import Any

PREFIX = "p"
# Nested objects deeper than this are edited as JSON.
MAX_DEPTH = 4
# Strings longer than this get a text area.
TEXTAREA_FROM = 300


@dataclasses.dataclass
class Field:
    """One form field (or a group of them) for a param."""

    path: tuple[str, ...]
    widget: str  # select, number, checkbox, checks, text, textarea, json, group
    schema: dict
    required: bool = False
    options: list = dataclasses.field(default_factory=list)
    children: list["Field"] = dataclasses.field(default_factory=list)
    value: Any = None
    errors: list[str] = dataclasses.field(default_factory=list)

    @property
    def name(self) -> str:
        """The form field's name (`p.source.url`)."""
        return ".".join((PREFIX, *self.path))

    @property
    def id(self) -> str:
        """The element id (`f-source-url`)."""
        return "f-" + "-".join(self.path)

    @property
    def label(self) -> str:
        """The label: the schema's title, else the param's name in words."""
        return self.schema.get("title") or self.path[-1].replace("_", " ").capitalize()

    @property
    def description(self) -> str:
        """The schema's description, shown as a hint."""
        return self.schema.get("description", "")

    @property
    def default(self) -> Any:
        """The schema's default value."""
        return self.schema.get("default")

    @property
    def limits(self) -> str:
        """The allowed range of a number, in words ("" when open)."""
        low, high = self.schema.get("minimum"), self.schema.get("maximum")
        if low is not None and high is not None:
            return f"from {low:g} to {high:g}"
        if low is not None:
            return f"at least {low:g}"
        return f"at most {high:g}" if high is not None else ""


def build(schema: dict, components: dict, form=None) -> list[Field]:
    """Return the fields of a params schema; `components` resolves `$ref`s; `form` (a posted
    MultiDict) fills the values back in, else the defaults show."""
    return _fields(_resolve(schema, components), components, (), form, depth=0)


def _fields(schema: dict, components: dict, path: tuple, form, depth: int) -> list[Field]:
    required = set(schema.get("required", ()))
    found = []
    for name, raw in schema.get("properties", {}).items():
        node = _resolve(raw, components)
        field = _field(node, components, (*path, name), form, depth)
        field.required = name in required and not path  # a nested group may be left out whole
        found.append(field)
    return found


def _field(node: dict, components: dict, path: tuple, form, depth: int) -> Field:
    kinds = _types(node)
    if "enum" in node:
        field = Field(path, "select", node, options=[v for v in node["enum"] if v is not None])
    elif kinds == {"object"} and "properties" in node and depth < MAX_DEPTH:
        children = _fields(node, components, path, form, depth + 1)
        return Field(path, "group", node, children=children)
    elif kinds == {"array"} and "enum" in _resolve(node.get("items", {}), components):
        field = Field(path, "checks", node, options=_resolve(node["items"], components)["enum"])
    elif kinds and kinds <= {"integer", "number"}:
        field = Field(path, "number", node)
    elif kinds == {"boolean"}:
        field = Field(path, "checkbox", node)
    elif kinds == {"string"}:
        long = node.get("maxLength", 0) > TEXTAREA_FROM
        field = Field(path, "textarea" if long else "text", node)
    else:
        field = Field(path, "json", node)
    field.value = _shown(field, form)
    return field


def _shown(field: Field, form) -> Any:
    """The value the field shows: what was posted, else the default."""
    if form is not None:
        if field.widget == "checks":
            return form.getlist(field.name)
        if field.widget == "checkbox":
            return (form.getlist(field.name) or ["false"])[-1] == "true"
        return form.get(field.name, "")
    default = field.default
    if field.widget == "checks":
        return [str(v) for v in default or []]
    if field.widget == "checkbox":
        return bool(default)
    if field.widget == "json":
        return "" if default is None else json.dumps(default)
    return "" if default is None else label_of(default)


def read(fields: list[Field], form) -> tuple[dict, dict[tuple, list[str]]]:
    """Return the params a posted form gives, and the problems found reading it (by path)."""
    params: dict = {}
    problems: dict[tuple, list[str]] = {}
    for field in fields:
        if field.widget == "group":
            inner, found = read(field.children, form)
            problems.update(found)
            if inner:
                params[field.path[-1]] = inner
            continue
        try:
            value = _value(field, form)
        except ValueError as exc:
            problems[field.path] = [str(exc)]
            continue
        if value is not _EMPTY:
            params[field.path[-1]] = value
    return params, problems


_EMPTY = object()


def _value(field: Field, form) -> Any:
    if field.widget == "checks":
        chosen = form.getlist(field.name)
        return [_choice(field.options, raw) for raw in chosen] if chosen else _EMPTY
    if field.widget == "checkbox":
        sent = form.getlist(field.name)
        return sent[-1] == "true" if sent else _EMPTY
    raw = form.get(field.name, "")
    if raw == "":
        return _EMPTY
    if field.widget == "select":
        return _choice(field.options, raw)
    if field.widget == "number":
        return _number(raw, "integer" in _types(field.schema))
    if field.widget == "json":
        try:
            return json.loads(raw)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
            raise ValueError(f"not valid JSON: {exc}") from None
    return raw


def _choice(options: list, raw: str) -> Any:
    for option in options:
        if label_of(option) == raw:
            return option
    raise ValueError(f"must be one of: {', '.join(label_of(o) for o in options)}")


def _number(raw: str, integer: bool) -> int | float:
    try:
        number = float(raw)
    except ValueError:
        raise ValueError("must be a number") from None
    if integer:
        if not number.is_integer():
            raise ValueError("must be a whole number")
        return int(number)
    return number


def label_of(option: Any) -> str:
    """Return how an enum value is written in the form (JSON's spelling for booleans)."""
    return json.dumps(option) if isinstance(option, bool) else str(option)


def place(fields: list[Field], messages: dict) -> list[str]:
    """Attach the service's `params` error messages to the fields they name; return those
    that name no field (they show above the form)."""
    by_path = {field.path: field for field in _walk(fields)}
    unplaced = []
    for path, text in _flatten(messages, ()):
        field = _closest(by_path, path)
        if field is None:
            unplaced.append(f"{'.'.join(path)}: {text}" if path and path != ("_schema",) else text)
        else:
            rest = path[len(field.path) :]
            field.errors.append(f"{'.'.join(rest)}: {text}" if rest else text)
    return unplaced


def place_problems(fields: list[Field], problems: dict[tuple, list[str]]) -> None:
    """Attach the problems `read` found to their fields."""
    by_path = {field.path: field for field in _walk(fields)}
    for path, texts in problems.items():
        by_path[path].errors.extend(texts)


def _walk(fields: list[Field]):
    for field in fields:
        yield field
        yield from _walk(field.children)


def _closest(by_path: dict, path: tuple) -> Field | None:
    for end in range(len(path), 0, -1):
        if path[:end] in by_path:
            return by_path[path[:end]]
    return None


def _flatten(messages, path: tuple):
    """Yield (path, message) from marshmallow's nested messages (dicts, lists, list indexes)."""
    if isinstance(messages, dict):
        for key, inner in messages.items():
            yield from _flatten(inner, (*path, str(key)))
    elif isinstance(messages, list | tuple):
        for inner in messages:
            yield from _flatten(inner, path)
    else:
        yield path, str(messages)


def _types(node: dict) -> set[str]:
    kinds = node.get("type")
    if kinds is None:
        return set()
    return ({kinds} if isinstance(kinds, str) else set(kinds)) - {"null"}


def _resolve(node: dict, components: dict) -> dict:
    """Return the node with a `$ref` to `#/components/schemas/...` replaced by its target
    (keys next to the `$ref`, such as `description`, win)."""
    ref = node.get("$ref")
    if not ref:
        return node
    target = components.get(ref.rsplit("/", 1)[-1], {})
    return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
