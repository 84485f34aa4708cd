"""the delivery claims' indexes end with id: a claim reads its LIMIT in index order instead of sorting the backlog

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

Every outbox is claimed with `state = 'pending' AND next_attempt_at <= now ORDER BY next_attempt_at, id LIMIT n`.
Its index `(state, next_attempt_at)` left the `id` tie-break to a sort, and PostgreSQL's planner, whenever its
estimate of the due rows was low (statistics from before a backlog built up) or the due times tied, sorted every
due row before the LIMIT: 250-390 ms per claim of 32 with 50,000 due auto-replies (bench/claims.py). With `id` in
the index the rows come out in the claim's order and the scan stops after n. Each index is replaced (same name,
one more column), not added beside: the old one is a prefix of the new.
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# (index, table): the claim index of each outbox
CLAIM_INDEXES = (
    ("ix_replies_due", "auto_replies"),
    ("ix_recaps_due", "recaps"),
    ("ix_channel_replies_due", "channel_replies"),
    ("ix_channel_summaries_due", "channel_summaries"),
    ("ix_urgent_due", "urgent_notices"),
    ("ix_status_updates_due", "status_updates"),
    ("ix_nudges_due", "nudges"),
)


def upgrade() -> None:
    for name, table in CLAIM_INDEXES:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, ["state", "next_attempt_at", "id"], unique=False)


def downgrade() -> None:
    for name, table in CLAIM_INDEXES:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, ["state", "next_attempt_at"], unique=False)
