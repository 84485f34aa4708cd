"""What one kind of delivery tells the engine (bot/workers/engine.py): how its deliveries are claimed, prepared per
batch, composed, posted, looked up and settled, and the usual answers a kind inherits (KindDefaults).

The kinds: bot/workers/replies.py (auto-replies), recaps.py, status.py (the Slack status that follows the hours),
urgent.py (notices to a backup), nudges.py (the reply-by reminder), channel_hours.py (a channel's office hours).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

from bot.domain.delivery import LOOKUP_FAILED, DeliveryState, Outcome

S = DeliveryState


class Claim(Protocol):
    """One claimed delivery, as a kind's storage hands it over."""

    @property
    def id(self) -> int: ...
    @property
    def team_id(self) -> str: ...
    @property
    def attempts(self) -> int: ...  # this claim's attempt number
    @property
    def last_error(self) -> str | None: ...
    @property
    def leased_until(self) -> datetime | None: ...
    @property
    def outcome_unknown(self) -> bool: ...


C = TypeVar("C", bound=Claim)
P = TypeVar("P")  # what a kind's per-batch `prepare` hands to `compose` for one claim
R = TypeVar("R")  # what a kind composed for one claim, ready to post: the text, the token...


class ClaimLost(Exception):
    """Raised by a kind's post when its claim turned out, mid-post, to be another's: nothing more is done or written."""


@dataclass(frozen=True, slots=True)
class Posted:
    """Where a post (or the earlier post a lookup found) landed."""

    channel: str | None
    ts: str | None


class Settled(Protocol):
    def __call__(self, *, but_last: bool = False) -> None:
        """Return once everything handed to the engine so far is settled; `but_last`: everything but the latest
        batch (which goes on posting while the kind claims the next)."""
        ...


class DeliveryKind(Protocol[C, P, R]):
    """What one kind of delivery tells the engine. Methods run in the claiming thread unless said otherwise."""

    name: str  # in log lines: "reply id=... outcome=..."
    metric_name: str  # the `kind` label of offhours_deliveries_total (bot/metrics.py)
    lease: timedelta  # how long a claim holds
    max_attempts: int | None  # refused for good after this many retryable failures (None: retried for ever)
    look_up_after_5xx: bool  # whether a 5xx (or internal_error) makes the next attempt look for the post first

    def claims(self, at: Callable[[], datetime], wait: Settled) -> Generator[tuple[datetime, list[C]]]:
        """Claimed batches, each with the `at()` it was claimed at; `wait()` returns once everything handed to the
        engine so far is settled."""
        ...

    def prepare(self, batch: list[C], *, now: datetime) -> list[tuple[C, P | Outcome]]:
        """Per-batch reads and checks: what to post for each claim, or the outcome that settles it at once."""
        ...

    def compose(self, claim: C, prepared: P, *, now: datetime) -> R | Outcome:
        """In a posting thread: the per-claim work before posting (or an outcome that settles it)."""
        ...

    def can_look_up(self, prepared: R) -> bool:
        """Whether an earlier post can be found (an ephemeral message cannot): if not, maybe-posted is given up."""
        ...

    def lookup_wait(self, claim: C, *, now: datetime) -> datetime | None:
        """None: look now; else when this claim's lookup may go to Slack (the kind's rate-limit bookkeeping)."""
        ...

    def lookup_rate_limited(self, claim: C, *, wait: timedelta, now: datetime) -> Outcome:
        """Slack answered the lookup with 429 (Retry-After `wait`)."""
        ...

    def look_up(self, claim: C, prepared: R) -> Posted | None:
        """In a posting thread: the post an earlier attempt made, if it did."""
        ...

    def renew(self, claim: C, *, until: datetime) -> bool:
        """Whether the claim still holds in the database (same attempt, not re-claimed); if so, extend it."""
        ...

    def post(self, claim: C, prepared: R) -> Posted:
        """In a posting thread: post it (raises what the Web API client raises)."""
        ...

    def revoked(self, claim: C, code: str) -> bool:
        """Slack said the token is gone: True when the kind dealt with it (the delivery is gone too)."""
        ...

    def rate_limited(self, claim: C, *, until: datetime) -> None:
        """Slack answered a post with 429: nothing of this kind should be posted where it applies before `until`."""
        ...

    def settle(self, claim: C, prepared: R | None, outcome: Outcome, *, now: datetime) -> None:
        """In a posting thread: write the outcome (only while the claim holds)."""
        ...

    def lag_from(self, claim: C) -> datetime | None:
        """Where offhours_delivery_lag_seconds counts from (the DM's arrival, the recap's due time)."""
        ...

    def settle_all(self, settled: list[tuple[C, Outcome]], *, now: datetime) -> None:
        """The outcomes `prepare` settled at once, written together."""
        ...

    def settled_batch(self) -> None:
        """Every outcome of the batch has been handed to `settle`: write what is still buffered."""
        ...


class KindDefaults(Generic[C, R]):
    """The usual answers to a DeliveryKind's questions, for a kind to inherit and override where it differs: its
    posts can be looked up, lookups are not rate-limited ahead of Slack, a lookup's 429 waits Retry-After, a
    revoked token is a refusal like any other, outcomes are written as they come."""

    max_attempts: int | None = None
    look_up_after_5xx = True

    def can_look_up(self, prepared: R) -> bool:
        return True

    def lookup_wait(self, claim: C, *, now: datetime) -> datetime | None:
        return None

    def lookup_rate_limited(self, claim: C, *, wait: timedelta, now: datetime) -> Outcome:
        return Outcome(S.OUTCOME_UNKNOWN, error=LOOKUP_FAILED, retry_at=now + wait)

    def revoked(self, claim: C, code: str) -> bool:
        return False

    def rate_limited(self, claim: C, *, until: datetime) -> None:
        return None

    def settle(self, claim: C, prepared: R | None, outcome: Outcome, *, now: datetime) -> None:
        raise NotImplementedError

    def settle_all(self, settled: list[tuple[C, Outcome]], *, now: datetime) -> None:
        for claim, outcome in settled:
            self.settle(claim, None, outcome, now=now)

    def settled_batch(self) -> None:
        return None

    def lag_from(self, claim: C) -> datetime | None:
        return None
