"""Metered usage and what it costs: what tasks consumed (the measures of
`processors.base.MEASURES`, written by the running attempt as it reports them), summed per task
and per account and day, priced from the `prices` table (`manage.py prices set`).

A price is for `per` units of a measure, for one model or ("") for every other model. A
line's cost is quantity x price / per, rounded to six decimals, and null when no price applies:
unpriced usage is shown as such, never as free. One currency for the platform,
CONVEYOR_CURRENCY (default USD). Days are UTC.
"""

import datetime
import decimal
import uuid

import sqlalchemy as sa

from app import models, runtime
from app.extensions import db
from app.services import errors, inputs
from processors.base import MEASURES

# The longest range one report covers.
MAX_DAYS = 366
_MICRO = decimal.Decimal("0.000001")


def currency() -> str:
    """Return the platform's currency (CONVEYOR_CURRENCY)."""
    return runtime.current().settings["CONVEYOR_CURRENCY"]


def of_task(task_id: uuid.UUID) -> list[dict]:
    """Return what a task consumed over all its attempts, a line per measure and model."""
    u = models.UsageRecord
    rows = db.session.execute(
        sa.select(u.measure, u.model, sa.func.sum(u.quantity).label("quantity"))
        .where(u.task_id == task_id)
        .group_by(u.measure, u.model)
        .order_by(u.measure, u.model)
    ).all()
    return _lines(rows, _prices())


def daily(account_id: uuid.UUID | None, since: datetime.date, until: datetime.date) -> dict:
    """Return usage summed per account and day from `since` to `until` (both included, UTC
    days), each day with its lines and their cost: one account's, or every account's (None).
    Raises Invalid for a range that is backwards or longer than MAX_DAYS."""
    _check_range(since, until)
    rows = db.session.execute(_daily_query(account_id, since, until)).all()
    priced = _prices()
    days: dict[tuple, list] = {}
    for row in rows:
        days.setdefault((row.day, row.account), []).append(row)
    return {
        "currency": currency(),
        "since": since,
        "until": until,
        "days": [_day(day, account, found, priced) for (day, account), found in days.items()],
    }


def _daily_query(account_id: uuid.UUID | None, since: datetime.date, until: datetime.date) -> sa.Select:
    u, a = models.UsageRecord, models.Account
    query = (
        sa.select(u.day, a.name.label("account"), u.measure, u.model, sa.func.sum(u.quantity).label("quantity"))
        .join(a, a.id == u.account_id)
        .where(u.day >= since, u.day <= until)
        .group_by(u.day, a.name, u.measure, u.model)
        .order_by(u.day, a.name, u.measure, u.model)
    )
    return query if account_id is None else query.where(u.account_id == account_id)


def _check_range(since: datetime.date, until: datetime.date) -> None:
    if until < since:
        raise errors.Invalid("the range ends before it starts", {"until": ["must not be before since"]})
    if (until - since).days >= MAX_DAYS:
        raise errors.Invalid(f"at most {MAX_DAYS} days at a time", {"until": [f"at most {MAX_DAYS} days after since"]})


def _day(day: datetime.date, account: str, rows: list, priced: dict) -> dict:
    lines = _lines(rows, priced)
    costs = [line["cost"] for line in lines if line["cost"] is not None]
    return {
        "day": day,
        "account": account,
        "cost": float(sum(decimal.Decimal(str(c)) for c in costs)),
        "priced": len(costs) == len(lines),
        "lines": lines,
    }


def _lines(rows, priced: dict) -> list[dict]:
    return [
        {
            "measure": row.measure,
            "model": row.model,
            "unit": MEASURES.get(row.measure, ""),
            "quantity": round(row.quantity, 3),
            "cost": _cost(row.quantity, priced.get((row.measure, row.model)) or priced.get((row.measure, ""))),
        }
        for row in rows
    ]


def _cost(quantity: float, price: models.Price | None) -> float | None:
    if price is None:
        return None
    return float((decimal.Decimal(str(quantity)) * price.price / price.per).quantize(_MICRO))


def _prices() -> dict[tuple[str, str], models.Price]:
    return {(p.measure, p.model): p for p in db.session.scalars(sa.select(models.Price))}


def prices() -> list[models.Price]:
    """Return every price, by measure and model."""
    p = models.Price
    return list(db.session.scalars(sa.select(p).order_by(p.measure, p.model)))


def set_price(measure: str, price: str | decimal.Decimal, per: int = 1, model: str = "") -> models.Price:
    """Set the price of `per` units of `measure` for `model` ("" for every model without a price
    of its own). Raises Invalid naming the field for an unknown measure or a bad amount."""
    if measure not in MEASURES:
        raise errors.Invalid(f"unknown measure {measure!r}", {"measure": [f"one of {', '.join(MEASURES)}"]})
    amount = _amount(price)
    if not isinstance(per, int) or not 1 <= per <= 10**12:
        raise errors.Invalid("per must be a whole number of units", {"per": ["from 1 to 10^12"]})
    problem = inputs.text_problem(model) or ("at most 200 characters" if len(model) > 200 else None)
    if problem:
        raise errors.Invalid("bad model name", {"model": [problem]})
    row = db.session.get(models.Price, (measure, model)) or models.Price(measure=measure, model=model)
    row.price, row.per, row.updated_at = amount, per, models.utcnow()
    db.session.add(row)
    db.session.commit()
    return row


def _amount(price) -> decimal.Decimal:
    try:
        amount = decimal.Decimal(str(price))
    except decimal.InvalidOperation:
        raise errors.Invalid("price must be a number", {"price": ["a decimal number, e.g. 0.15"]}) from None
    if not amount.is_finite() or amount < 0 or amount >= 10**10:
        raise errors.Invalid("price out of range", {"price": ["from 0 to less than 10^10"]})
    return amount.quantize(decimal.Decimal("1e-10"))


def delete_price(measure: str, model: str = "") -> None:
    """Remove a price; raise NotFound if there is none."""
    row = db.session.get(models.Price, (measure, model))
    if row is None:
        raise errors.NotFound("no such price", {"measure": [f"no price for {measure!r} model {model!r}"]})
    db.session.delete(row)
    db.session.commit()


def describe_price(price: models.Price) -> dict:
    """Return a price as plain values (the amount as a string: exact)."""
    return {
        "measure": price.measure,
        "model": price.model,
        "unit": MEASURES[price.measure],
        "price": format(price.price.normalize(), "f"),
        "per": price.per,
        "updated_at": price.updated_at,
    }
