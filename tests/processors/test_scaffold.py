"""`processors new`: the scaffold writes a plugin package that installs, registers its type
through the `conveyor.processors` entry point, and passes its own contract tests.
"""

import os
import pathlib
import subprocess
import sys

import pytest

from app import config
from processors import scaffold

ROOT = pathlib.Path(__file__).resolve().parents[2]
FILES = {
    "pyproject.toml",
    "setup.cfg",
    "README.md",
    "conveyor_word_count/__init__.py",
    "conveyor_word_count/processor.py",
    "tests/test_processor.py",
}


def files_under(directory: pathlib.Path) -> set[str]:
    """Return the relative paths of the files under `directory`."""
    return {path.relative_to(directory).as_posix() for path in directory.rglob("*") if path.is_file()}


def run_python(
    args: list[str], cwd: pathlib.Path, pythonpath: list[pathlib.Path], **settings: str
) -> subprocess.CompletedProcess:
    """Run `python ARGS` with only the given Conveyor settings (none from this shell)."""
    env = {key: value for key, value in os.environ.items() if key not in config.SETTINGS}
    env.update(settings, PYTHONPATH=os.pathsep.join(str(path) for path in [*pythonpath, ROOT]))
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


# --- create() ----------------------------------------------------------------------------------


def test_writes_the_plugin_package(tmp_path):
    target = scaffold.create("word_count", tmp_path / "plugin")
    assert target == tmp_path / "plugin"
    assert files_under(target) == FILES
    setup = (target / "setup.cfg").read_text()
    assert "conveyor.processors =\n    word_count = conveyor_word_count.processor:WordCountProcessor" in setup
    source = (target / "conveyor_word_count/processor.py").read_text()
    compile(source, "processor.py", "exec")
    assert 'type = "word_count"' in source and "class WordCountProcessor(base.Processor)" in source
    assert "processors.testing" in (target / "README.md").read_text()


def test_writes_into_conveyor_name_by_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = scaffold.create("my_type", None)
    assert target.resolve() == tmp_path / "conveyor-my-type"
    assert (tmp_path / "conveyor-my-type/conveyor_my_type/processor.py").is_file()


def test_fills_an_empty_directory(tmp_path):
    assert files_under(scaffold.create("word_count", tmp_path)) == FILES


def test_refuses_to_overwrite_a_non_empty_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        scaffold.create("word_count", tmp_path)
    assert files_under(tmp_path) == {"notes.txt"}


def test_refuses_a_file_in_the_way(tmp_path):
    (tmp_path / "plugin").write_text("mine")
    with pytest.raises(ValueError, match="not a directory"):
        scaffold.create("word_count", tmp_path / "plugin")


@pytest.mark.parametrize("name", ["BAD-NAME", "1st", "_hidden", "has space", "Upper", "", "a" * 64])
def test_refuses_a_bad_name(tmp_path, name):
    with pytest.raises(ValueError, match="must be a lowercase letter"):
        scaffold.create(name, tmp_path / "plugin")
    assert not (tmp_path / "plugin").exists()


def test_refuses_a_builtin_name(tmp_path):
    with pytest.raises(ValueError, match="'sleep' is built in"):
        scaffold.create("sleep", tmp_path / "plugin")


# --- the generated plugin, installed -----------------------------------------------------------


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> dict:
    """Scaffold `word_count` with the CLI and write its package metadata into a site folder."""
    root = tmp_path_factory.mktemp("plugin")
    package, site = root / "conveyor-word-count", root / "site"
    made = run_python(
        ["-m", "app.cli", "processors", "new", "word_count", "--dir", str(package)],
        root,
        [],
        CONVEYOR_VAR_DIR=str(root / "var"),
    )
    assert made.returncode == 0, made.stderr
    site.mkdir()
    # What `pip install` would write, made offline: `pip install --target` needs bdist_wheel,
    # which setuptools < 70.1 lacks without the `wheel` package. egg_info writes the same
    # entry_points.txt from the generated setup.cfg, and importlib.metadata reads it.
    built = run_python(
        ["-c", "import setuptools; setuptools.setup()", "egg_info", "--egg-base", str(site)], package, []
    )
    assert built.returncode == 0, built.stderr
    return {"root": root, "package": package, "path": [site, package]}


def test_installed_plugin_declares_its_entry_point(plugin):
    metadata = plugin["path"][0] / "conveyor_word_count.egg-info"
    assert (metadata / "top_level.txt").read_text().split() == ["conveyor_word_count"]
    assert (
        "word_count = conveyor_word_count.processor:WordCountProcessor" in (metadata / "entry_points.txt").read_text()
    )


def test_processors_list_shows_the_installed_type(plugin):
    listed = run_python(
        ["-m", "app.cli", "processors", "list"],
        plugin["root"],
        plugin["path"],
        CONVEYOR_VAR_DIR=str(plugin["root"] / "var"),
        CONVEYOR_POLICIES='{"word_count": {"max_attempts": 5}}',
    )
    assert listed.returncode == 0, listed.stderr
    line = next((line for line in listed.stdout.splitlines() if line.startswith("word_count ")), None)
    assert line is not None, listed.stdout
    assert "attempts=5" in line and "  available  " in line
    assert line.endswith("(conveyor_word_count.processor:WordCountProcessor)"), "the entry point names its origin"


def test_generated_tests_pass(plugin):
    tested = run_python(
        ["-m", "pytest", str(plugin["package"] / "tests"), "-q", "-p", "no:cacheprovider"],
        plugin["root"],
        plugin["path"],
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "3 passed" in tested.stdout


def test_cli_refuses_a_bad_name(tmp_path):
    refused = run_python(
        ["-m", "app.cli", "processors", "new", "BAD-NAME"], tmp_path, [], CONVEYOR_VAR_DIR=str(tmp_path / "var")
    )
    assert refused.returncode != 0
    assert "'BAD-NAME' must be a lowercase letter" in refused.stderr
    assert not list(tmp_path.glob("conveyor-*"))
