"""Task types that cannot run here, refused at submit: a type whose providers (for these
params: a prompt needs the LLM, a given script does not) are not configured on this process's
settings gets 409 `unavailable` naming what is missing, instead of a task that fails a second
later. `CONVEYOR_ACCEPT_UNAVAILABLE=1` accepts them anyway, for deployments where only the
workers hold the keys or the programs. A processor declares its needs in `needs`."""

from app.services import errors
from processors import base, providers
from processors import errors as processor_errors


def check(registry, type: str, params: dict | None, settings: dict) -> None:
    """Raise Unavailable when a run of `type` with `params` needs a provider that is not
    configured, naming each (`providers`: name and reason) in the answer."""
    if settings["CONVEYOR_ACCEPT_UNAVAILABLE"] or type not in registry:
        return  # an unknown type: the submit says so
    cls = registry.processor_class(type)
    if not cls.providers and _needs_nothing(cls):
        return
    try:
        needs = cls.needs(cls.load_params(params))
    except processor_errors.InvalidParams as exc:
        raise errors.Invalid("invalid params", {"params": exc.errors}) from exc
    missing = {name: reason for name, reason in providers.availability(tuple(needs), settings).items() if reason}
    if missing:
        reasons = "; ".join(f"{needs[name][0]}: {reason}{needs[name][1]}" for name, reason in missing.items())
        raise errors.Unavailable(
            f"{type} cannot run here: {reasons} (set CONVEYOR_ACCEPT_UNAVAILABLE=1 if only the workers have it)",
            providers=[{"name": name, "reason": reason} for name, reason in missing.items()],
        )


def _needs_nothing(cls) -> bool:
    return cls.needs.__func__ is base.Processor.needs.__func__
