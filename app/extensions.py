"""Flask extensions, created unbound and bound to an app in `create_app`."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from app import models

db = SQLAlchemy(model_class=models.Base)
migrate = Migrate()
