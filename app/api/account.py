"""`/api/account`: the caller's own account: its settings (fair-share weight, quotas, submit
rates, urgent tasks), each with the value in force, and its usage now (tasks waiting,
running). Settings are changed with `manage.py accounts set`."""

import flask_smorest

from app.api import auth, schemas
from app.services import accounts

blueprint = flask_smorest.Blueprint("account", __name__, url_prefix="/api/account", description="Your account")
blueprint.before_request(auth.authenticate)


@blueprint.route("", methods=["GET"])
@blueprint.response(200, schemas.AccountInfo)
def account():
    """Your account: settings, quotas in force and current usage"""
    caller = auth.caller()
    return {**accounts.describe(accounts.get(caller.account_id)), "role": caller.role}
