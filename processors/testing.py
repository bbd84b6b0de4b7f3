"""The processor contract kit: checks that a processor class, ours or a plugin's, keeps the
contract in `processors.base`, the way the registry and the queue's runner rely on it.

Use it from a plugin's own pytest file::

    from processors import testing
    from conveyor_word_count.processor import WordCountProcessor

    def test_keeps_the_processor_contract():
        testing.check(WordCountProcessor,
                      valid_params={"text": "a few words"},
                      invalid_params={"text": 42},
                      cancel_params={"text": "one two three"})

`check` runs every rule; each rule is also a function of its own (`check_contract`,
`check_policy`, `check_schema`, `check_run`, `check_cancel`) for finer tests. A broken rule
raises AssertionError naming the processor and the rule. The kit needs no pytest: it uses plain
assertions, so it can run anywhere.

Runs happen in a daemon thread with an in-memory `base.Context` in a temporary workdir, with
params taken through the same load -> dump -> load trip the queue makes (it stores the dumped
form on submit and loads it again before each attempt).
"""

import contextlib
import json
import math
import pathlib
import tempfile
import threading
from collections.abc import Iterator
from typing import Any, NoReturn

import marshmallow

from processors import base, errors, providers, registry
from processors.policy import Policy

# DESIGN promise 5: a running task sees its cancel within about 2 s.
CANCEL_WITHIN = 2.0
# How long the cancel check waits for a first progress report before cancelling anyway.
START_WAIT = 0.2
RUN_TIMEOUT = 30.0
TASK_ID = "contract-check"


def check(
    cls: type,
    valid_params: dict,
    invalid_params: dict | None = None,
    run: bool = True,
    *,
    cancel_params: dict | None = None,
    settings: dict | None = None,
    uploads: dict | None = None,
) -> None:
    """Check every contract rule on `cls`; raise AssertionError at the first one it breaks.

    valid_params: raw params the schema must accept (and, with `run`, a run must handle).
    invalid_params: raw params the schema must refuse with InvalidParams; None skips that rule.
    run: False skips the runs, e.g. for a type whose providers are not configured here.
    cancel_params: params for a run that takes a while, used to check that the processor
        raises Cancelled after `ctx.cancel()`; None skips the check (for instant types).
    settings: the `ctx.settings` the runs see.
    uploads: upload id -> local file, what `ctx.fetch_upload` returns in the runs.
    """
    check_contract(cls)
    check_policy(cls)
    check_schema(cls, valid_params, invalid_params)
    if run:
        check_run(cls, valid_params, settings=settings, uploads=uploads)
    if run and cancel_params is not None:
        check_cancel(cls, cancel_params, settings=settings, uploads=uploads)


def describe(cls: Any) -> str:
    """Return how failure messages name `cls`."""
    if not isinstance(cls, type):
        return f"processor {cls!r}"
    return f"processor {cls.__module__}:{cls.__qualname__} (type {getattr(cls, 'type', None)!r})"


def _fail(cls: Any, rule: str, detail: str) -> NoReturn:
    raise AssertionError(f"{describe(cls)} breaks rule '{rule}': {detail}")


# --- contract and policy ---------------------------------------------------------------------


def check_contract(cls: type) -> None:
    """Check what the registry checks, that it can create the class, and its provider names."""
    try:
        problems = registry.contract_problems(cls)
    except Exception as exc:  # e.g. a policy field of the wrong type makes a comparison fail
        _fail(cls, "contract", f"the registry's contract check crashed on it: {exc!r}")
    if problems:
        _fail(cls, "contract", "; ".join(problems))
    try:
        cls(policy=cls.policy)
    except Exception as exc:  # whatever a plugin's __init__ raises is the finding
        _fail(cls, "contract", f"the registry cannot create it as cls(policy=...): {exc!r}")
    unknown = [name for name in (*cls.providers, *cls.optional_providers) if name not in providers.CHECKS]
    if unknown:
        _fail(cls, "contract", f"unknown provider(s) {unknown}; known: {sorted(providers.CHECKS)}")


def check_policy(cls: type) -> None:
    """Check that the class's policy is sane: valid fields, finite timeouts, a fitting estimate."""
    policy = getattr(cls, "policy", None)
    if not isinstance(policy, Policy):
        _fail(cls, "sane policy", "policy must be a processors.policy.Policy")
    try:
        problems = policy.problems() + _timeout_problems(policy)
    except TypeError as exc:
        _fail(cls, "sane policy", f"a policy field has the wrong type: {exc}")
    if problems:
        _fail(cls, "sane policy", "; ".join(problems))


