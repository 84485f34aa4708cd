"""Alembic environment: runs on the connection bot.storage.migrate hands over, or on sqlalchemy.url for the CLI."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

import bot.storage.ops  # noqa: F401  (scheduler_ticks joins the metadata there: autogenerate must see it)
from bot.storage.schema import metadata

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
