"""Accounts, users and API keys: creating them, an account's settings (fair-share weight,
quotas, submit rate, urgent tasks) with its usage, and turning a bearer key into a caller.

Roles: `operator` runs the platform (the whole queue, pools, limits, every account); an
account's `admin` manages that account (its tasks, users and keys, urgent priority); a
`member` submits and manages its account's tasks.

A key looks like `cvk_<prefix>_<secret>`. Only its SHA-256 digest is stored (the key is 32
random bytes, so a fast hash is enough; there is nothing to brute-force), and the plain key is
returned once, when it is made. The prefix identifies a key in lists and logs.
"""

import dataclasses
import datetime
import hashlib
import pathlib
import secrets
import uuid

import sqlalchemy as sa

from app import config, models, runtime
from app.extensions import db
from app.models import Status
from app.services import errors

LOCAL = "local"
ROLES = ("operator", "admin", "member")
# What `configure` may change, each with its check.
SETTABLE = ("weight", "max_waiting", "max_running", "submit_rate", "allow_urgent")
KEY_PREFIX = "cvk_"
# last_used_at is written at most this often per key, not on every request.
LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who made a request: every query is scoped to `account_id`."""

    account_id: uuid.UUID
    user_id: uuid.UUID
    role: str
    key_id: uuid.UUID

    @property
    def is_operator(self) -> bool:
        """Platform-wide: the whole queue, pools, limits, cleanup, every account's tasks."""
        return self.role == "operator"

    @property
    def is_admin(self) -> bool:
        """Manages its own account; an operator is an admin of its own account too."""
        return self.role in ("operator", "admin")


def local() -> models.Account:
    """Return the local account, creating it on first use."""
    account = by_name(LOCAL)
    if account is None:
        account = models.Account(name=LOCAL)
        db.session.add(account)
        db.session.commit()
    return account


def by_name(name: str) -> models.Account | None:
    """Return the account called `name`, or None."""
    return db.session.scalars(sa.select(models.Account).where(models.Account.name == name)).first()


def create_account(name: str) -> models.Account:
    """Add an account; raise Invalid if the name is empty, Conflict if it is taken."""
    name = _required(name, "name")
    if by_name(name) is not None:
        raise errors.Conflict(f"account {name!r} exists", {"name": ["already exists"]})
    account = models.Account(name=name)
    db.session.add(account)
    db.session.commit()
    return account


def configure(name: str, **changes) -> models.Account:
    """Change an account's settings (`SETTABLE`; a value of None takes the platform default
    back); raise NotFound, or Invalid naming each bad field."""
    account = _account(name)
    unknown = set(changes) - set(SETTABLE)
    if unknown:
        raise errors.Invalid("unknown settings", {field: ["unknown setting"] for field in sorted(unknown)})
    problems = {}
    for field, value in changes.items():
        try:
            setattr(account, field, _checked(field, value))
        except ValueError as exc:
            problems[field] = [str(exc)]
    if problems:
        db.session.rollback()
        raise errors.Invalid("invalid account settings: " + ", ".join(sorted(problems)), problems)
    db.session.commit()
    return account


def _checked(field: str, value):
    if field == "weight":
        if value is None or not 0 < float(value) <= 1000:
            raise ValueError("must be a number above 0, at most 1000")
        return float(value)
    if field in ("max_waiting", "max_running"):
        if value is not None and not 0 <= int(value) <= 10**9:
            raise ValueError("must be from 0 to 1000000000, or none for the platform default")
        return None if value is None else int(value)
    if field == "submit_rate":
        return None if value is None else config.parse_rate(value)
    return bool(value)


def describe(account: models.Account) -> dict:
    """Return the account's settings, each with the value in force (its own or the platform
    default), and its usage: tasks waiting and running now."""
    settings = runtime.current().settings
    return {
        "id": account.id,
        "name": account.name,
        "weight": account.weight,
        "allow_urgent": account.allow_urgent,
        "quotas": {
            "max_waiting": _in_force(account.max_waiting, settings["CONVEYOR_ACCOUNT_MAX_WAITING"]),
            "max_running": _in_force(account.max_running, settings["CONVEYOR_ACCOUNT_MAX_RUNNING"]),
            "submit_rate": _in_force(account.submit_rate, settings["CONVEYOR_ACCOUNT_SUBMIT_RATE"]),
            "key_submit_rate": {"value": settings["CONVEYOR_SUBMIT_RATE"], "default": True},
        },
        "usage": usage(account.id),
    }


def _in_force(own, default) -> dict:
    return {"value": default if own is None else own, "default": own is None}


def usage(account_id: uuid.UUID) -> dict:
    """Return how many of the account's tasks wait and run now (two partial-index counts)."""
    task = models.Task
    counts = dict(
        db.session.execute(
            sa.select(task.status, sa.func.count())
            .where(task.account_id == account_id, task.status.in_([Status.QUEUED, Status.RUNNING]))
            .group_by(task.status)
        ).all()
    )
    return {"waiting": counts.get(Status.QUEUED, 0), "running": counts.get(Status.RUNNING, 0)}


def list_accounts() -> list[models.Account]:
    """Return every account, by name."""
    return list(db.session.scalars(sa.select(models.Account).order_by(models.Account.name)))


def get(account_id: uuid.UUID) -> models.Account:
    """Return the account with this id; raise NotFound."""
    account = db.session.get(models.Account, account_id)
    if account is None:
        raise errors.NotFound("no such account", {"account": ["not found"]})
    return account


