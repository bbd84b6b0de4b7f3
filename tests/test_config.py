"""Settings: the embedded default with nothing set, and clear errors naming each bad setting."""

import pytest

from app import config


def test_no_settings_means_the_embedded_default(tmp_path):
    settings = config.load({"CONVEYOR_VAR_DIR": str(tmp_path)})
    assert settings["DATABASE_URL"] == f"sqlite:///{tmp_path}/conveyor.db"
    assert settings["BROKER_URL"] == "filesystem://"
    assert config.is_embedded(settings)


def test_postgres_and_redis_urls_are_accepted(tmp_path):
    settings = config.load(
        {
            "DATABASE_URL": "postgresql://u@db/conveyor",
            "BROKER_URL": "redis://r:6379/0",
            "CONVEYOR_VAR_DIR": str(tmp_path),
        }
    )
    assert settings["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg2://u@db/conveyor"
    assert not config.is_embedded(settings)


def test_every_bad_setting_is_named_at_once(tmp_path):
    with pytest.raises(config.ConfigError) as raised:
        config.load(
            {
                "DATABASE_URL": "mysql://x",
                "CONVEYOR_LEASE_SECONDS": "soon",
                "CONVEYOR_POLICIES": "[1]",
                "CONVEYOR_VAR_DIR": str(tmp_path),
            }
        )
    message = str(raised.value)
    for name in ("DATABASE_URL", "CONVEYOR_LEASE_SECONDS", "CONVEYOR_POLICIES"):
        assert name in message


def test_lease_must_outlast_two_heartbeats(tmp_path):
    with pytest.raises(config.ConfigError, match="CONVEYOR_LEASE_SECONDS must be at least twice"):
        config.load(
            {"CONVEYOR_LEASE_SECONDS": "2", "CONVEYOR_HEARTBEAT_SECONDS": "1.5", "CONVEYOR_VAR_DIR": str(tmp_path)}
        )


def test_policy_override_for_unknown_type_stops_the_start(tmp_path):
    import app as app_package
    from processors import errors

    with pytest.raises(errors.RegistryError, match="unknown task type 'nope'"):
        app_package.create_app(
            {"CONVEYOR_POLICIES": '{"nope": {"max_attempts": 2}}', "CONVEYOR_VAR_DIR": str(tmp_path)}
        )


def test_the_body_limit_is_1_mib_and_checked(tmp_path):
    settings = config.load({"CONVEYOR_VAR_DIR": str(tmp_path)})
    assert settings["CONVEYOR_MAX_BODY_BYTES"] == settings["MAX_CONTENT_LENGTH"] == 2**20
    assert config.load({"CONVEYOR_MAX_BODY_BYTES": "65536"})["MAX_CONTENT_LENGTH"] == 65536
    for bad in ("0", "lots", str(2**31)):
        with pytest.raises(config.ConfigError, match="CONVEYOR_MAX_BODY_BYTES"):
            config.load({"CONVEYOR_MAX_BODY_BYTES": bad, "CONVEYOR_VAR_DIR": str(tmp_path)})
