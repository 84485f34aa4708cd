"""Delivery outcomes as values: which recorded errors mean "maybe posted", and how long to wait before a retry.

Every message Offhours sends is a delivery; these rules are shared by every kind of delivery.
"""

from __future__ import annotations

from datetime import timedelta

# Errors after which Slack may have carried the post out. IN_FLIGHT is written by every claim (of a reply or a
# recap): found by the next claim, it means the attempt never recorded an outcome (its process died, or lost the
# database). A network error is recorded by `request_error`: UNKNOWN_PREFIX marks one that may have come after
# Slack got the whole request. The bare names are from rows written before that prefix existed.
IN_FLIGHT = "in_flight"
# The lookup for an earlier attempt's post failed: that attempt's outcome is still unknown, so look again.
LOOKUP_FAILED = "lookup_failed"
UNKNOWN_PREFIX = "unknown:"
UNKNOWN_OUTCOME_ERRORS = frozenset({
    "timeout", "TimeoutError", "OSError", "RemoteDisconnected", "ConnectionResetError", "unexpected", IN_FLIGHT,
    LOOKUP_FAILED,
})  # fmt: skip


def may_have_posted(error: str | None) -> bool:
    """Whether an attempt that ended with `error` may have posted all the same (None: it ended without a word)."""
    return error is None or error in UNKNOWN_OUTCOME_ERRORS or error.startswith(UNKNOWN_PREFIX)


def outcome_unknown(attempts: int, last_error: str | None) -> bool:
    """An earlier attempt may have posted: it timed out, or its process died mid-send (a lost lease)."""
    return attempts > 1 and may_have_posted(last_error)


def backoff(attempts: int) -> timedelta:
    """10 s, 20 s, 40 s ... capped at 10 minutes."""
    return timedelta(seconds=min(10 * 2 ** max(attempts - 1, 0), 600))
