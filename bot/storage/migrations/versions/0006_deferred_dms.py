"""deferred_dms: DMs whose other member could not be looked up before the ack

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

When the connected person writes a DM and conversations.info is refused (429, 5xx, the network) before the ack,
the event is kept here and answered 200; a scheduler job looks the other member up later and records the DM.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deferred_dms",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("ts", sa.String(length=32), nullable=False),
        sa.Column("thread_ts", sa.String(length=32), nullable=True),
        sa.Column("writer_id", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "channel_id", "ts"),
    )
    op.create_index("ix_deferred_dms_due", "deferred_dms", ["next_attempt_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_deferred_dms_due", table_name="deferred_dms")
    op.drop_table("deferred_dms")
