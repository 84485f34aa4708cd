"""the reply window as an interval; presence in a DM; a message for people of other organisations

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

`auto_replies` gets `window_start`/`window_end`: the off-window (or day) a reply answered, so that the
once-per-window rule can look for an overlapping window after a change of hours, zone or days off, and so that
retention keeps a reply until its window has ended; `external` marks a reply to someone of another
organisation. Existing rows get their interval from their key ("back:" the
end; "day:" the local day is unknown here, so the UTC day around it). `dm_presence` holds when a person last wrote
in a DM. `people.external_message` is the auto-reply shown to people of another organisation (Slack Connect).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _interval(key: str, received_at: datetime) -> tuple[datetime, datetime]:
    try:
        if key.startswith("back:"):
            return received_at, datetime.strptime(key[5:], "%Y-%m-%dT%H:%MZ")
        if key.startswith("day:"):
            day = datetime.strptime(key[4:], "%Y-%m-%d")
            return day - timedelta(hours=14), day + timedelta(hours=38)  # every zone's version of that date
    except ValueError:
        pass
    return received_at, received_at


def upgrade() -> None:
    with op.batch_alter_table("auto_replies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("window_start", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("window_end", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("external", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index("ix_replies_sender_window", ["team_id", "recipient_id", "sender_id"], unique=False)
    replies = sa.table(
        "auto_replies", sa.column("id", sa.Integer), sa.column("window_key", sa.String),
        sa.column("received_at", sa.DateTime), sa.column("window_start", sa.DateTime),
        sa.column("window_end", sa.DateTime),
    )  # fmt: skip
    conn = op.get_bind()
    for row in conn.execute(sa.select(replies.c.id, replies.c.window_key, replies.c.received_at)).all():
        start, end = _interval(row.window_key, row.received_at)
        conn.execute(replies.update().where(replies.c.id == row.id).values(window_start=start, window_end=end))
    op.create_table(
        "dm_presence",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("wrote_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "user_id", "channel_id"),
    )
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_message", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_column("external_message")
    op.drop_table("dm_presence")
    with op.batch_alter_table("auto_replies", schema=None) as batch_op:
        batch_op.drop_index("ix_replies_sender_window")
        batch_op.drop_column("external")
        batch_op.drop_column("window_end")
        batch_op.drop_column("window_start")
