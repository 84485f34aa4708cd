"""Delivery states and outcomes as values: what a delivery's row says about it, and how long to wait to retry.

Every message Offhours sends (an auto-reply, a recap; next a status update, an urgent notice) is a delivery. Its
row holds a `DeliveryState`; "maybe posted" is a state of its own (`OUTCOME_UNKNOWN`, and `IN_FLIGHT` found by a
later claim), so that the next attempt knows to look for an earlier post first. These rules are shared by every
kind of delivery.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta


class DeliveryState(enum.StrEnum):
    """Where one delivery stands; stored as its value in the `delivery_state` column."""

    QUEUED = "queued"  # never tried
    IN_FLIGHT = "in_flight"  # claimed: an attempt is under way, or its process died (found by the next claim)
    NOT_POSTED = "not_posted"  # an attempt ended and Slack certainly did not post: due again at next_attempt_at
    OUTCOME_UNKNOWN = "outcome_unknown"  # an attempt ended in a way Slack may have posted: the next one looks first
    SENT = "sent"
    FAILED = "failed"  # given up (refused for good, too many attempts, or maybe shown and not to be repeated)
    EXPIRED = "expired"  # no longer worth sending (the person is back, the DM was answered...)
    EMPTY = "empty"  # a recap with nothing left in it

    @property
    def open(self) -> bool:
        """Still to be delivered (the row's lifecycle `state` is "pending")."""
        return self in _OPEN

    @property
    def state(self) -> str:
        """The row's lifecycle `state` column for this delivery state: pending, sent, failed, expired or empty."""
        return "pending" if self in _OPEN else self.value


_OPEN = frozenset({DeliveryState.QUEUED, DeliveryState.IN_FLIGHT, DeliveryState.NOT_POSTED,
                   DeliveryState.OUTCOME_UNKNOWN})  # fmt: skip

# The error code recorded when the lookup for an earlier attempt's post failed (its outcome is still unknown).
LOOKUP_FAILED = "lookup_failed"
# The error code of a claim whose process never recorded an outcome (it died, or lost the database).
IN_FLIGHT = "in_flight"


def maybe_posted(state: DeliveryState) -> bool:
    """Whether the previous attempt, as a claim found it, may have posted all the same: look before posting."""
    return state in (DeliveryState.IN_FLIGHT, DeliveryState.OUTCOME_UNKNOWN)


@dataclass(frozen=True, slots=True)
class Failure:
    """What a failed call to Slack says: its code (for people and logs) and whether Slack may have acted on it."""

    code: str
    maybe_posted: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one attempt at a delivery, to be written to its row by its kind."""

    state: DeliveryState
    error: str | None = None
    retry_at: datetime | None = None  # for an open state: when it is due again
    ts: str | None = None  # the posted message (SENT)
    channel: str | None = None
    # The claim posted nothing and asked nothing of Slack's posting limits (it waited for a lookup slot, or was
    # handed back at stop): kinds that count attempts give this one back.
    untried: bool = False
    found: bool = False  # SENT by finding an earlier attempt's post, not by posting


def backoff(attempts: int) -> timedelta:
    """10 s, 20 s, 40 s ... capped at 10 minutes."""
    return timedelta(seconds=min(10 * 2 ** max(attempts - 1, 0), 600))
