"""nudges: a reminder before the reply-by time an auto-reply promised; people.nudge_before_s

Revision ID: 0010
Revises: 0011
Create Date: 2026-12-02

One row per promise (unique per the DM the auto-reply answered), due `nudge.before` of working time ahead of it,
sent once by the delivery engine. A person's own lead time is people.nudge_before_s (0: off; NULL: the config's).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("nudge_before_s", sa.Integer(), nullable=True))
    op.create_table(
        "nudges",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("sender_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("message_ts", sa.String(length=32), nullable=False),
        sa.Column("thread_ts", sa.String(length=32), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("external", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("promised_at", sa.DateTime(), nullable=False),
        sa.Column("planned_at", sa.DateTime(), nullable=False),
        sa.Column("snoozed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.Column("state", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("delivery_state", sa.String(length=16), server_default="queued", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("posted_channel", sa.String(length=32), nullable=True),
        sa.Column("posted_ts", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "user_id", "channel_id", "message_ts", name="uq_nudge_per_promise"),
    )
    op.create_index("ix_nudges_due", "nudges", ["state", "next_attempt_at"], unique=False)
    op.create_index("ix_nudges_channel", "nudges", ["team_id", "user_id", "channel_id", "state"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_nudges_channel", table_name="nudges")
    op.drop_index("ix_nudges_due", table_name="nudges")
    op.drop_table("nudges")
    with op.batch_alter_table("people") as batch:
        batch.drop_column("nudge_before_s")
