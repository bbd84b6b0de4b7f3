"""Static checks of docker-compose.yml and the Dockerfile against the code they run.

There is no Docker engine here, so nothing is started: the files are parsed, and each service's
command is resolved against the real CLI (click), gunicorn and the settings loader, in
subprocesses that use a temporary var dir (SQLite, no servers).
"""

import configparser
import functools
import importlib
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
import yaml
from packaging.requirements import Requirement

from app import config
from processors.policy import POOLS

ROOT = pathlib.Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
# What the image needs at run time besides what setup.cfg reads: the CLI script, the Celery
# settings module (top level, outside the packages), the packages and the migrations.
# gunicorn.conf.py: gunicorn reads it from the working directory (the GC freeze of each worker).
RUNTIME_FILES = {
    "manage.py",
    "celeryconfig.py",
    "gunicorn.conf.py",
    "app",
    "processors",
    "migrations",
    "setup.cfg",
    "pyproject.toml",
}


# --- reading the files -----------------------------------------------------------------------


@functools.cache
def compose() -> dict:
    """Return the parsed compose file."""
    return yaml.safe_load(COMPOSE.read_text())


def services() -> dict:
    return compose()["services"]


def project_services() -> list[str]:
    """Return the services built from this repository (the Conveyor image)."""
    return sorted(name for name, spec in services().items() if "build" in spec)


def build_context(name: str) -> pathlib.Path:
    build = services()[name]["build"]
    context = build if isinstance(build, str) else build.get("context", ".")
    return (COMPOSE.parent / context).resolve()


def dockerfile_path(name: str) -> pathlib.Path:
    build = services()[name]["build"]
    relative = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    return build_context(name) / relative


def instructions(path: pathlib.Path) -> list[tuple[str, str]]:
    """Return a Dockerfile's (INSTRUCTION, arguments), continuation lines joined."""
    lines, current = [], ""
    for line in path.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        lines.append(current + line)
        current = ""
    parsed = []
    for line in lines:
        keyword, _, rest = line.strip().partition(" ")
        parsed.append((keyword.upper(), rest.strip()))
    return parsed


def exec_form(text: str) -> list[str]:
    """Return the words of a Dockerfile CMD or COPY, in JSON or shell form."""
    return json.loads(text) if text.startswith("[") else shlex.split(text)


def interpolate(value) -> str:
    """Resolve compose `${VAR...}` references as if the host set none of them."""
    if value is None:
        return ""  # a name with no value passes the host's value through: unset here

    def resolve(match: re.Match) -> str:
        name, operator, default = match.group(1), match.group(2) or "", match.group(3) or ""
        if operator.endswith("?"):
            pytest.fail(f"${{{name}}} must be set on the host: give it a default instead")
        return default if operator.endswith("-") else ""

    text = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}", resolve, str(value))
    return text.replace("$$", "$")


def environment(name: str) -> dict[str, str]:
    """Return the environment a service sets, interpolated."""
    env = services()[name].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {key: interpolate(value) for key, value in env.items()}


def command(name: str) -> list[str]:
    """Return a project service's argv: its own command, else the image's CMD."""
    spec = services()[name]
    if "command" in spec:
        raw = spec["command"]
        return shlex.split(raw) if isinstance(raw, str) else [str(word) for word in raw]
    commands = [rest for keyword, rest in instructions(dockerfile_path(name)) if keyword == "CMD"]
    assert commands, f"{name} has no command and its image no CMD"
    return exec_form(commands[-1])


def manage_args(name: str) -> list[str] | None:
    """Return the arguments after `python manage.py`, or None for another program."""
    argv = command(name)
    if len(argv) >= 2 and pathlib.PurePath(argv[0]).name.startswith("python") and argv[1] == "manage.py":
        return argv[2:]
    return None


def option_value(args: list[str], option: str) -> str | None:
    """Return the value given to `option` in `args` (`--opt value` or `--opt=value`)."""
    for index, word in enumerate(args):
        if word == option and index + 1 < len(args):
            return args[index + 1]
        if word.startswith(option + "="):
            return word.partition("=")[2]
    return None


