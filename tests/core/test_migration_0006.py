"""Migration 0006 on existing data: the old installation-wide retention setting becomes every
business's own, the SMTP row stays the installation default, and the downgrade keeps only it."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine, text

from core.db import alembic_config


def test_upgrade_moves_retention_to_each_business_and_downgrade_round_trips(fresh_engine: Engine) -> None:
    config = alembic_config(fresh_engine)
    command.upgrade(config, "0005")
    with fresh_engine.begin() as conn:
        for code in ("a", "b"):
            conn.execute(
                text(
                    "INSERT INTO businesses (code, name, currency, timezone, data_version, created_at) "
                    "VALUES (:c, :c, 'EUR', 'UTC', 0, CURRENT_TIMESTAMP)"
                ),
                {"c": code},
            )
        conn.execute(
            text(
                "INSERT INTO app_settings (key, value, updated_at) VALUES ('retention_days', '12', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO smtp_settings (host, port, security, username, password_encrypted, from_address, "
                "from_name, reply_to, key_fingerprint, updated_at) VALUES ('smtp.example.com', 587, 'starttls', "
                "'', '', 'r@example.com', 'T', '', '', CURRENT_TIMESTAMP)"
            )
        )
    command.upgrade(config, "0006")
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT code, retention_days FROM businesses ORDER BY code")).all() == [
            ("a", 12),
            ("b", 12),
        ]
        assert (
            conn.execute(text("SELECT count(*) FROM app_settings WHERE key = 'retention_days'")).scalar() == 0
        )
        assert conn.execute(text("SELECT business_id, host FROM smtp_settings")).all() == [
            (None, "smtp.example.com")
        ]
        business_id = conn.execute(text("SELECT id FROM businesses WHERE code = 'a'")).scalar()
    with fresh_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO smtp_settings (business_id, host, port, security, username, password_encrypted, "
                "from_address, from_name, reply_to, key_fingerprint, updated_at) VALUES (:b, 'smtp.a.example', "
                "587, 'starttls', '', '', 'r@a.example', 'A', '', '', CURRENT_TIMESTAMP)"
            ),
            {"b": business_id},
        )
        assert conn.execute(text("SELECT min(session_epoch) FROM users")).scalar() is None
    command.downgrade(config, "0005")
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT host FROM smtp_settings")).scalars().all() == ["smtp.example.com"]
    command.upgrade(config, "head")
