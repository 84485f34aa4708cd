"""The one delivery engine: claim with a lease, re-check the claim, look for an earlier post, post, settle, retry.

Every message Offhours sends to Slack exactly once is a *kind* of delivery (bot/workers/kind.py says what a kind
tells the engine, and lists them): how its deliveries are claimed, composed, posted, looked up and settled; the
engine owns the rest, the same for all:

- the loop: claimed batches go to a pool of posting threads; `run(now)` is one pass, `start()` a background
  thread woken by an event (or every `poll_seconds`); `stop()` posts nothing more and hands what is still queued
  back as not posted (or still unknown), due at once, without using up an attempt;
- right before each post, the claim is re-checked in the database once its lease may have run out (another
  process may have claimed the delivery since): extended if it still holds, abandoned if not;
- after an attempt of unknown outcome (a timeout, a 5xx, a crash: DeliveryState IN_FLIGHT or OUTCOME_UNKNOWN),
  the kind looks for its earlier post before posting again, or gives up if its posts cannot be looked up;
- every failure becomes an Outcome here, through bot/slack/client.py (what Slack's answer means) and
  bot/domain/delivery.py (the states, the backoff), honouring Retry-After.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from typing import Generic

from slack_sdk.errors import SlackApiError

from bot.domain.delivery import IN_FLIGHT, LOOKUP_FAILED, DeliveryState, Failure, Outcome, backoff
from bot.metrics import Metrics
from bot.slack.client import REVOKED, request_error, retry_after, slack_code, slack_error, slack_retryable
from bot.workers.kind import C, Claim, ClaimLost, DeliveryKind, P, R

log = logging.getLogger(__name__)

S = DeliveryState


class DeliveryEngine(Generic[C, P, R]):
    def __init__(
        self,
        kind: DeliveryKind[C, P, R],
        *,
        clock: Callable[[], datetime],
        workers: int = 8,
        wake: threading.Event | None = None,
        poll_seconds: float = 5.0,
        metrics: Metrics | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kind = kind
        self.clock = clock
        # How long a claim has been held, whatever the wall clock does meanwhile (an NTP step back would make a
        # claim look fresh, and skip its re-check, after another process had taken it over).
        self.monotonic = monotonic
        self.metrics = metrics
        self.workers = workers
        self.poll_seconds = poll_seconds
        self._wake = wake or threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=kind.name)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # --- the loop --------------------------------------------------------------------------------------------

    def run(self, now: datetime | None = None) -> int:
        """Deliver everything due at `now` (default: the clock, read again for each batch); returns how many were
        posted (or found posted)."""
        jobs: list[Future[Outcome | None] | Outcome | None] = []
        waited = 0
        latest = 0  # where the latest batch's jobs begin

        def settled(*, but_last: bool = False) -> None:
            # Only what was handed over since the last wait: a long drain must not wait on all it ever posted.
            nonlocal waited
            until = latest if but_last else len(jobs)
            pending, waited = jobs[waited:until], max(waited, until)
            wait([job for job in pending if isinstance(job, Future)])

        claims = self.kind.claims(self.clock if now is None else (lambda: now), settled)
        try:
            while not self._stop.is_set():  # stopping: claim nothing more (what was handed back is due at once)
                claimed = next(claims, None)
                if claimed is None:
                    break
                at, batch = claimed
                latest = len(jobs)
                jobs.extend(self._submit_batch(batch, now=at))
            outcomes = [job.result() if isinstance(job, Future) else job for job in jobs]
        finally:
            claims.close()
            # A claim that failed (the database gone) must not leave a batch posting after run() has returned.
            wait([job for job in jobs if isinstance(job, Future)])
            self.kind.settled_batch()
        return sum(outcome is not None and outcome.state is S.SENT for outcome in outcomes)

    def deliver_batch(self, batch: list[C], *, now: datetime) -> int:
        """Deliver a batch claimed by the caller; returns how many were posted."""
        try:
            outcomes = [job.result() if isinstance(job, Future) else job for job in self._submit_batch(batch, now=now)]
        finally:
            self.kind.settled_batch()  # returns with the batch's outcomes written (or their write failed)
        return sum(outcome is not None and outcome.state is S.SENT for outcome in outcomes)

    def _submit_batch(self, batch: list[C], *, now: datetime) -> list[Future[Outcome | None] | Outcome | None]:
        jobs: list[Future[Outcome | None] | Outcome | None] = []
        ready: list[tuple[C, P]] = []
        refused: list[tuple[C, Outcome]] = []
        held_since = self.monotonic()  # the batch was claimed a moment ago, at `now`
        for claim, prepared in self._prepare(batch, now=now):
            if isinstance(prepared, Outcome):
                refused.append((claim, prepared))
            else:
                ready.append((claim, prepared))
        for claim, outcome in refused:
            self._count(claim, outcome, now=now)
            jobs.append(outcome)
        self.kind.settle_all(refused, now=now)
        for claim, prepared in ready:
            try:
                jobs.append(self._pool.submit(self._deliver, claim, prepared, now=now, held_since=held_since))
            except RuntimeError:
                # stop() shut the pool down after this batch was claimed: hand the rest back here (stop is set,
                # so nothing is posted) rather than leave them claimed until their lease runs out.
                jobs.append(self._deliver(claim, prepared, now=now, held_since=held_since))
        return jobs

    def _prepare(self, batch: list[C], *, now: datetime) -> list[tuple[C, P | Outcome]]:
        """The kind's per-batch reads; if they fail, again claim by claim, so that one row whose reads keep failing
        (a token the key cannot decrypt, a bug on one person's data) fails alone instead of taking its batch, and
        every batch claimed after it, down with it on every pass."""
        try:
            return self.kind.prepare(batch, now=now)
        except Exception as e:
            if len(batch) == 1:
                return [(batch[0], self._unprepared(batch[0], e, now=now))]
            log.warning("%s outcome=retry_one_by_one reason=prepare_failed batch=%d error=%s", self.kind.name,
                        len(batch), type(e).__name__)  # fmt: skip
        prepared: list[tuple[C, P | Outcome]] = []
        for claim in batch:
            try:
                prepared.extend(self.kind.prepare([claim], now=now))
            except Exception as e:
                prepared.append((claim, self._unprepared(claim, e, now=now)))
        return prepared

    def _unprepared(self, claim: C, error: Exception, *, now: datetime) -> Outcome:
        """Its reads failed (the database, or a bug): nothing was posted. Retried with the usual backoff, the attempt
        counted, so a row that always fails drifts to the back of the queue (and gives up where the kind has a
        maximum), rather than sit at its head, or be held until its lease runs out."""
        log.warning("%s id=%s outcome=retry reason=prepare_failed error=%s", self.kind.name, claim.id,
                    type(error).__name__, exc_info=error)  # fmt: skip
        max_attempts = self.kind.max_attempts
        if max_attempts is not None and claim.attempts >= max_attempts:
            return Outcome(S.FAILED, error=claim.last_error if claim.outcome_unknown else "prepare_failed")
        if claim.outcome_unknown:  # an earlier attempt may have posted: the next one still looks first
            return Outcome(
                S.OUTCOME_UNKNOWN, error=claim.last_error, retry_at=self.later(now) + backoff(claim.attempts)
            )
        return Outcome(S.NOT_POSTED, error="prepare_failed", retry_at=self.later(now) + backoff(claim.attempts))

    def _deliver(self, claim: C, prepared: P, *, now: datetime, held_since: float | None = None) -> Outcome | None:
        ready: R | None = None
        if self._stop.is_set():
            # Stopping: handed back, due at once, without using up an attempt. The next claim (another process, or
            # this one restarted) need not look for a post first, unless an earlier attempt's was already unknown.
            state = S.OUTCOME_UNKNOWN if claim.outcome_unknown else S.NOT_POSTED
            outcome: Outcome | None = Outcome(state, error=claim.last_error, retry_at=now, untried=True)
        else:
            composed = self.kind.compose(claim, prepared, now=now)
            if isinstance(composed, Outcome):
                outcome = composed
            else:
                ready = composed
                outcome = self.attempt(claim, composed, now=now, held_since=held_since)
        if outcome is not None:
            self._settle(claim, ready, outcome, now=now)
        return outcome

    def _settle(self, claim: C, prepared: R | None, outcome: Outcome, *, now: datetime) -> None:
        self._count(claim, outcome, now=now)
        self.kind.settle(claim, prepared, outcome, now=now)

    def _count(self, claim: C, outcome: Outcome, *, now: datetime) -> None:
        """The outcome's log line, and its count in the metrics (every kind the same, here only)."""
        _log_outcome(self.kind.name, claim, outcome, now=now)
        if self.metrics is None or outcome.state is S.EMPTY:
            return
        state = "pending" if outcome.state.open else outcome.state.value
        self.metrics.settled(
            self.kind.metric_name, state, due_at=self.kind.lag_from(claim), now=self.clock(),
            untried=outcome.untried, looked_up=outcome.found,
        )  # fmt: skip

    # --- one attempt -----------------------------------------------------------------------------------------

    def attempt(self, claim: C, prepared: R, *, now: datetime, held_since: float | None = None) -> Outcome | None:
        """Post one claimed delivery (or find the post an earlier attempt made). None: nothing to write (the claim
        was lost to another process, or the kind dealt with a revoked token). `held_since`: `monotonic()` when the
        claim was made (at `now`)."""
        later = self.later(now)  # retries count from now, not from the batch's start
        if claim.outcome_unknown:
            if not self.kind.can_look_up(prepared):
                # A post that cannot be looked up and may have been shown is never repeated (at most once).
                return Outcome(S.FAILED, error=claim.last_error or IN_FLIGHT)
            slot = self.kind.lookup_wait(claim, now=later)
            if slot is not None:  # the workspace's lookups are rate-limited: wait for this one's turn
                return Outcome(S.OUTCOME_UNKNOWN, error=claim.last_error or IN_FLIGHT, retry_at=slot, untried=True)
            try:
                found = self.kind.look_up(claim, prepared)
            except Exception as e:  # Slack, the network, or a bug: whichever, the outcome stays unknown
                return self._lookup_failed(claim, e, now=later)
            if found is not None:
                return Outcome(S.SENT, ts=found.ts, channel=found.channel, found=True)
        try:
            holds = self._claim_holds(claim, now=now, held_since=held_since)
        except Exception as e:  # the database did not answer the re-check: nothing was posted, so say exactly that
            log.warning("%s id=%s outcome=retry reason=claim_check_failed error=%s", self.kind.name, claim.id,
                        type(e).__name__)  # fmt: skip
            state = S.OUTCOME_UNKNOWN if claim.outcome_unknown else S.NOT_POSTED
            return Outcome(state, error=claim.last_error if claim.outcome_unknown else "claim_check_failed",
                           retry_at=self.later(now), untried=True)  # fmt: skip
        if not holds:
            log.warning("%s id=%s outcome=abandoned reason=claim_lost", self.kind.name, claim.id)
            return None
        try:
            posted = self.kind.post(claim, prepared)
        except ClaimLost:
            log.warning("%s id=%s outcome=abandoned reason=claim_lost", self.kind.name, claim.id)
            return None
        except SlackApiError as e:
            return self.refused(claim, e, now=self.later(now), can_look_up=self.kind.can_look_up(prepared))
        except OSError as e:  # refused or reset while sending (not sent), or dropped while awaiting the answer
            return self._unanswered(claim, request_error(e), now=self.later(now), prepared=prepared)
        except Exception:
            # A bug must not stop the rest of the batch. Whether Slack took the post is unknown: the retry looks
            # for it first; a post that cannot be looked up is never repeated.
            log.exception("%s id=%s error=unexpected", self.kind.name, claim.id)
            return self._unanswered(claim, Failure("unexpected", maybe_posted=True), now=self.later(now),
                                    prepared=prepared)  # fmt: skip
        return Outcome(S.SENT, ts=posted.ts, channel=posted.channel)

    def later(self, now: datetime) -> datetime:
        """The pass's `now`, or the clock if the pass has run for a while: a retry counts from the failure."""
        return max(now, self.clock())

    def _claim_holds(self, claim: C, *, now: datetime, held_since: float | None = None) -> bool:
        """Re-check the claim right before posting. While more than half its lease is left nobody else can have
        claimed it (a claim takes only rows whose lease is over), and the post (within the client's timeout) ends
        before the lease does; past that, the database decides: extended if still ours, else abandoned. The time
        held is the longer of the clock's and the monotonic clock's (a clock stepped back must not hide it)."""
        if claim.leased_until is None:
            return True
        now = self.later(now)
        if held_since is not None:
            now = max(now, claim.leased_until - self.kind.lease + timedelta(seconds=self.monotonic() - held_since))
        if now < claim.leased_until - self.kind.lease / 2:
            return True
        return self.kind.renew(claim, until=now + self.kind.lease)

    def _unanswered(self, claim: C, failure: Failure, *, now: datetime, prepared: R) -> Outcome:
        """The post failed in the network (or in our code): retried, looking first if Slack may have posted it."""
        if failure.maybe_posted and not self.kind.can_look_up(prepared):
            return Outcome(S.FAILED, error=failure.code)
        state = S.OUTCOME_UNKNOWN if failure.maybe_posted else S.NOT_POSTED
        return Outcome(state, error=failure.code, retry_at=now + backoff(claim.attempts))

    def refused(self, claim: C, error: SlackApiError, *, now: datetime, can_look_up: bool = True) -> Outcome | None:
        """What Slack's refusal of a post (or of a lookup) means for the delivery."""
        status = error.response.status_code
        code = slack_code(error)
        if code in REVOKED and self.kind.revoked(claim, code):
            return None
        max_attempts = self.kind.max_attempts
        if not slack_retryable(status, code) or (max_attempts is not None and claim.attempts >= max_attempts):
            return Outcome(S.FAILED, error=code)
        failure = slack_error(status, code)
        maybe = failure.maybe_posted and self.kind.look_up_after_5xx
        if maybe and not can_look_up:
            return Outcome(S.FAILED, error=code)  # cannot be looked up: never shown twice
        delay = timedelta(seconds=retry_after(error)) if status == 429 else backoff(claim.attempts)
        at = now + delay
        if status == 429:
            self.kind.rate_limited(claim, until=at)
        return Outcome(S.OUTCOME_UNKNOWN if maybe else S.NOT_POSTED, error=code, retry_at=at)

    def _lookup_failed(self, claim: C, error: Exception, *, now: datetime) -> Outcome | None:
        """The lookup failed: retried like a post, but still of unknown outcome, so the next attempt looks again."""
        if isinstance(error, SlackApiError) and error.response.status_code == 429:
            # A lookup's 429 (conversations.*) says nothing about posting: the kind decides how to wait.
            return self.kind.lookup_rate_limited(claim, wait=timedelta(seconds=retry_after(error)), now=now)
        if isinstance(error, SlackApiError):
            outcome = self.refused(claim, error, now=now)  # a revoked token disconnects; a refusal gives up
            if outcome is None or not outcome.state.open:
                return outcome
            at = outcome.retry_at
        else:
            if not isinstance(error, OSError):
                log.error("%s id=%s lookup error=unexpected", self.kind.name, claim.id, exc_info=error)
            at = now + backoff(claim.attempts)
        return Outcome(S.OUTCOME_UNKNOWN, error=LOOKUP_FAILED, retry_at=at)

    # --- the background thread -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"{self.kind.name}-sender", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Post nothing more; what is queued is written back as not posted, for the next claim to send at once."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        # Queued jobs now only hand their claims back; posts under way finish within the client's timeout.
        closing = threading.Thread(target=self._pool.shutdown, name=f"{self.kind.name}-sender-stop", daemon=True)
        closing.start()
        closing.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            # Cleared before the pass, so a delivery queued during it wakes the next round at once.
            self._wake.clear()
            try:
                self.run()
            except Exception:  # the database is down, say: log it and try again at the next wake-up
                log.exception("%s sender: pass failed; retrying in %.0f s", self.kind.name, self.poll_seconds)
            self._wake.wait(self.poll_seconds)


def _log_outcome(name: str, claim: Claim, outcome: Outcome, *, now: datetime) -> None:
    if outcome.state is S.SENT:
        log.info("%s id=%s outcome=%s attempts=%d", name, claim.id, "found_posted" if outcome.found else "sent",
                 claim.attempts)  # fmt: skip
    elif outcome.state.open:  # to be retried
        delay = (outcome.retry_at - now).total_seconds() if outcome.retry_at else 0.0
        log.warning("%s id=%s outcome=retry state=%s error=%s in_s=%.0f", name, claim.id, outcome.state.value,
                    outcome.error, delay)  # fmt: skip
    elif outcome.state is S.EMPTY:
        log.info("%s id=%s outcome=empty", name, claim.id)
    else:
        log.warning("%s id=%s outcome=%s error=%s attempts=%d", name, claim.id, outcome.state.value, outcome.error,
                    claim.attempts)  # fmt: skip
