"""channel office hours: channel_hours, channel_posts, channel_replies, channel_summaries

Revision ID: 0011
Revises: 0006
Create Date: 2026-12-02

A channel's own hours (issue 25): its settings, the top-level messages that came while its team was off, the one
threaded reply per sender and off window, and the one summary per off window.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0006"
branch_labels = None
depends_on = None

ID = sa.String(length=32)


def _delivery_columns() -> list[sa.Column]:
    return [
        sa.Column("state", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("delivery_state", sa.String(length=16), server_default="queued", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("posted_ts", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "channel_hours",
        sa.Column("team_id", ID, nullable=False),
        sa.Column("channel_id", ID, nullable=False),
        sa.Column("hours", sa.String(length=1000), nullable=False),
        sa.Column("tz", sa.String(length=64), nullable=False),
        sa.Column("days_off", sa.Text(), server_default="", nullable=False),
        sa.Column("holidays", sa.String(length=16), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("summary_to", ID, nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "channel_id"),
    )
    op.create_table(
        "channel_posts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("team_id", ID, nullable=False),
        sa.Column("channel_id", ID, nullable=False),
        sa.Column("ts", sa.String(length=32), nullable=False),
        sa.Column("sender_id", ID, nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("summary_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "channel_id", "ts", name="uq_channel_post_once"),
    )
    op.create_index("ix_channel_posts_due", "channel_posts", ["state", "due_at"], unique=False)
    op.create_table(
        "channel_replies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("team_id", ID, nullable=False),
        sa.Column("channel_id", ID, nullable=False),
        sa.Column("sender_id", ID, nullable=False),
        sa.Column("window_key", sa.String(length=40), nullable=False),
        sa.Column("message_ts", sa.String(length=32), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("back_at", sa.DateTime(), nullable=False),
        *_delivery_columns(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "channel_id", "sender_id", "window_key", name="uq_channel_reply_once"),
    )
    op.create_index("ix_channel_replies_due", "channel_replies", ["state", "next_attempt_at"], unique=False)
    op.create_table(
        "channel_summaries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("team_id", ID, nullable=False),
        sa.Column("channel_id", ID, nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        *_delivery_columns(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "channel_id", "due_at", name="uq_channel_summary_once"),
    )
    op.create_index("ix_channel_summaries_due", "channel_summaries", ["state", "next_attempt_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_channel_summaries_due", table_name="channel_summaries")
    op.drop_table("channel_summaries")
    op.drop_index("ix_channel_replies_due", table_name="channel_replies")
    op.drop_table("channel_replies")
    op.drop_index("ix_channel_posts_due", table_name="channel_posts")
    op.drop_table("channel_posts")
    op.drop_table("channel_hours")