def subprocess_env(var_dir: pathlib.Path) -> dict[str, str]:
    """Return a clean environment for the project's code: no settings but a temporary var dir."""
    env = {key: value for key, value in os.environ.items() if key not in config.SETTINGS}
    env["CONVEYOR_VAR_DIR"] = str(var_dir)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return env


def run_python(args: list[str], tmp_path: pathlib.Path) -> subprocess.CompletedProcess:
    # cwd is the temporary dir, so a developer's .env and ./var are neither read nor written.
    return subprocess.run(
        [sys.executable, *args],
        check=False,
        cwd=tmp_path,
        env=subprocess_env(tmp_path / "var"),
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- commands --------------------------------------------------------------------------------


def check_manage_command(args: list[str], tmp_path: pathlib.Path) -> None:
    """Assert `manage.py ARGS` names a real leaf command of our CLI with valid options."""
    assert (ROOT / "manage.py").is_file()
    done = run_python(["-m", "app.cli", *args, "--help"], tmp_path)
    assert done.returncode == 0, f"manage.py {' '.join(args)}: {done.stderr or done.stdout}"
    usage = next(line for line in done.stdout.splitlines() if line.startswith("Usage:"))
    assert "COMMAND [ARGS]" not in usage, f"manage.py {' '.join(args)} names a group, not a command: {usage}"
    path = [word for word in usage.split()[2:] if not word.startswith("[") and not word.isupper()]
    words = [word for word in args if not word.startswith("-")]
    assert path and words[: len(path)] == path, f"{args} resolved to {usage!r}"
    # `--help` stops click before it checks choices; check them against the help text.
    for option, choices in re.findall(r"(--[\w-]+) \[([^\]]+)\]", done.stdout):
        value = option_value(args, option)
        assert value is None or value in choices.split("|"), f"{option} {value!r} is not one of {choices}"


def check_gunicorn_command(argv: list[str], tmp_path: pathlib.Path) -> None:
    """Assert gunicorn is installed, accepts the options, and loads the app factory."""
    from gunicorn import config as gunicorn_config

    cfg = gunicorn_config.Config()
    parsed = cfg.parser().parse_args(argv[1:])
    assert len(parsed.args) == 1, f"gunicorn needs one app, got {parsed.args}"
    if parsed.worker_class:
        cfg.set("worker_class", parsed.worker_class)
        assert cfg.worker_class  # imports the worker class (gthread)
    module_name, _, expression = parsed.args[0].partition(":")
    factory = getattr(importlib.import_module(module_name), expression.partition("(")[0])
    assert callable(factory), f"{parsed.args[0]} is not a callable"
    done = run_python(["-m", "gunicorn", "--check-config", *argv[1:]], tmp_path)
    assert done.returncode == 0, f"gunicorn cannot load {parsed.args[0]}: {done.stderr[-2000:]}"


@pytest.mark.parametrize("name", project_services())
def test_command_exists(name, tmp_path):
    argv = command(name)
    args = manage_args(name)
    if args is not None:
        check_manage_command(args, tmp_path)
    elif pathlib.PurePath(argv[0]).name == "gunicorn":
        check_gunicorn_command(argv, tmp_path)
    else:
        pytest.fail(f"{name} runs {argv[0]!r}: not a program of this project")


def test_services_run_the_platform():
    commands = [manage_args(name) or command(name)[:1] for name in project_services()]
    assert ["db", "upgrade"] in [args[:2] for args in commands]
    assert ["sweeper"] in [args[:1] for args in commands]
    assert ["gunicorn"] in [args[:1] for args in commands]


def worker_pools() -> dict[str, str | None]:
    """Return the pool each worker service serves."""
    pools = {}
    for name in project_services():
        args = manage_args(name) or []
        if args[:1] == ["worker"]:
            pools[name] = option_value(args, "--pool")
    return pools


def test_worker_pools_are_known():
    assert worker_pools()
    for name, pool in worker_pools().items():
        assert pool in POOLS, f"{name} serves pool {pool!r}; pools are {POOLS}"


def test_every_pool_has_a_worker():
    missing = set(POOLS) - set(worker_pools().values())
    assert not missing, f"no worker service for pool(s) {sorted(missing)}"


# --- dependencies and health -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name", [n for n in project_services() if (manage_args(n) or [""])[0] in ("worker", "sweeper")]
)
def test_workers_and_sweepers_check_their_own_health(name, tmp_path):
    """Each worker and sweeper service has a healthcheck running its own `--check`, for its own
    pool; the command exists, and on a container with nothing serving it exits 1."""
    test = services()[name].get("healthcheck", {}).get("test")
    assert test and test[0] == "CMD", f"{name} has no exec-form healthcheck"
    argv = test[1:]
    assert argv[:2] == ["python", "manage.py"] and "--check" in argv, argv
    args = argv[2:]
    assert args[0] == manage_args(name)[0] and option_value(args, "--pool") == option_value(manage_args(name), "--pool")
    check_manage_command([word for word in args if word != "--check"], tmp_path)
    done = run_python(["-m", "app.cli", *args], tmp_path)
    assert done.returncode == 1 and "heartbeat" in done.stderr, done.stderr