def account(name: str) -> models.Account:
    """Return the account called `name`; raise NotFound."""
    return _account(name)


def create_user(account_name: str, name: str, role: str = "member") -> models.User:
    """Add a user to an account; raise NotFound, Invalid or Conflict."""
    account = _account(account_name)
    name = _required(name, "name")
    if role not in ROLES:
        raise errors.Invalid(f"unknown role {role!r}", {"role": [f"must be one of: {', '.join(ROLES)}"]})
    if _user(account, name) is not None:
        raise errors.Conflict(f"user {name!r} exists in {account.name!r}", {"name": ["already exists"]})
    user = models.User(account_id=account.id, name=name, role=role)
    db.session.add(user)
    db.session.commit()
    return user


def create_key(account_name: str, user_name: str, name: str = "") -> tuple[models.ApiKey, str]:
    """Make a key for a user; return the row and the plain key (shown once, never stored)."""
    account = _account(account_name)
    user = _user(account, user_name)
    if user is None:
        raise errors.NotFound(f"no user {user_name!r} in {account.name!r}", {"user": ["not found"]})
    prefix = secrets.token_hex(4)
    plain = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = models.ApiKey(
        account_id=account.id, user_id=user.id, name=name or f"{user.name} key", prefix=prefix, digest=_digest(plain)
    )
    db.session.add(key)
    db.session.commit()
    return key, plain


def list_keys(account_name: str | None = None) -> list[tuple[models.ApiKey, models.User, models.Account]]:
    """Return keys with their user and account, oldest first, optionally of one account."""
    query = (
        sa.select(models.ApiKey, models.User, models.Account)
        .join(models.User, models.User.id == models.ApiKey.user_id)
        .join(models.Account, models.Account.id == models.ApiKey.account_id)
        .order_by(models.ApiKey.created_at)
    )
    if account_name is not None:
        query = query.where(models.Account.id == _account(account_name).id)
    return [tuple(row) for row in db.session.execute(query).all()]


def revoke_key(prefix: str) -> models.ApiKey:
    """Revoke the key with this prefix (`cvk_` optional); its requests get 401 from now on."""
    prefix = prefix.removeprefix(KEY_PREFIX).split("_")[0]
    key = db.session.scalars(sa.select(models.ApiKey).where(models.ApiKey.prefix == prefix)).first()
    if key is None:
        raise errors.NotFound(f"no key with prefix {prefix!r}", {"prefix": ["not found"]})
    if key.revoked_at is None:
        key.revoked_at = models.utcnow()
        db.session.commit()
    runtime.current().forget(("caller", key.digest))
    return key


def authenticate(plain: str) -> Caller | None:
    """Return the caller a bearer key stands for, or None if it is unknown or revoked.

    A known key is remembered for `CONVEYOR_AUTH_CACHE_SECONDS` in this process, so a revoke
    reaches other processes within that time (this one at once)."""
    if not plain.startswith(KEY_PREFIX):
        return None
    conveyor = runtime.current()
    seconds = conveyor.settings["CONVEYOR_AUTH_CACHE_SECONDS"]
    digest = _digest(plain)
    caller = conveyor.memo(("caller", digest), seconds, lambda: _lookup(digest))
    if caller is None:
        conveyor.forget(("caller", digest))  # unknown keys are not remembered: a new key works at once
    return caller


def _lookup(digest: str) -> Caller | None:
    row = db.session.execute(
        sa.select(models.ApiKey.id, models.ApiKey.account_id, models.ApiKey.user_id, models.ApiKey.last_used_at)
        .add_columns(models.User.role)
        .join(models.User, models.User.id == models.ApiKey.user_id)
        .where(models.ApiKey.digest == digest, models.ApiKey.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    now = models.utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        db.session.execute(sa.update(models.ApiKey).where(models.ApiKey.id == row.id).values(last_used_at=now))
        db.session.commit()
    return Caller(account_id=row.account_id, user_id=row.user_id, role=row.role, key_id=row.id)


def local_admin_key(var_dir: str) -> tuple[str, bool]:
    """Return the local operator key, stored in `var_dir/admin-key`; make the local account,
    its `admin` user (role `operator`: whoever runs `manage.py run` runs the platform) and the
    key on first use. Return the key and whether it is new."""
    path = pathlib.Path(var_dir) / "admin-key"
    if path.exists():
        plain = path.read_text().strip()
        if authenticate(plain) is not None:
            return plain, False
    local()
    user = _user(by_name(LOCAL), "admin")
    if user is None:
        create_user(LOCAL, "admin", "operator")
    elif user.role != "operator":  # made before operators existed, and not migrated
        user.role = "operator"
        db.session.commit()
    _key, plain = create_key(LOCAL, "admin", "local admin key")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(plain + "\n")
    return plain, True


def _digest(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


def _required(value: str, field: str) -> str:
    value = (value or "").strip()
    if not value:
        raise errors.Invalid(f"{field} is required", {field: ["must not be empty"]})
    return value


def _account(name: str) -> models.Account:
    account = by_name(name)
    if account is None:
        raise errors.NotFound(f"no account {name!r}", {"account": ["not found"]})
    return account


def _user(account: models.Account, name: str) -> models.User | None:
    query = sa.select(models.User).where(models.User.account_id == account.id, models.User.name == name)
    return db.session.scalars(query).first()
