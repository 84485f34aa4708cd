"""The statements a piece of code sends, as the driver receives them (for plans and statement counts)."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa


def claim_select(engine: sa.Engine, claim: Callable[[], object]) -> tuple[str, object]:
    """The first SELECT on `next_attempt_at` that `claim()` runs (an outbox's claim), with its parameters."""
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "next_attempt_at" in statement:
            seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        claim()
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    assert seen, "the claim ran no SELECT on next_attempt_at"
    return seen[0]
