"""URL sources of a task's params, checked at submit with the downloader's own rule
(`providers.download.submit_refusal`): a URL whose host resolves to a private, loopback or
link-local address is refused (422 naming its field, e.g. `source.url`) unless
CONVEYOR_ALLOW_PRIVATE_URLS allows it, as the download would refuse it when the task runs.
A processor declares the URLs its params hold in `urls`."""

from app.services import errors
from processors import base
from processors import errors as processor_errors
from processors.providers import download


def check(registry, type: str, params: dict | None, settings: dict) -> None:
    """Refuse params whose URLs the download would refuse; raise Invalid naming each field.
    Types that download nothing skip this (the hook is only called when a type overrides it)."""
    if type not in registry or _downloads_nothing(registry.processor_class(type)):
        return
    cls = registry.processor_class(type)
    try:
        found = cls.urls(cls.load_params(params))
    except processor_errors.InvalidParams as exc:
        raise errors.Invalid("invalid params", {"params": exc.errors}) from exc
    allow = bool(settings["CONVEYOR_ALLOW_PRIVATE_URLS"])
    problems = {}
    for field, url in found.items():
        why = download.submit_refusal(url, allow_private=allow)
        if why:
            problems[field] = [why]
    if problems:
        raise errors.Invalid("invalid params", {"params": errors.nested(problems)})


def _downloads_nothing(cls) -> bool:
    return cls.urls.__func__ is base.Processor.urls.__func__
