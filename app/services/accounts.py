"""Accounts: the local account the CLI and the embedded default act as."""

import sqlalchemy as sa

from app import models
from app.extensions import db

LOCAL = "local"


def local() -> models.Account:
    """Return the local account, creating it on first use."""
    account = db.session.scalars(sa.select(models.Account).where(models.Account.name == LOCAL)).first()
    if account is None:
        account = models.Account(name=LOCAL)
        db.session.add(account)
        db.session.commit()
    return account


def by_name(name: str) -> models.Account | None:
    """Return the account called `name`, or None."""
    return db.session.scalars(sa.select(models.Account).where(models.Account.name == name)).first()