def _timeout_problems(policy: Policy) -> list[str]:
    found = []
    limits = (policy.soft_timeout, policy.hard_timeout, policy.backoff_cap)
    if not all(math.isfinite(value) for value in limits):
        found.append("soft_timeout, hard_timeout and backoff_cap must be finite")
    if policy.estimate > policy.soft_timeout:
        found.append(
            f"estimate {policy.estimate:g}s exceeds soft_timeout {policy.soft_timeout:g}s: a typical run would time out"
        )
    return found


# --- schema ----------------------------------------------------------------------------------


def check_schema(cls: type, valid_params: dict, invalid_params: dict | None = None) -> dict:
    """Check the Params schema: valid params load and survive storage, invalid ones are refused.

    Return the loaded valid params.
    """
    schema = getattr(cls, "Params", None)
    if not (isinstance(schema, type) and issubclass(schema, marshmallow.Schema)):
        _fail(cls, "schema", f"Params must be a marshmallow Schema class, not {schema!r}")
    loaded = stored_params(cls, valid_params)
    if invalid_params is not None:
        _check_refusal(cls, invalid_params)
    return loaded


def stored_params(cls: type, raw: Any) -> dict:
    """Return `raw` as a run sees it: loaded, dumped for storage, then loaded again."""
    loaded = _load(cls, raw, "the given params")
    stored = _dump(cls, loaded)
    again = _load(cls, stored, f"the stored form {stored!r} of the params")
    if again != loaded:
        _fail(cls, "schema", f"params change when stored and loaded again: {loaded!r} became {again!r}")
    return again


def _load(cls: type, raw: Any, what: str) -> dict:
    try:
        loaded = cls.load_params(raw)
    except errors.InvalidParams as exc:
        _fail(cls, "schema", f"{what} were refused: {exc.errors}")
    except Exception as exc:  # anything else would reach the API as a 500
        _fail(cls, "schema", f"loading {what} raised {exc!r}; only InvalidParams may escape")
    if not isinstance(loaded, dict):
        _fail(cls, "schema", f"loading {what} gave {type(loaded).__name__}, not a dict")
    return loaded


def _dump(cls: type, loaded: dict) -> dict:
    try:
        stored = cls.dump_params(loaded)
    except Exception as exc:  # the queue dumps params on every submit
        _fail(cls, "schema", f"dumping loaded params {loaded!r} raised {exc!r}")
    problem = json_problem(stored)
    if problem:
        _fail(cls, "schema", f"stored params are not JSON: {problem}")
    return stored


def _check_refusal(cls: type, invalid_params: Any) -> None:
    try:
        cls.load_params(invalid_params)
    except errors.InvalidParams as exc:
        named = exc.errors
    except Exception as exc:  # anything else would reach the API as a 500
        _fail(cls, "schema", f"invalid_params raised {exc!r} instead of InvalidParams")
    else:
        _fail(cls, "schema", f"invalid_params {invalid_params!r} were accepted")
    if not isinstance(named, dict) or not named:
        _fail(cls, "schema", f"InvalidParams for {invalid_params!r} names no field: {named!r}")
    stray = sorted(str(key) for key in named if key not in _nameable(cls, invalid_params))
    if stray:
        _fail(cls, "schema", f"InvalidParams names {stray}, neither fields of Params nor given keys")
    problem = json_problem(named)
    if problem:
        _fail(cls, "schema", f"InvalidParams errors are not JSON (the API returns them): {problem}")


def _nameable(cls: type, invalid_params: Any) -> set:
    fields = cls.Params().fields
    known = {field.data_key or name for name, field in fields.items()}
    given = set(invalid_params) if isinstance(invalid_params, dict) else set()
    return known | given | {"_schema"}


def json_problem(value: Any) -> str | None:
    """Return why `value` cannot be stored as JSON (NaN and infinity included), None if it can."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return f"{exc} in {value!r}"
    return None


# --- runs ------------------------------------------------------------------------------------


class _Attempt(threading.Thread):
    """One run of a processor in a daemon thread, keeping what it returned or raised."""

    def __init__(self, cls: type, params: dict, ctx: base.Context):
        super().__init__(name=f"contract-check-{getattr(cls, 'type', '')}", daemon=True)
        self.processor = cls(policy=cls.policy)
        self.params = params
        self.ctx = ctx
        self.result: Any = None
        self.error: BaseException | None = None
        self.after_cancel = False

    def run(self) -> None:
        try:
            self.result = self.processor.run(self.params, self.ctx)
        except BaseException as exc:  # kept for the check to judge, whatever it is
            self.error = exc
        self.after_cancel = self.ctx.cancelled()


class _CancelOnReport(base.Context):
    """An in-memory context that asks for cancel right after run's first progress report."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.reported = threading.Event()

    def progress(self, percent: float, stage: str | None = None, message: str | None = None) -> None:
        super().progress(percent, stage, message)
        if not self.reported.is_set():
            self.reported.set()
            self.cancel()


