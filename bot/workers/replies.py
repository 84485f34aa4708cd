"""Posts queued auto-replies after the ack: claimed from the outbox, retried with backoff, sent once.

A background thread wakes when a reply is queued (or every `poll_seconds`, which also picks up replies left
pending by a crash); `drain(now)` is the same work as a plain call, which is what the tests drive. Each post's
outcome is queued the moment Slack answers and written by group commit (bot/group_commit.py).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from slack_sdk.errors import SlackApiError

from bot.domain import autoreply
from bot.domain.delivery import IN_FLIGHT, LOOKUP_FAILED, backoff, may_have_posted
from bot.services import Services
from bot.slack.blocks.status import auto_reply_blocks
from bot.slack.client import (
    REVOKED,
    request_error,
    retry_after,
    sending_client,
    slack_code,
    slack_error,
    slack_retryable,
)
from bot.storage.outbox import MAX_REPLY_ATTEMPTS, PendingReply, ReplyOutcome
from bot.workers.group_commit import GroupCommit
from bot.workers.lookup_slots import LookupSlots

log = logging.getLogger(__name__)

# A claimed reply the sender stopped before posting, after an attempt known not to have posted: the next claim
# posts it at once, without first looking for an earlier post (conversations.replies, which Slack rate-limits hard).
NOT_POSTED = "not_posted"


@dataclass(frozen=True, slots=True)
class _Ready:
    """A claimed reply that should go out: the recipient's token and the text to post."""

    reply: PendingReply
    token: str
    text: str