def dependencies(name: str) -> dict[str, str]:
    """Return a service's dependencies with their conditions."""
    depends = services()[name].get("depends_on") or {}
    if isinstance(depends, list):
        return {target: "service_started" for target in depends}
    return {target: (spec or {}).get("condition", "service_started") for target, spec in depends.items()}


def test_depends_on_names_defined_services():
    for name in services():
        for target, condition in dependencies(name).items():
            assert target in services(), f"{name} depends on undefined service {target!r}"
            assert condition in CONDITIONS, f"{name} -> {target}: unknown condition {condition!r}"
            if condition == "service_healthy":
                assert "healthcheck" in services()[target], (
                    f"{name} waits for {target} to be healthy; it has no healthcheck"
                )


def test_dependencies_have_no_cycle():
    done, visiting = set(), set()

    def visit(name):
        assert name not in visiting, f"dependency cycle through {name}"
        if name in done:
            return
        visiting.add(name)
        for target in dependencies(name):
            visit(target)
        visiting.discard(name)
        done.add(name)

    for name in services():
        visit(name)


def test_platform_waits_for_migrations():
    migrate = [name for name in project_services() if (manage_args(name) or [])[:2] == ["db", "upgrade"]]
    assert len(migrate) == 1
    assert services()[migrate[0]].get("restart", "no") == "no", "migrations must run once"
    assert dependencies(migrate[0]).get("postgres") == "service_healthy"
    for name in set(project_services()) - set(migrate):
        assert dependencies(name).get(migrate[0]) == "service_completed_successfully", (
            f"{name} may start before the schema is migrated"
        )


@pytest.mark.parametrize("name, probe", [("postgres", "pg_isready"), ("redis", "redis-cli ping")])
def test_healthchecks(name, probe):
    check = services()[name].get("healthcheck")
    assert check and not check.get("disable"), f"{name} has no healthcheck"
    test = check["test"]
    text = test if isinstance(test, str) else " ".join(test[1:])
    assert probe in text


# --- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", project_services())
def test_environment_names_are_settings(name):
    unknown = set(environment(name)) - set(config.SETTINGS)
    assert not unknown, f"{name} sets {sorted(unknown)}, which app/config.py does not know"


@pytest.mark.parametrize("name", project_services())
def test_environment_loads(name):
    settings = config.load(environ=environment(name))
    assert settings["DATABASE_URL"].startswith("postgresql+psycopg2://")
    assert settings["BROKER_URL"].startswith("redis://")
    assert not config.is_embedded(settings)


def test_project_services_share_settings():
    shared = ("DATABASE_URL", "BROKER_URL", "CONVEYOR_VAR_DIR")
    seen = {tuple(environment(name).get(key) for key in shared) for name in project_services()}
    assert len(seen) == 1, f"services disagree on {shared}: {seen}"


def test_urls_point_at_services():
    env = environment(project_services()[0])
    database = urlsplit(env["DATABASE_URL"])
    postgres = services()[database.hostname]
    assert postgres["image"].startswith("postgres:")
    db_env = postgres["environment"]
    assert (database.username, database.password, database.path.lstrip("/"), database.port) == (
        db_env["POSTGRES_USER"],
        db_env["POSTGRES_PASSWORD"],
        db_env["POSTGRES_DB"],
        5432,
    )
    for key in ("BROKER_URL",):
        url = urlsplit(env[key])
        assert services()[url.hostname]["image"].startswith("redis:"), f"{key} points at {url.hostname}"
        assert url.port == 6379