@contextlib.contextmanager
def _workdir() -> Iterator[pathlib.Path]:
    # A run that ignores cancel may still be writing here when the check ends.
    with tempfile.TemporaryDirectory(prefix="conveyor-check-", ignore_cleanup_errors=True) as path:
        yield pathlib.Path(path)


def check_run(
    cls: type, params: dict, *, settings: dict | None = None, uploads: dict | None = None, timeout: float = RUN_TIMEOUT
) -> Any:
    """Run `cls` once on `params` and check that it classes its errors and returns JSON.

    Return the result dict, or the ProcessorError that run raised (a correctly classed
    failure); assert on it to require one or the other.
    """
    loaded = stored_params(cls, params)
    with _workdir() as workdir:
        attempt = _Attempt(cls, loaded, base.Context(TASK_ID, 1, workdir, settings, uploads=uploads))
        attempt.start()
        attempt.join(timeout)
        if attempt.is_alive():
            _fail(cls, "run", f"still running after {timeout:g}s with params {params!r}")
    _check_untracked(cls, attempt.ctx)
    if attempt.error is not None:
        return _judge_error(cls, attempt.error)
    return _judge_result(cls, attempt.result)


def _judge_error(cls: type, exc: BaseException) -> errors.ProcessorError:
    if isinstance(exc, errors.ProcessorError):
        return exc
    if isinstance(exc, errors.ControlSignal):
        _fail(cls, "classes its errors", f"raised {type(exc).__name__} though nothing signalled it")
    _fail(
        cls,
        "classes its errors",
        f"let {type(exc).__name__}({exc}) escape run; raise "
        "RetryableError or PermanentError instead (`raise ... from exc`)",
    )


def _judge_result(cls: type, result: Any) -> dict:
    if not isinstance(result, dict):
        _fail(cls, "classes its errors", f"run returned {type(result).__name__}, not a dict")
    problem = json_problem(result)
    if problem:
        _fail(cls, "classes its errors", f"run returned a result that is not JSON: {problem}")
    return result


def _check_untracked(cls: type, ctx: base.Context) -> None:
    left = ctx.tracked()
    if left:
        _fail(
            cls,
            "child processes",
            f"run ended with {len(left)} child process(es) still tracked; "
            "call ctx.untrack(process) once each has ended",
        )


def check_cancel(
    cls: type,
    params: dict,
    *,
    settings: dict | None = None,
    uploads: dict | None = None,
    within: float = CANCEL_WITHIN,
    start_wait: float = START_WAIT,
) -> None:
    """Check that a run on `params` raises Cancelled within `within` s of `ctx.cancel()`.

    The cancel comes right after run's first progress report, or after `start_wait` s if it
    has made none, so `params` must make a run that keeps working past that point.
    """
    loaded = stored_params(cls, params)
    with _workdir() as workdir:
        ctx = _CancelOnReport(TASK_ID, 1, workdir, settings, uploads=uploads)
        attempt = _Attempt(cls, loaded, ctx)
        attempt.start()
        ctx.reported.wait(start_wait)
        ctx.cancel()
        attempt.join(within)
        _judge_cancel(cls, attempt, within, start_wait)
    _check_untracked(cls, ctx)


def _judge_cancel(cls: type, attempt: _Attempt, within: float, start_wait: float) -> None:
    rule = "honours cancel"
    if attempt.is_alive():
        _fail(
            cls,
            rule,
            f"still running {within:g}s after ctx.cancel(); call ctx.progress, "
            "ctx.check or ctx.sleep often while working",
        )
    if isinstance(attempt.error, errors.Cancelled):
        return
    if attempt.error is not None:
        _fail(cls, rule, f"raised {attempt.error!r} after ctx.cancel(); expected processors.errors.Cancelled")
    if not attempt.after_cancel:
        _fail(
            cls,
            rule,
            f"finished within {start_wait:g}s with no progress report, before it could be "
            "cancelled; pass cancel_params that keep it busy, or cancel_params=None if it is instant",
        )
    _fail(cls, rule, "returned a result after ctx.cancel(); let processors.errors.Cancelled propagate")
