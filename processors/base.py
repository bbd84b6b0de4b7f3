"""The processor contract: what a plugin declares and the context its `run` receives.

A processor is a class with:

- `type`: the task type name, lowercase letters, digits and underscores (`video_clip`);
- `Params`: a marshmallow schema; the queue validates params with it on submit and again
  before each run, and passes `run` the loaded (typed, defaulted) dict;
- `policy`: a `Policy` (attempts, backoff, timeouts, default priority, pool, estimate);
- `providers`: names of the outside services or tools it needs (see `processors.providers`),
  and `optional_providers`: those only some params need (raise PermanentError naming the
  missing setting when such params come without it);
- `run(params, ctx)`: does the work and returns a JSON-serialisable dict, the task's result.

`run` reports progress with `ctx.progress(percent, stage, message)`, which also raises
`Cancelled` once the task is cancelled; stores files with `ctx.artifact(path, kind)`; works in
`ctx.workdir`; gets an uploaded source file with `ctx.fetch_upload(upload_id)` (a type
whose params refer to uploads declares them in `uploads`, and one that downloads URLs declares
them in `urls`, so they are checked on submit);
reports what it consumed of a paid or metered resource with `ctx.meter(measure, quantity,
model)` (one of `MEASURES`), so an operator can bill it;
raises `RetryableError` or `PermanentError` (see `processors.errors`). It must
never return a placeholder for work it could not do: raise instead.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import pathlib
import subprocess
import threading
from typing import Any, ClassVar

import marshmallow

from processors import errors
from processors.policy import Policy

_TASK_LOG = logging.getLogger("conveyor.task")

# What `Context.meter` counts, each with its unit.
MEASURES = {
    "llm_input_tokens": "token",
    "llm_output_tokens": "token",
    "speech_characters": "character",
    "images": "image",
    "transcribed_seconds": "second",
    "media_seconds": "second",
}


class NoParams(marshmallow.Schema):
    """Params of a type that takes none."""


class Context:
    """What a running processor can see and do. The queue's runner subclasses it to make
    progress, logs and artifacts durable; used as is, it keeps them in memory (the contract
    kit in `processors.testing` runs processors that way).
    """

    def __init__(
        self,
        task_id: str,
        attempt: int,
        workdir: pathlib.Path,
        settings: dict | None = None,
        logger: logging.Logger | None = None,
        uploads: dict[str, pathlib.Path] | None = None,
        tasks: dict[str, dict] | None = None,
        task_files: dict[str, dict[str, pathlib.Path]] | None = None,
    ):
        self.task_id = task_id
        self._uploads = dict(uploads or {})
        self._tasks = dict(tasks or {})
        self._task_files = {task: dict(files) for task, files in (task_files or {}).items()}
        self.children: list[dict] = []
        self.attempt = attempt
        self._workdir = pathlib.Path(workdir)
        self.workdir_made = False
        self.settings = settings or {}
        # One logger for every task (a logger per task would never be freed), tagged with its id.
        self.logger = logger or logging.LoggerAdapter(_TASK_LOG, {"task_id": task_id})
        self.reports: list[tuple[float, str | None, str | None]] = []
        self.artifacts: list[dict] = []
        self.logs: list[str] = []
        self.usage: list[dict] = []
        self._cancel = threading.Event()
        self._processes: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    @property
    def workdir(self) -> pathlib.Path:
        """A directory of this attempt's own, made on first use and removed after the run."""
        if not self.workdir_made:
            self._workdir.mkdir(parents=True, exist_ok=True)
            self.workdir_made = True
        return self._workdir

    def progress(self, percent: float, stage: str | None = None, message: str | None = None) -> None:
        """Report progress (0-100) and an optional stage; raise `Cancelled` if cancelled."""
        percent = max(0.0, min(100.0, float(percent)))
        self.reports.append((percent, stage, message))
        self._record_progress(percent, stage, message)
        self.check()

    def log(self, message: str, **data: Any) -> None:
        """Add a line to the task's log."""
        self.logs.append(message)
        self.logger.info("%s", message, extra={"data": data})
        self._record_log(message, data)

    def artifact(
        self, path: str | pathlib.Path, kind: str, mime: str | None = None, metadata: dict | None = None
    ) -> dict:
        """Store a file the task produced and return its description."""
        path = pathlib.Path(path)
        if not path.is_file():
            raise errors.PermanentError(f"artifact {path} does not exist")
        item = {
            "path": str(path),
            "name": path.name,
            "kind": kind,
            "mime": mime,
            "size": path.stat().st_size,
            "metadata": metadata or {},
        }
        self.artifacts.append(item)
        return self._record_artifact(item)

    def meter(self, measure: str, quantity: float, model: str = "") -> None:
        """Record that this attempt consumed `quantity` of `measure` (see `MEASURES`) from
        `model` (the provider's model or engine, e.g. "gpt-4o-mini"; "" if none). Call it once
        the provider has answered: what a failed or retried attempt consumed counts too."""
        if measure not in MEASURES:
            raise ValueError(f"unknown measure {measure!r}; one of {', '.join(MEASURES)}")
        if quantity is None or not 0 < float(quantity) < math.inf:
            return  # nothing consumed (or no figure: a NaN is no figure)
        item = {"measure": measure, "model": model or "", "quantity": float(quantity)}
        self.usage.append(item)
        self._record_usage(item)

    def fetch_upload(self, upload_id: str) -> pathlib.Path:
        """Return a local copy of an upload of the task's account, in the workdir.
        Raises PermanentError if there is no such upload."""
        path = self._uploads.get(str(upload_id))
        if path is None:
            raise errors.PermanentError(f"upload {upload_id} does not exist")
        return pathlib.Path(path)

    def task_result(self, task_id: str) -> dict:
        """Return another task of the same account as `{type, status, result}` (a quiz reads a
        story's text this way). Raises PermanentError if there is no such task."""
        found = self._tasks.get(str(task_id))
        if found is None:
            raise errors.PermanentError(f"task {task_id} does not exist")
        return dict(found)

    def fetch_artifact(self, task_id: str, name: str) -> pathlib.Path:
        """Return a local copy of the file `name` that another succeeded task of the same
        account stored (a course joins its lessons' videos this way). Raises PermanentError if
        there is no such file."""
        path = self._task_files.get(str(task_id), {}).get(name)
        if path is None:
            raise errors.PermanentError(f"task {task_id} has no artifact {name!r}")
        return pathlib.Path(path)

    def submit_child(self, type: str, params: dict, key: str) -> str:
        """Submit a child task of this one and return its id. `key` names the child among its
        siblings: a retried attempt that submits the same key gets the same child back."""
        self.check()
        child = self._record_child(type, params, key)
        if all(known["id"] != child["id"] for known in self.children):
            self.children.append(child)
        return child["id"]

    def children_status(self) -> list[dict]:
        """Return this task's children as `{id, type, key, status, progress, error}`, oldest first."""
        return [dict(child) for child in self.children]

    def cancelled(self) -> bool:
        """Tell whether the task was asked to stop."""
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise `Cancelled` if the task was asked to stop."""
        if self._cancel.is_set():
            raise errors.Cancelled()

    def sleep(self, seconds: float) -> None:
        """Sleep, waking early to raise `Cancelled` if the task is cancelled meanwhile."""
        if self._cancel.wait(max(0.0, seconds)):
            raise errors.Cancelled()

    def cancel(self) -> None:
        """Ask the processor to stop at its next progress report or check."""
        self._cancel.set()

    def track(self, process: subprocess.Popen) -> subprocess.Popen:
        """Register a child process (started with `start_new_session=True`) so a hard stop
        kills its whole process group; call `untrack` when it has ended."""
        try:
            leads_group = os.getpgid(process.pid) == process.pid
        except ProcessLookupError:
            return process  # already gone: nothing to kill later
        if not leads_group:
            raise ValueError("start tracked processes with start_new_session=True so a hard stop can kill their group")
        with self._lock:
            self._processes.add(process)
        return process

    def untrack(self, process: subprocess.Popen) -> None:
        """Forget a child process that has ended."""
        with self._lock:
            self._processes.discard(process)

    def tracked(self) -> list[subprocess.Popen]:
        """Return the child processes still registered."""
        with self._lock:
            return list(self._processes)

    # Hooks for durable contexts; the in-memory context only keeps the lists above.
    def _record_progress(self, percent: float, stage: str | None, message: str | None) -> None:
        pass

    def _record_log(self, message: str, data: dict) -> None:
        pass

    def _record_artifact(self, item: dict) -> dict:
        return item

    def _record_usage(self, item: dict) -> None:
        pass

    def _record_child(self, type: str, params: dict, key: str) -> dict:
        # In memory a child is only noted; it never runs.
        for child in self.children:
            if child["key"] == key:
                return child
        return {"id": f"child-{key}", "type": type, "key": key, "status": "queued", "progress": 0.0, "error": None}


class Processor:
    """Base class of every processor. Subclasses set the class attributes and `run`."""

    type: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Params: ClassVar[type[marshmallow.Schema]] = NoParams
    policy: ClassVar[Policy] = Policy()
    providers: ClassVar[tuple[str, ...]] = ()
    # Providers some params need and others do not (an LLM for a prompt, none for a given
    # script): listed with their state, without making the type unavailable.
    optional_providers: ClassVar[tuple[str, ...]] = ()
    # The typed submit endpoint's name: POST /api/<endpoint>/generate (default: the type with
    # dashes for underscores).
    endpoint: ClassVar[str] = ""

    def __init__(self, policy: Policy | None = None):
        self.policy = policy or type(self).policy

    @classmethod
    def needs(cls, params: dict) -> dict[str, tuple[str, str]]:
        """Return the providers a run of loaded `params` needs, as provider name -> (why the run
        needs it, a hint appended when it is missing): `providers` by default. Types whose needs
        depend on their params (a prompt needs the LLM, a given script does not) add to it. A
        submit refuses a task whose needs are not configured (`app.services.availability`)."""
        return {name: (f"`{cls.type}` needs {name}", "") for name in cls.providers}

    @classmethod
    def uploads(cls, params: dict) -> dict[str, tuple[str, frozenset[str]]]:
        """Return the uploads loaded `params` refer to, as field path (`source.upload_id`) ->
        (upload id, kinds the field accepts: video, audio, image, subtitles)."""
        return {}

    @classmethod
    def urls(cls, params: dict) -> dict[str, str]:
        """Return the URLs loaded `params` will download, as field path (`source.url`) -> URL,
        so that a submit refuses the ones the download would (private addresses)."""
        return {}

    @classmethod
    def load_params(cls, raw: Any) -> dict:
        """Validate raw params with `Params`; raise `InvalidParams` naming each bad field."""
        if raw is None:
            raw = {}
        try:
            return _schema(cls.Params).load(raw)
        except marshmallow.ValidationError as exc:
            messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
            raise errors.InvalidParams(messages) from exc

    @classmethod
    def dump_params(cls, loaded: dict) -> dict:
        """Return loaded params in their JSON form, as stored on the task."""
        return _schema(cls.Params).dump(loaded)

    def run(self, params: dict, ctx: Context) -> dict:
        """Do the work for one task and return its result (a JSON-serialisable dict).

        params: the loaded params (defaults applied).
        ctx: progress, cancel, artifacts, workdir, settings and logger for this attempt.
        Raises RetryableError or PermanentError on failure; never returns a placeholder.
        """
        raise NotImplementedError


@functools.cache
def _schema(params_class: type[marshmallow.Schema]) -> marshmallow.Schema:
    # One instance per schema class: building a Schema costs more than using it.
    return params_class()
