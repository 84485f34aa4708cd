"""urgent_routes, urgent_notices: "It's urgent" — where a person's urgent notes go, and the notes' outbox

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

A person routes urgent notes to a backup or to themselves; a sender's note is recorded before the modal's ack, at
most once per sender and off-window (unique key), and delivered by the delivery engine.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "urgent_routes",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("route_to", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "user_id"),
    )
    op.create_index("ix_urgent_routes_to", "urgent_routes", ["team_id", "route_to"], unique=False)
    op.create_table(
        "urgent_notices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("recipient_id", sa.String(length=32), nullable=False),
        sa.Column("sender_id", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=32), nullable=False),
        sa.Column("window_key", sa.String(length=40), nullable=False),
        sa.Column("reply_id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("message_ts", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("delivery_state", sa.String(length=16), server_default="queued", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("notice_channel", sa.String(length=32), nullable=True),
        sa.Column("notice_ts", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "recipient_id", "sender_id", "window_key", name="uq_urgent_once_per_window"),
    )
    op.create_index("ix_urgent_due", "urgent_notices", ["state", "next_attempt_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_urgent_due", table_name="urgent_notices")
    op.drop_table("urgent_notices")
    op.drop_index("ix_urgent_routes_to", table_name="urgent_routes")
    op.drop_table("urgent_routes")
