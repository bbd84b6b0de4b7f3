"""Scaffold a processor plugin (`manage.py processors new NAME`): an installable package with a
processor, its contract test and a README, rendered from the `.tmpl` files beside this module
with `string.Template` (Python and TOML are full of braces, so no `str.format`).
"""

import importlib.resources
import pathlib
import string

import processors
from processors import registry

# template -> where it goes in the new package; the path is a template too.
FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "setup.cfg.tmpl": "setup.cfg",
    "README.md.tmpl": "README.md",
    "package_init.py.tmpl": "$package/__init__.py",
    "processor.py.tmpl": "$package/processor.py",
    "test_processor.py.tmpl": "tests/test_processor.py",
}


def create(name: str, directory: pathlib.Path | None = None) -> pathlib.Path:
    """Write a plugin package for task type `name` and return its directory.

    directory: where to write it (default `./conveyor-NAME`, underscores as dashes); it may
    exist only if empty. Raises ValueError for a bad name or a directory in the way.
    """
    check_name(name)
    values = names(name)
    target = pathlib.Path(directory) if directory is not None else pathlib.Path(values["dist"])
    _check_target(target)
    for template, relative in FILES.items():
        _write(target / string.Template(relative).substitute(values), render(template, values))
    return target


def check_name(name: str) -> None:
    """Raise ValueError unless `name` is a valid task type that no built-in type has."""
    if not isinstance(name, str) or not registry.TYPE_NAME.match(name):
        raise ValueError(
            f"task type {name!r} must be a lowercase letter followed by up to 62 "
            f"lowercase letters, digits or underscores ({registry.TYPE_NAME.pattern})"
        )
    if name in _builtin_types():
        raise ValueError(
            f"task type {name!r} is built in; the registry would refuse a plugin with the same type as a duplicate"
        )


def _builtin_types() -> set[str]:
    return {registry.import_path(path).type for path in processors.BUILTIN}


def names(name: str) -> dict[str, str]:
    """Return the names a plugin for task type `name` uses, as template values."""
    camel = "".join(part.capitalize() for part in name.split("_"))
    return {"name": name, "camel": camel, "package": f"conveyor_{name}", "dist": f"conveyor-{name.replace('_', '-')}"}


def render(template: str, values: dict[str, str]) -> str:
    """Return the text of the template file `template` filled with `values`."""
    text = importlib.resources.files(__name__).joinpath(template).read_text(encoding="utf-8")
    return string.Template(text).substitute(values)


def _check_target(target: pathlib.Path) -> None:
    if target.exists() and not target.is_dir():
        raise ValueError(f"{target} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()):
        raise ValueError(f"directory {target} is not empty; refusing to overwrite it")


def _write(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
