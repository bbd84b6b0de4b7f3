"""The processor registry: built-in types, installed plugins, and per-deployment policy.

Types come from three places, in this order: the explicit `processors.BUILTIN` list, the entry
point group `conveyor.processors` of installed packages, and import paths named in settings
(`CONVEYOR_PROCESSORS`). A duplicate type, a class that breaks the contract, or a policy
override for an unknown type or field raises `RegistryError` naming it, when the registry is
built at start, never later at run time.
"""

import importlib
import importlib.metadata
import re

import marshmallow

from processors import base, errors
from processors.policy import Policy

ENTRY_POINT_GROUP = "conveyor.processors"
TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class Registry:
    """Processor classes by type, each with its effective policy."""

    def __init__(self, sources: list[tuple[str, type]], overrides: dict | None = None):
        self._classes: dict[str, type[base.Processor]] = {}
        self._origins: dict[str, str] = {}
        for origin, cls in sources:
            self._add(origin, cls)
        self._policies = {name: cls.policy for name, cls in self._classes.items()}
        for name, changes in (overrides or {}).items():
            self._override(name, changes)

    def _add(self, origin: str, cls: type) -> None:
        problems = contract_problems(cls)
        if problems:
            raise errors.RegistryError(f"processor {origin} is malformed: {'; '.join(problems)}")
        if cls.type in self._classes:
            raise errors.RegistryError(f"duplicate task type {cls.type!r}: {self._origins[cls.type]} and {origin}")
        self._classes[cls.type] = cls
        self._origins[cls.type] = origin

    def _override(self, name: str, changes: dict) -> None:
        if name not in self._classes:
            raise errors.RegistryError(f"policy override for unknown task type {name!r}")
        if not isinstance(changes, dict):
            raise errors.RegistryError(f"policy override for {name!r} must be an object")
        try:
            policy = self._policies[name].override(changes)
        except ValueError as exc:
            raise errors.RegistryError(f"policy override for {name!r}: {exc}") from exc
        problems = policy.problems()
        if problems:
            raise errors.RegistryError(f"policy override for {name!r}: {'; '.join(problems)}")
        self._policies[name] = policy

    def types(self) -> list[str]:
        """Return the registered type names, sorted."""
        return sorted(self._classes)

    def __contains__(self, name: str) -> bool:
        return name in self._classes

    def processor_class(self, name: str) -> type[base.Processor]:
        """Return the class registered for `name`; KeyError if none."""
        return self._classes[name]

    def policy(self, name: str) -> Policy:
        """Return the effective policy of type `name` (overrides applied)."""
        return self._policies[name]

    def origin(self, name: str) -> str:
        """Return where type `name` came from (`module:Class`)."""
        return self._origins[name]

    def create(self, name: str) -> base.Processor:
        """Return a new processor instance for type `name`, with its effective policy."""
        return self._classes[name](policy=self._policies[name])


def contract_problems(cls: object) -> list[str]:
    """Return how `cls` breaks the processor contract, empty when it keeps it."""
    if not isinstance(cls, type) or not issubclass(cls, base.Processor):
        return ["not a subclass of processors.base.Processor"]
    found = []
    if not isinstance(cls.type, str) or not TYPE_NAME.match(cls.type):
        found.append(f"type {cls.type!r} must match {TYPE_NAME.pattern}")
    if not (isinstance(cls.Params, type) and issubclass(cls.Params, marshmallow.Schema)):
        found.append("Params must be a marshmallow Schema class")
    if not isinstance(cls.policy, Policy):
        found.append("policy must be a processors.policy.Policy")
    else:
        found.extend(f"policy: {p}" for p in cls.policy.problems())
    if cls.run is base.Processor.run:
        found.append("run(params, ctx) is not implemented")
    if not isinstance(cls.providers, tuple | list):
        found.append("providers must be a tuple of provider names")
    return found


def import_path(path: str) -> type:
    """Import `module:Class` and return the class; RegistryError naming it on failure."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise errors.RegistryError(f"processor path {path!r} must look like 'module:Class'")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise errors.RegistryError(f"cannot import processor {path!r}: {exc}") from exc


def entry_point_sources() -> list[tuple[str, type]]:
    """Return the processors installed packages declare under `conveyor.processors`."""
    sources = []
    for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            sources.append((point.value, point.load()))
        except Exception as exc:  # a broken plugin must name itself, whatever it raised
            raise errors.RegistryError(
                f"cannot load processor entry point {point.name!r} ({point.value}): {exc}"
            ) from exc
    return sources


def load(builtin: list[str], extra: list[str] = (), overrides: dict | None = None, plugins: bool = True) -> Registry:
    """Build the registry from built-in paths, installed plugins and extra paths."""
    sources = [(path, import_path(path)) for path in builtin]
    if plugins:
        sources += entry_point_sources()
    sources += [(path, import_path(path)) for path in extra]
    return Registry(sources, overrides)
