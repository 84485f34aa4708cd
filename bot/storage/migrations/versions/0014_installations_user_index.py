"""an index on the installations' user: every token read finds a person's rows instead of scanning the app's

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04

Every read of a person's token (before each DM's ack, and once per batch of auto-replies) asks for their rows by
workspace (or an org-wide install) and user. slack_sdk's index on `slack_installations` begins with `client_id,
enterprise_id, team_id`, and the workspace condition is an OR (`team_id = ? OR is_enterprise_install`), so
SQLite scanned every installation of the app, per DM: the cost of a DM grew with the number of people connected.
`(user_id, client_id, installed_at)` serves the person's latest token of this app in index order.
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = ["user_id", "client_id", "installed_at"]
    op.create_index("ix_installations_user", "slack_installations", columns, unique=False)
    if op.get_bind().dialect.name == "postgresql":
        # Until autovacuum's first ANALYZE the planner takes `client_id = ?` (every row of the app) for a few rows,
        # and the batch reads would go on reading the whole table through slack_sdk's index.
        op.execute("ANALYZE slack_installations")


def downgrade() -> None:
    op.drop_index("ix_installations_user", table_name="slack_installations")
