"""public holidays on people; the reply_exceptions table

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(sa.Column("holidays", sa.String(length=16), nullable=True))
    op.create_table(
        "reply_exceptions",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("except_user_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "user_id", "except_user_id"),
    )
    with op.batch_alter_table("reply_exceptions", schema=None) as batch_op:
        batch_op.create_index("ix_reply_exceptions_excepted", ["team_id", "except_user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reply_exceptions", schema=None) as batch_op:
        batch_op.drop_index("ix_reply_exceptions_excepted")
    op.drop_table("reply_exceptions")
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_column("holidays")
