"""The dashboard's New task form is held to the same limits as the API: params it cannot
store are a 422 next to the form, never a 500 or a row."""

import pytest

from app import models
from app.extensions import db
from tests.dashboard.conftest import sign_in

pytestmark = pytest.mark.embedded


@pytest.mark.parametrize(
    "echo",
    ['"a\\u0000b"', '{"\\ud800": 1}', "[" * 70 + "]" * 70, "[" * 5000 + "]" * 5000, "7" * 5000],
    ids=["nul", "surrogate-key", "deep", "nested-5000", "huge-int"],
)
def test_the_form_refuses_params_it_cannot_store(backend, client, keys, echo):
    token = sign_in(client, keys["a_member"])
    answer = client.post("/dashboard/new/noop", data={"csrf_token": token, "p.echo": echo})
    assert answer.status_code == 422, answer.get_data(as_text=True)[:500]
    db.session.rollback()
    assert db.session.query(models.Task).count() == 0
