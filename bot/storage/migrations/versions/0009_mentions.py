"""mentions: channel mentions and group DMs (issue 20)

Revision ID: 0009
Revises: 0010
Create Date: 2026-12-02

A person's choice (mention_settings), where a recorded message reached them (after_hours_messages.source) and
whether its auto-reply is ephemeral (auto_replies.ephemeral).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mention_settings",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "user_id"),
    )
    with op.batch_alter_table("after_hours_messages") as batch:
        batch.add_column(sa.Column("source", sa.String(length=8), server_default="dm", nullable=False))
    with op.batch_alter_table("auto_replies") as batch:
        batch.add_column(sa.Column("ephemeral", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("auto_replies") as batch:
        batch.drop_column("ephemeral")
    with op.batch_alter_table("after_hours_messages") as batch:
        batch.drop_column("source")
    op.drop_table("mention_settings")
