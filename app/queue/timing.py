"""Fire times of a schedule: a five-field cron expression (croniter) read in an IANA timezone,
or a fixed interval in seconds. Pure functions of the schedule's `cron`, `interval_seconds` and
`timezone` (a model row or any object with them) and an instant; every instant is UTC-aware.

DST, for cron: the expression is matched against the zone's wall clock. A wall time that does
not exist (spring forward, "30 2 * * *" in Europe/Berlin on the last Sunday of March) fires
once, right after the change (03:00 local, croniter's reading). A wall time that happens twice
(fall back) fires once, at its first occurrence, when the hour field names hours; an hour
field of `*` (or `*/n`) fires every real hour, both 02:00s included, as cron does.
"""

import datetime
import zoneinfo

import croniter

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# Safety bound on the wall-clock repeats skipped in a row (one at most per fall-back night).
MAX_SKIPPED = 24


def expand(cron: str) -> str:
    """Return the five fields of `cron`, an @alias spelt out."""
    text = " ".join(cron.split())
    return ALIASES.get(text.lower(), text)


def cron_problem(cron: str) -> str | None:
    """Return why `cron` is not a five-field cron expression (or an @alias), None if it is."""
    fields = expand(cron).split(" ")
    if len(fields) != 5:
        return "five fields (minute hour day month weekday) or @hourly, @daily, @weekly, @monthly, @yearly"
    if not croniter.croniter.is_valid(" ".join(fields)):
        return "not a valid cron expression"
    return None


def timezone_problem(name: str) -> str | None:
    """Return why `name` is not an IANA timezone (Europe/Berlin, UTC), None if it is."""
    try:
        zone(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return "an IANA timezone name, e.g. UTC or Europe/Berlin"
    return None


def zone(name: str) -> zoneinfo.ZoneInfo:
    """Return the IANA timezone `name`."""
    if not name or name.startswith(("/", ".")) or ".." in name:
        raise ValueError(name)  # zoneinfo would read it as a path
    return zoneinfo.ZoneInfo(name)


def first_after(schedule, at: datetime.datetime) -> datetime.datetime:
    """Return the schedule's first fire time after `at`: one interval after it, or the
    expression's next match."""
    if schedule.interval_seconds:
        return at + datetime.timedelta(seconds=schedule.interval_seconds)
    return _next_cron(schedule, at)


def following(schedule, fire_time: datetime.datetime) -> datetime.datetime:
    """Return the fire time after `fire_time` (an interval keeps its cadence from it)."""
    return first_after(schedule, fire_time)


def latest_due(schedule, due: datetime.datetime, at: datetime.datetime) -> datetime.datetime:
    """Return the last fire time at or before `at`, counting from the due fire time `due`."""
    if schedule.interval_seconds:
        steps = int((at - due).total_seconds() // schedule.interval_seconds)
        return due + datetime.timedelta(seconds=steps * schedule.interval_seconds)
    # get_prev gives the match strictly before its start: start just after `at`.
    return max(due, _prev_cron(schedule, at + datetime.timedelta(microseconds=1)))


def upcoming(schedule, at: datetime.datetime, count: int = 5) -> list[datetime.datetime]:
    """Return the schedule's next `count` fire times after `at`."""
    times = [first_after(schedule, at)]
    while len(times) < count:
        times.append(following(schedule, times[-1]))
    return times


def _next_cron(schedule, at: datetime.datetime) -> datetime.datetime:
    local = zone(schedule.timezone)
    found = croniter.croniter(expand(schedule.cron), at.astimezone(local))
    for _ in range(MAX_SKIPPED):
        fire = found.get_next(datetime.datetime)
        if not _repeated_wall_time(schedule, fire):
            return fire.astimezone(datetime.UTC)
    return fire.astimezone(datetime.UTC)


def _prev_cron(schedule, at: datetime.datetime) -> datetime.datetime:
    local = zone(schedule.timezone)
    found = croniter.croniter(expand(schedule.cron), at.astimezone(local))
    for _ in range(MAX_SKIPPED):
        fire = found.get_prev(datetime.datetime)
        if not _repeated_wall_time(schedule, fire):
            return fire.astimezone(datetime.UTC)
    return fire.astimezone(datetime.UTC)


def _repeated_wall_time(schedule, fire: datetime.datetime) -> bool:
    """Tell whether `fire` is the second occurrence of a wall time (fall back) that an
    expression naming its hours must not fire again."""
    hours = expand(schedule.cron).split(" ")[1]
    if hours.startswith("*"):
        return False
    first = fire.replace(tzinfo=None).replace(tzinfo=fire.tzinfo, fold=0)
    return first.utcoffset() != fire.utcoffset()
