"""Flask extensions, created unbound and bound to an app in `create_app`."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from app import models

# Rows stay readable after commit: a use case commits, then reads the task to publish its wake-up.
db = SQLAlchemy(model_class=models.Base, session_options={"expire_on_commit": False})
migrate = Migrate()
