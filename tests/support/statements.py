"""The statements a piece of code sends, as the driver receives them (for plans and statement counts)."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa


def statements_run(
    engine: sa.Engine, run: Callable[[], object], wanted: Callable[[str], bool]
) -> list[tuple[str, object]]:
    """The statements `run()` sends for which `wanted(statement)` holds, with their parameters, in order."""
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        if wanted(statement):
            seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    return seen


def claim_select(engine: sa.Engine, claim: Callable[[], object]) -> tuple[str, object]:
    """The first SELECT on `next_attempt_at` that `claim()` runs (an outbox's claim), with its parameters."""
    seen = statements_run(engine, claim, lambda s: s.lstrip().upper().startswith("SELECT") and "next_attempt_at" in s)
    assert seen, "the claim ran no SELECT on next_attempt_at"
    return seen[0]
