"""Marshmallow fields for what requests send, with the limits every input needs (DESIGN.md,
promise 10): text without a NUL or a lone surrogate, datetimes that fit in UTC, numbers that
fit their use, JSON objects of bounded depth that PostgreSQL can store. Every schema of the
API (and the dashboard, which loads the same schemas) reads its inputs with these, so a bad
value is a 422 naming its field, never a 500 from the database or an overflow."""

import datetime

import marshmallow as ma

from app.services import inputs

# Earliest and latest instants every backend and the datetime arithmetic on them can hold.
EARLIEST = datetime.datetime(1, 1, 2, tzinfo=datetime.UTC)
LATEST = datetime.datetime(9999, 12, 30, tzinfo=datetime.UTC)
# The earliest day a date range may start (usage reports).
EARLIEST_DAY = datetime.date(2000, 1, 1)
# The largest id a database integer column holds (event ids are compared with it).
MAX_ID = 2**63 - 1


class Text(ma.fields.String):
    """A string that can be stored: no NUL character, no lone surrogate."""

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        problem = inputs.text_problem(text)
        if problem:
            raise ma.ValidationError(problem)
        return text


class UtcDateTime(ma.fields.AwareDateTime):
    """An ISO 8601 datetime with its zone, loaded as UTC; one that UTC cannot hold (year 1 at
    +14:00, year 9999 at -14:00) is refused rather than overflowing later."""

    def _deserialize(self, value, attr, data, **kwargs) -> datetime.datetime:
        if isinstance(value, str) and "\x00" in value:
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE)
        loaded = super()._deserialize(value, attr, data, **kwargs)
        try:
            utc = loaded.astimezone(datetime.UTC)
        except OverflowError:
            utc = None
        if utc is None or not EARLIEST <= utc <= LATEST:
            raise ma.ValidationError(f"must be from {EARLIEST.date()} to {LATEST.date()} in UTC")
        return utc


class JsonObject(ma.fields.Dict):
    """A JSON object that can be stored as it is (see `services.inputs`)."""

    def _deserialize(self, value, attr, data, **kwargs) -> dict:
        loaded = super()._deserialize(value, attr, data, **kwargs)
        problems = inputs.json_problems(loaded)
        if problems:
            raise ma.ValidationError(problems)
        return loaded