def mounts(name: str) -> dict[str, str]:
    """Return a service's named-volume mounts: target path -> volume."""
    found = {}
    for volume in services()[name].get("volumes") or []:
        if isinstance(volume, str):
            source, _, target = volume.partition(":")
            target = target.partition(":")[0]
        else:
            source, target = volume.get("source"), volume.get("target")
        if source and not source.startswith((".", "/", "~")):
            found[target] = source
    return found


def test_named_volumes_are_declared():
    declared = set(compose().get("volumes") or {})
    for name in services():
        for target, volume in mounts(name).items():
            assert volume in declared, f"{name} mounts undeclared volume {volume!r} at {target}"


def test_var_dir_is_one_shared_volume():
    volumes = set()
    for name in project_services():
        var_dir = environment(name)["CONVEYOR_VAR_DIR"]
        assert var_dir in mounts(name), f"{name} keeps {var_dir} (artifacts) in its own container"
        volumes.add(mounts(name)[var_dir])
    assert len(volumes) == 1, f"workers and API see different var dirs: {volumes}"


# --- Dockerfile ------------------------------------------------------------------------------


def dockerfiles() -> list[pathlib.Path]:
    return sorted({dockerfile_path(name) for name in project_services()})


def copy_sources(path: pathlib.Path) -> list[str]:
    """Return the build-context paths a Dockerfile copies."""
    sources = []
    for keyword, rest in instructions(path):
        if keyword not in ("COPY", "ADD"):
            continue
        words = exec_form(rest)
        if any(word.startswith("--from") for word in words):
            continue
        sources += [word for word in words if not word.startswith("--")][:-1]
    return sources


def ignore_match(pattern: str, path: str) -> bool:
    if pattern.startswith("**/"):
        return pathlib.PurePosixPath(path).match(pattern[3:])
    return pathlib.PurePosixPath(path).match(pattern) and path.count("/") == pattern.count("/")


def ignored(source: str, context: pathlib.Path) -> bool:
    """Tell whether .dockerignore leaves `source` (or a folder holding it) out of the build."""
    ignore = context / ".dockerignore"
    patterns = [line.strip() for line in ignore.read_text().splitlines()] if ignore.is_file() else []
    parts = pathlib.PurePosixPath(source.strip("/").removeprefix("./")).parts
    candidates = ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]
    excluded = False
    for pattern in patterns:
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        if any(ignore_match(pattern, candidate) for candidate in candidates):
            excluded = not negate
    return excluded


def setup_cfg() -> configparser.ConfigParser:
    setup = configparser.ConfigParser(interpolation=None)
    setup.read(ROOT / "setup.cfg")
    return setup


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: p.name)
def test_copy_sources_exist(path):
    context = path.parent
    sources = copy_sources(path)
    assert sources, "the image copies nothing"
    for source in sources:
        assert (context / source).exists(), f"COPY {source}: no such file in the build context"
        assert not ignored(source, context), f"COPY {source}: excluded by .dockerignore"


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: p.name)
def test_image_holds_runtime_files(path):
    # `file:` values (long_description = file: README.md) are read by `pip install`.
    referenced = {
        value.strip().removeprefix("file:").strip()
        for section in setup_cfg().values()
        for value in section.values()
        if value.strip().startswith("file:")
    }
    copied = {source.strip("/").removeprefix("./") for source in copy_sources(path)}
    missing = (RUNTIME_FILES | referenced) - copied
    assert not missing, f"the image lacks {sorted(missing)}"


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: p.name)
def test_pip_installs_project_and_gunicorn_without_dev_extra(path):
    installs = [shlex.split(rest) for keyword, rest in instructions(path) if keyword == "RUN" and "pip install" in rest]
    words = [word for install in installs for word in install]
    assert not any("[dev" in word for word in words), "the image must not install the dev extra"
    assert "." in words, "the image does not install the project"
    required = [Requirement(line) for line in setup_cfg()["options"]["install_requires"].splitlines() if line.strip()]
    assert any(req.name == "gunicorn" for req in required), "gunicorn serves the API: a dependency of the project"


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: p.name)
def test_image_runs_as_non_root(path):
    users = [rest.split(":")[0] for keyword, rest in instructions(path) if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image runs as root"
