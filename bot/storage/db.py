"""The names bot/storage/engine.py and bot/storage/schema.py define, under the one module name older code imports.

A re-export only, kept so that modules being rewritten beside this split (the outbox, the recaps, migrations)
keep importing `db`; new code imports `engine` and `schema` directly.
"""

from __future__ import annotations

from bot.storage.engine import (
    READ_ONLY,
    WRITE_QUEUE_TIMEOUT_S,
    UTCDateTime,
    _write_queues,
    insert_ignore,
    make_engine,
    reading,
    upsert,
    writing,
)
from bot.storage.schema import (
    ID,
    TOKEN_COLUMNS,
    bots,
    dm_channels,
    dm_presence,
    installations,
    messages,
    metadata,
    oauth_states,
    people,
    profiles,
    recaps,
    replies,
    urgent_notices,
)

__all__ = [
    "ID", "READ_ONLY", "TOKEN_COLUMNS", "WRITE_QUEUE_TIMEOUT_S", "UTCDateTime", "_write_queues", "bots",
    "dm_channels", "dm_presence", "insert_ignore", "installations", "make_engine", "messages", "metadata",
    "oauth_states", "people", "profiles", "reading", "recaps", "replies", "upsert", "urgent_notices", "writing",
]  # fmt: skip
