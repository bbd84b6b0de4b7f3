"""Per-type run policy: attempts, backoff, timeouts, priority, pool and duration estimate."""

import dataclasses
import math
import random

PRIORITIES = ("urgent", "high", "normal", "low")
POOLS = ("cpu", "io")
# The final states a retention time is set for (`Policy.retain_<state>`).
RETAINED = ("succeeded", "failed", "cancelled")
RETENTION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclasses.dataclass(frozen=True)
class Policy:
    """How the queue runs one task type. Every field can be overridden per deployment.

    max_attempts: attempts in all, the first one included.
    backoff_base, backoff_cap: seconds; attempt n waits min(cap, base * 2**(n-1)).
    backoff_jitter: fraction 0-1 taken off that wait at random ("equal jitter" when 0.5).
    soft_timeout: seconds until the processor gets `SoftTimeout` and may clean up.
    hard_timeout: seconds until the run is killed, whatever it is doing.
    priority: default priority of new tasks of this type.
    pool: the worker pool (Celery queue) that runs the type.
    estimate: expected run time in seconds, used for ETAs until real durations exist.
    retain_succeeded, retain_failed, retain_cancelled: how long a finished task of this type
    is kept before the sweeper deletes it (`parse_retention`: "7d", "36h", "90m", "forever");
    "" keeps the platform's setting (CONVEYOR_RETAIN_SUCCEEDED and the others).
    """

    max_attempts: int = 3
    backoff_base: float = 2.0
    backoff_cap: float = 300.0
    backoff_jitter: float = 0.5
    soft_timeout: float = 300.0
    hard_timeout: float = 360.0
    priority: str = "normal"
    pool: str = "cpu"
    estimate: float = 10.0
    retain_succeeded: str = ""
    retain_failed: str = ""
    retain_cancelled: str = ""

    def problems(self) -> list[str]:
        """Return what is wrong with this policy, empty when it is sane."""
        found = self._type_problems()
        if found:
            return found
        if not 1 <= self.max_attempts <= 100:
            found.append("max_attempts must be an integer from 1 to 100")
        if not 0 <= self.backoff_base <= self.backoff_cap:
            found.append("backoff_base must be from 0 to backoff_cap")
        if not 0 <= self.backoff_jitter <= 1:
            found.append("backoff_jitter must be from 0 to 1")
        if not 0 < self.soft_timeout <= self.hard_timeout:
            found.append("soft_timeout must be positive and at most hard_timeout")
        if self.priority not in PRIORITIES:
            found.append(f"priority must be one of {', '.join(PRIORITIES)}")
        if self.pool not in POOLS:
            found.append(f"pool must be one of {', '.join(POOLS)}")
        if not self.estimate > 0:
            found.append("estimate must be positive")
        found.extend(self._retention_problems())
        return found

    def _retention_problems(self) -> list[str]:
        found = []
        for name in RETAINED:
            value = getattr(self, f"retain_{name}")
            try:
                if value:
                    parse_retention(value)
            except ValueError as exc:
                found.append(f"retain_{name}: {exc}")
        return found

    def retention(self, status: str, default: float | None) -> float | None:
        """Return the seconds a task of this type that ended `status` is kept (None: forever);
        `default` when the policy leaves it to the platform."""
        value = getattr(self, f"retain_{status}")
        return parse_retention(value) if value else default

    def _type_problems(self) -> list[str]:
        found = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type == "int" or field.type is int:
                if not isinstance(value, int) or isinstance(value, bool):
                    found.append(f"{field.name} must be an integer, not {value!r}")
            elif field.type == "float" or field.type is float:
                if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                    found.append(f"{field.name} must be a finite number, not {value!r}")
            elif not isinstance(value, str):
                found.append(f"{field.name} must be a string, not {value!r}")
        return found

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Return the seconds to wait before the attempt after `attempt` (1-based)."""
        delay = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        cut = (rng or random).uniform(0, self.backoff_jitter)
        return delay * (1 - cut)

    def override(self, changes: dict) -> "Policy":
        """Return a copy with `changes` applied; unknown fields raise ValueError."""
        fields = {f.name: f.type for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            raise ValueError(f"unknown policy field(s): {', '.join(unknown)}")
        # The declared type decides, not the current value's: `soft_timeout=600` is still a float.
        kinds = {"int": int, "float": float, "str": str, int: int, float: float, str: str}
        coerced = {name: _coerce(name, kinds[fields[name]], value) for name, value in changes.items()}
        return dataclasses.replace(self, **coerced)


def _coerce(name: str, kind: type, value):
    """Convert an override to the field's type without losing anything; ValueError if it can't."""
    if kind is str:
        if not isinstance(value, str):
            raise ValueError(f"policy field {name}: {value!r} is not a string")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"policy field {name}: {value!r} is not a number")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"policy field {name}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"policy field {name}: {value!r} is not finite")
    if kind is int:
        if number != int(number):
            raise ValueError(f"policy field {name}: {value!r} is not a whole number")
        return int(number)
    return number


def parse_retention(value: str) -> float | None:
    """Return a retention time in seconds ("7d", "36h", "90m", "3600s", a bare number of
    seconds), or None for "forever". ValueError when it is none of these or not positive."""
    text = str(value).strip().lower()
    if text in ("forever", "never"):
        return None
    number, unit = (text[:-1], text[-1]) if text[-1:] in RETENTION_UNITS else (text, "s")
    try:
        seconds = float(number) * RETENTION_UNITS[unit]
    except ValueError:
        raise ValueError(f"{value!r} is not a retention time; use e.g. 7d, 36h, 90m or forever") from None
    if not (math.isfinite(seconds) and 0 < seconds <= 100 * 365 * 86400):
        raise ValueError(f"{value!r} must be more than 0 and at most 100 years (or forever)")
    return seconds
