"""delivery state as a column

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

`auto_replies` and `recaps` get `delivery_state` (bot/domain/delivery.py's DeliveryState). Until now it was told
by markers in `last_error`: "in_flight" (or nothing) on a claimed row, an "unknown:" prefix or a bare name such
as "timeout" after an attempt that may have posted, "not_posted" on a claim handed back at stop. Each open row
is converted to the state its marker meant, and `last_error` keeps only the error's code.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("auto_replies", "recaps")
# The bare names old rows carry for an attempt that may have posted (before the "unknown:" prefix, or not a
# network error at all).
MAYBE_POSTED = ("timeout", "TimeoutError", "OSError", "RemoteDisconnected", "ConnectionResetError", "unexpected",
                "lookup_failed")  # fmt: skip
PREFIX = "unknown:"


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("delivery_state", sa.String(length=16), server_default="queued",
                                          nullable=False))  # fmt: skip
        t = sa.table(table, sa.column("state"), sa.column("attempts"), sa.column("last_error"),
                     sa.column("delivery_state"))  # fmt: skip
        error = t.c.last_error
        state = sa.case(
            (t.c.state != "pending", t.c.state),
            (t.c.attempts == 0, "queued"),
            (sa.or_(error.is_(None), error == "in_flight"), "in_flight"),
            (sa.or_(error.like(PREFIX + "%"), error.in_(MAYBE_POSTED)), "outcome_unknown"),
            else_="not_posted",
        )
        code = sa.case(
            (error.like(PREFIX + "%"), sa.func.substr(error, len(PREFIX) + 1)),
            (sa.and_(t.c.state == "pending", error.in_(("in_flight", "not_posted"))), None),
            else_=error,
        )
        # One statement: both CASEs read the row as it was.
        op.execute(t.update().values(delivery_state=state, last_error=code))


def downgrade() -> None:
    for table in TABLES:
        t = sa.table(table, sa.column("state"), sa.column("last_error"), sa.column("delivery_state"))
        error = t.c.last_error
        marker = sa.case(
            (t.c.delivery_state == "in_flight", "in_flight"),
            (sa.and_(t.c.delivery_state == "outcome_unknown", error.is_(None)), "in_flight"),
            (sa.and_(t.c.delivery_state == "outcome_unknown", error.not_in(MAYBE_POSTED)), PREFIX + error),
            (sa.and_(t.c.delivery_state == "not_posted", error.is_(None)), "not_posted"),
            else_=error,
        )
        op.execute(t.update().values(last_error=sa.func.substr(marker, 1, 200)))
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("delivery_state")
