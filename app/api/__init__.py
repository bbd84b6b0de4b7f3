"""HTTP entry points: blueprints, schemas, one JSON error shape."""