class ReplySender:
    def __init__(self, services: Services, *, poll_seconds: float = 5.0, workers: int = 8) -> None:
        self.services = services
        self.store = services.store
        self.client = sending_client(services.client)
        self.poll_seconds = poll_seconds
        self.workers = workers
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reply")
        self._outcomes: GroupCommit[tuple[ReplyOutcome, int]] = GroupCommit(self._write_outcomes)
        self._lookups = LookupSlots()

    def drain(self, *, now: datetime | None = None) -> int:
        """Send every reply due at `now` (default: the clock); returns how many were posted."""
        sent = 0
        while not self._stop.is_set():  # stopping: claim nothing more (what was handed back is due at once)
            at = now or self.services.clock()
            batch = self.store.outbox.claim_due_replies(now=at, limit=self.workers * 4)
            if not batch:
                return sent
            sent += self.send_batch(batch, now=at)
        return sent

    def send_batch(self, batch: list[PendingReply], *, now: datetime) -> int:
        """Post a batch of claimed replies and record the outcomes; returns how many were posted.

        The reads are per batch (one of the tokens and one of the preferences per workspace); each post's outcome
        is queued for writing the moment Slack answers and written with the next group commit, not at the end of
        the batch: a reply posted early in a batch must not look unsent to another process if the batch outlives
        its lease, or if we stop half-way.
        """
        attempts = {reply.id: reply.attempts for reply in batch}
        refused, ready = self._prepare(batch, now=now)
        self.store.outbox.settle_replies(refused, attempts=attempts)
        for outcome in refused:
            _log_outcome(outcome, attempts=attempts[outcome.reply_id], now=now)
            self.services.metrics.settled("auto_reply", outcome.state)  # metrics: settled without a post
        try:
            outcomes = [job.result() if isinstance(job, Future) else job for job in self._submit_all(ready, now=now)]
        finally:
            self._outcomes.flush()  # drain returns with the batch's outcomes written (or their write failed)
        return sum(outcome is not None and outcome.state == "sent" for outcome in outcomes)

    def _submit_all(self, ready: list[_Ready], *, now: datetime) -> list[Future | ReplyOutcome | None]:
        jobs: list[Future | ReplyOutcome | None] = []
        for item in ready:
            try:
                jobs.append(self._pool.submit(self._post_and_settle, item, now=now))
            except RuntimeError:
                # stop() shut the pool down after this batch was claimed: hand the rest back here (stop is set,
                # so nothing is posted) rather than leave them claimed until their lease runs out.
                jobs.append(self._post_and_settle(item, now=now))
        return jobs

    def _post_and_settle(self, ready: _Ready, *, now: datetime) -> ReplyOutcome | None:
        if self._stop.is_set():
            # Stopping: handed back, due at once. The next claim (another process, or this one restarted) need not
            # look for a post first, unless an earlier attempt's outcome was already unknown.
            error = IN_FLIGHT if ready.reply.outcome_unknown else NOT_POSTED
            outcome = ReplyOutcome(ready.reply.id, "pending", error=error, retry_at=now, untried=True)
        else:
            outcome = self._post_one(ready, now=now)
        if outcome is not None:
            _log_outcome(outcome, attempts=ready.reply.attempts, now=now)
            # metrics: sent / retried / failed, and the lag from the DM's arrival
            self.services.metrics.settled("auto_reply", outcome.state, due_at=ready.reply.received_at,
                                          now=self.services.clock(), untried=outcome.untried)  # fmt: skip
            self._outcomes.add((outcome, ready.reply.attempts))
        return outcome

    def _write_outcomes(self, batch: list[tuple[ReplyOutcome, int]]) -> None:
        outcomes = [outcome for outcome, _ in batch]
        self.store.outbox.settle_replies(outcomes, attempts={outcome.reply_id: n for outcome, n in batch})

    def _prepare(self, batch: list[PendingReply], *, now: datetime) -> tuple[list[ReplyOutcome], list[_Ready]]:
        """Settle at once what must not be sent; compose the rest."""
        tokens: dict[str, dict[str, str]] = {}
        prefs: dict[str, dict] = {}
        for team_id in {reply.team_id for reply in batch}:
            recipients = {reply.recipient_id for reply in batch if reply.team_id == team_id}
            tokens[team_id] = self.store.user_tokens(team_id, recipients)
            prefs[team_id] = self.services.people.get_many(team_id, recipients)
        outcomes: list[ReplyOutcome] = []
        ready: list[_Ready] = []
        for reply in batch:
            token = tokens[reply.team_id].get(reply.recipient_id)
            person = prefs[reply.team_id][reply.recipient_id]
            why_not = self._why_not(reply, person, token=token, now=now)
            if why_not is not None:
                self._lookups.release(reply.team_id, reply.id)  # a slot it held must not hold the others back
                outcomes.append(why_not)
                continue
            text = autoreply.compose(person, now=max(now, reply.received_at), sender_id=reply.sender_id)
            ready.append(_Ready(reply=reply, token=token, text=text))
        return outcomes, ready

    @staticmethod
    def _why_not(reply: PendingReply, person, *, token: str | None, now: datetime) -> ReplyOutcome | None:
        if token is None:
            return ReplyOutcome(reply.id, "failed", error="not_connected")
        window = person.schedule.off_window(reply.received_at)
        if window is None or now >= window[1]:
            # Hours changed or the person is already back: "I'm offline" would now be untrue.
            return ReplyOutcome(reply.id, "expired", error="recipient_back")
        if person.paused:
            return ReplyOutcome(reply.id, "expired", error="paused")
        if reply.message_state in ("answered", "deleted"):
            # The person already answered (or the sender took the message back) while the reply waited.
            return ReplyOutcome(reply.id, "expired", error=f"message_{reply.message_state}")
        return None

    def _post_one(self, ready: _Ready, *, now: datetime) -> ReplyOutcome | None:
        """Post one reply (or find the one an earlier attempt posted); None when the person was disconnected."""
        reply = ready.reply
        ephemeral = self.services.config.reply.mode == "ephemeral"
        later = max(now, self.services.clock())  # retries count from now, not from the batch's start
        if reply.outcome_unknown and ephemeral:
            # An ephemeral post cannot be looked up: one that may have been shown is never repeated (at most once).
            return ReplyOutcome(reply.id, "failed", error=reply.last_error or IN_FLIGHT)
        if reply.outcome_unknown:
            settled, outcome = self._look_first(ready, now=later)
            if settled:
                return outcome
        try:
            ts = self._post(reply, token=ready.token, text=ready.text)
        except SlackApiError as e:
            return self._failed(reply, e, now=later)
        except TimeoutError:
            if ephemeral:
                # An ephemeral post cannot be looked up afterwards: it may have been shown, so never repeat it.
                return ReplyOutcome(reply.id, "failed", error="timeout")
            return ReplyOutcome(reply.id, "pending", error="timeout", retry_at=later + backoff(reply.attempts))
        except OSError as e:  # refused or reset while sending (not sent), or dropped while awaiting the answer
            error = request_error(e)
            if ephemeral and may_have_posted(error):
                return ReplyOutcome(reply.id, "failed", error=error)
            return ReplyOutcome(reply.id, "pending", error=error, retry_at=later + backoff(reply.attempts))
        except Exception:
            # A bug must not stop the rest of the batch. Whether Slack took the post is unknown: the retry looks for
            # it first (UNKNOWN_OUTCOME_ERRORS); an ephemeral post cannot be looked up, so it is never repeated.
            log.exception("reply id=%s error=unexpected", reply.id)
            if ephemeral:
                return ReplyOutcome(reply.id, "failed", error="unexpected")
            return ReplyOutcome(reply.id, "pending", error="unexpected", retry_at=later + backoff(reply.attempts))
        return ReplyOutcome(reply.id, "sent", reply_ts=ts)

    def _look_first(self, ready: _Ready, *, now: datetime) -> tuple[bool, ReplyOutcome | None]:
        """A retry may follow a post that Slack carried out but answered badly (a timeout, a 5xx, a crash): look
        for it in the thread first, so the sender never gets the auto-reply twice. (True, outcome) when that
        settles this attempt (found, queued for a lookup slot, or the lookup failed); (False, None): post.

        Only after an unknown outcome: conversations.replies is rate-limited hard for apps outside the Marketplace.
        """
        reply = ready.reply
        queued_for = self._lookups.reserve(reply.team_id, reply.id, now=now)
        if queued_for is not None:  # the workspace's lookups are rate-limited: wait for this reply's slot
            waiting = ReplyOutcome(
                reply.id, "pending", error=reply.last_error or IN_FLIGHT, retry_at=queued_for, untried=True
            )
            return True, waiting
        try:
            found = self._already_posted(reply, token=ready.token)
        except Exception as e:  # Slack, the network, or a bug: whichever, the outcome stays unknown
            return True, self._lookup_failed(reply, e, now=now)
        if found is not None:
            self.services.metrics.looked_up("auto_reply")  # metrics: found, not posted again
            return True, ReplyOutcome(reply.id, "sent", reply_ts=found)
        return False, None

    def _lookup_failed(self, reply: PendingReply, error: Exception, *, now: datetime) -> ReplyOutcome | None:
        """The lookup failed: retried like a post, but marked so that the next attempt looks again first."""
        if isinstance(error, SlackApiError) and error.response.status_code == 429:
            # Not an attempt used up (the off-window bounds the wait): the reply waits for its own lookup slot.
            wait = timedelta(seconds=retry_after(error))
            at = self._lookups.limited(reply.team_id, reply.id, now=now, retry_after=wait)
            return ReplyOutcome(reply.id, "pending", error=LOOKUP_FAILED, retry_at=at, untried=True)
        if isinstance(error, SlackApiError):
            outcome = self._failed(reply, error, now=now)  # a revoked token disconnects; a refusal gives up
        else:
            if not isinstance(error, OSError):
                log.error("reply id=%s lookup error=unexpected", reply.id, exc_info=error)
            outcome = ReplyOutcome(reply.id, "pending", retry_at=now + backoff(reply.attempts))
        if outcome is None or outcome.state != "pending":
            return outcome
        return ReplyOutcome(reply.id, "pending", error=LOOKUP_FAILED, retry_at=outcome.retry_at)

    def _already_posted(self, reply: PendingReply, *, token: str) -> str | None:
        """The ts of this reply if an earlier attempt did post it (found by its metadata in the thread), else None."""
        response = self.client.conversations_replies(
            token=token, channel=reply.channel_id, ts=reply.thread_ts, oldest=reply.message_ts,
            include_all_metadata=True, limit=200,
        )  # fmt: skip
        for message in response.get("messages") or []:
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == autoreply.METADATA_EVENT_TYPE and payload.get("reply_id") == str(reply.id):
                return message.get("ts")
        return None

    def _post(self, reply: PendingReply, *, token: str, text: str) -> str | None:
        blocks = auto_reply_blocks(text)
        fallback = ":crescent_moon: Auto-reply: " + text
        if self.services.config.reply.mode == "ephemeral":
            # Shown where the sender wrote: in the thread if their DM was a thread reply, else in the conversation
            # (an ephemeral message in a new thread under their DM would go unseen).
            in_thread = reply.thread_ts if reply.thread_ts != reply.message_ts else None
            response = self.client.chat_postEphemeral(
                token=token, channel=reply.channel_id, user=reply.sender_id, text=fallback, blocks=blocks,
                thread_ts=in_thread,
            )  # fmt: skip
            return response.get("message_ts")
        response = self.client.chat_postMessage(
            token=token,
            channel=reply.channel_id,
            thread_ts=reply.thread_ts,
            text=fallback,
            blocks=blocks,
            metadata={"event_type": autoreply.METADATA_EVENT_TYPE, "event_payload": {"reply_id": str(reply.id)}},
        )
        return response.get("ts")

    def _failed(self, reply: PendingReply, error: SlackApiError, *, now: datetime) -> ReplyOutcome | None:
        status = error.response.status_code
        code = slack_code(error)
        if code in REVOKED:
            self.store.revoke_user_tokens(reply.team_id, [reply.recipient_id])
            log.warning("reply id=%s outcome=disconnected error=%s", reply.id, code)
            return None  # forget_person removed the reply row with the rest of their data
        if not slack_retryable(status, code) or reply.attempts >= MAX_REPLY_ATTEMPTS:
            return ReplyOutcome(reply.id, "failed", error=code)
        recorded = slack_error(status, code)  # unknown after a 5xx: the retry looks for the post first
        if may_have_posted(recorded) and self.services.config.reply.mode == "ephemeral":
            return ReplyOutcome(reply.id, "failed", error=recorded)  # cannot be looked up: never shown twice
        delay = timedelta(seconds=retry_after(error)) if status == 429 else backoff(reply.attempts)
        return ReplyOutcome(reply.id, "pending", error=recorded, retry_at=now + delay)

    # --- the background thread --------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="reply-sender", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Post nothing more; what is queued is written back as not posted, for the next claim to send at once."""
        self._stop.set()
        self.services.replies_queued.set()
        if self._thread is not None:
            self._thread.join(timeout)
        # Queued jobs now only write "not posted"; posts under way finish within the client's timeout.
        closing = threading.Thread(target=self._pool.shutdown, name="reply-sender-stop", daemon=True)
        closing.start()
        closing.join(timeout)

    def _run(self) -> None:
        wake = self.services.replies_queued
        while not self._stop.is_set():
            # Cleared before draining, so a reply queued during the drain wakes the next round at once.
            wake.clear()
            try:
                self.drain()
            except Exception:  # the database is down, say: log it and try again at the next wake-up
                log.exception("reply sender: drain failed; retrying in %.0f s", self.poll_seconds)
            wake.wait(self.poll_seconds)


def _log_outcome(outcome: ReplyOutcome, *, attempts: int, now: datetime) -> None:
    if outcome.state == "sent":
        log.info("reply id=%s outcome=sent attempts=%d", outcome.reply_id, attempts)
    elif outcome.state == "pending":  # to be retried
        delay = (outcome.retry_at - now).total_seconds() if outcome.retry_at else 0.0
        log.warning("reply id=%s outcome=retry error=%s in_s=%.0f", outcome.reply_id, outcome.error, delay)
    else:
        log.warning(
            "reply id=%s outcome=%s error=%s attempts=%d", outcome.reply_id, outcome.state, outcome.error, attempts
        )
