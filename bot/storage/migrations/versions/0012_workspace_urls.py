"""workspace_urls: each workspace's web address, for recap permalinks (issue 23)

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-02

auth.test's `url` per workspace: a recap builds its links from it instead of one chat.getPermalink per message.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workspace_urls",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("url", sa.String(length=255), nullable=False),
        sa.Column("learned_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("team_id"),
    )


def downgrade() -> None:
    op.drop_table("workspace_urls")
