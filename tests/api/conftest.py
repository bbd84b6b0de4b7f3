"""API test fixtures: a test client, and keys for two accounts, each with an admin and a
member, and an operator in account a (made through the same service `manage.py keys create`
uses)."""

import uuid

import pytest

from app.services import accounts


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def keys(app) -> dict[str, str]:
    """Bearer keys by caller: `a_admin`, `a_member`, `a_operator`, `b_admin`, `b_member`."""
    found = {}
    for side in ("a", "b"):
        account = accounts.create_account(f"{side}-{uuid.uuid4().hex[:8]}")
        for role in ("admin", "member", "operator")[: 3 if side == "a" else 2]:
            accounts.create_user(account.name, role, role)
            found[f"{side}_{role}"] = accounts.create_key(account.name, role)[1]
    return found


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
