"""status_prefs and status_updates: a person's Slack status follows their hours

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

What each person chose about status sync, and the status updates (a kind of delivery): set at an off window's
start, cleared or restored, each recorded once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "status_prefs",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=True),
        sa.Column("text", sa.String(length=400), nullable=True),
        sa.Column("emoji", sa.String(length=100), nullable=True),
        sa.Column("replace", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("dnd", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "user_id"),
    )
    op.create_table(
        "status_updates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("window_end", sa.DateTime(), nullable=False),
        sa.Column("seq", sa.Integer(), server_default="0", nullable=False),
        sa.Column("what", sa.String(length=8), server_default="status", nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("text", sa.String(length=400), nullable=True),
        sa.Column("emoji", sa.String(length=100), nullable=True),
        sa.Column("state", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("delivery_state", sa.String(length=16), server_default="queued", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("applied", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=True),
        sa.Column("saved_text", sa.String(length=400), nullable=True),
        sa.Column("saved_emoji", sa.String(length=100), nullable=True),
        sa.Column("saved_expiration", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "user_id", "what", "window_end", "seq", name="uq_status_update_once"),
    )
    op.create_index("ix_status_updates_due", "status_updates", ["state", "next_attempt_at"], unique=False)
    op.create_index("ix_status_updates_person", "status_updates", ["team_id", "user_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_status_updates_person", table_name="status_updates")
    op.drop_index("ix_status_updates_due", table_name="status_updates")
    op.drop_table("status_updates")
    op.drop_table("status_prefs")
