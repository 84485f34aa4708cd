"""Auto-replies as a kind of delivery: claimed from the outbox in batches, composed, posted in the DM's thread.

The delivery engine (bot/workers/engine.py) runs the loop, the re-check, the lookups and the retries. What is
particular to replies lives here: one read of the tokens and one of the preferences per workspace and batch;
replies no longer worth sending (the person is back, the DM answered or deleted) expire unposted; an ephemeral
reply cannot be looked up, so one that may have been shown is never repeated; after Slack rate-limits the thread
lookups (conversations.replies), each reply waits for a lookup slot of its own (bot/workers/lookup_slots.py),
without using up an attempt; each outcome is queued the moment Slack answers and written by group commit
(bot/workers/group_commit.py). A background thread wakes when a reply is queued (or every `poll_seconds`, which
also picks up replies left pending by a crash); `drain(now)` is the same work as a plain call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain import autoreply
from bot.domain.delivery import LOOKUP_FAILED, DeliveryState, Outcome
from bot.domain.preferences import Preferences
from bot.services import Services
from bot.slack.blocks.status import auto_reply_blocks
from bot.slack.blocks.urgent import urgent_button
from bot.slack.client import sending_client
from bot.storage.replies import MAX_REPLY_ATTEMPTS, MESSAGE_DELETED, REPLY_LEASE, PendingReply
from bot.workers.engine import DeliveryEngine
from bot.workers.group_commit import GroupCommit
from bot.workers.kind import KindDefaults, Posted, Settled
from bot.workers.lookup_slots import LookupSlots

log = logging.getLogger(__name__)

S = DeliveryState


@dataclass(frozen=True, slots=True)
class ReadyReply:
    """A claimed reply that should go out: the recipient's token and the text to post."""

    token: str
    text: str
    ephemeral: bool
    urgent: bool = False  # the person has an urgent route: the reply carries the "It's urgent" button


class ReplyKind(KindDefaults[PendingReply, ReadyReply]):
    """The auto-reply kind of delivery (see bot/workers/engine.py's DeliveryKind)."""

    name = "reply"
    metric_name = "auto_reply"
    lease = REPLY_LEASE
    max_attempts: int | None = MAX_REPLY_ATTEMPTS
    look_up_after_5xx = True

    def __init__(self, services: Services, *, batch_size: int) -> None:
        self.services = services
        self.store = services.store
        self.client = sending_client(services.client)
        self.batch_size = batch_size
        self._outcomes: GroupCommit[tuple[int, int, Outcome]] = GroupCommit(self._write)
        self.lookups = LookupSlots()

    def lag_from(self, claim: PendingReply) -> datetime | None:
        return claim.received_at

    def _write(self, outcomes: list[tuple[int, int, Outcome]]) -> None:
        self.store.replies.settle(outcomes)

    def claims(self, at: Callable[[], datetime], wait: Settled) -> Generator[tuple[datetime, list[PendingReply]]]:
        # Two batches in flight: the next is claimed and composed while this one posts. Waiting for each batch
        # before the next claim left the posting threads idle for every claim and compose (the serial part), which
        # made the sender fall behind the acks under a burst of DMs (bench/RESULTS.md, ninth session).
        in_flight = False
        while True:
            now = at()
            batch = self.store.replies.claim_due(now=now, limit=self.batch_size)
            if not batch:
                if not in_flight:
                    return
                # Before the last claim: what the batches in flight hand back as due now is sent in this drain.
                wait()
                self._outcomes.flush()
                in_flight = False
                continue
            yield now, batch
            in_flight = True
            wait(but_last=True)
            # The next claim comes with the previous batch's outcomes written (or their write failed).
            self._outcomes.flush()

    def prepare(self, batch: list[PendingReply], *, now: datetime) -> list[tuple[PendingReply, ReadyReply | Outcome]]:
        """Settle at once what must not be sent; compose the rest. The reads are per batch and workspace."""
        tokens: dict[str, dict[str, str]] = {}
        prefs: dict[str, dict[str, Preferences]] = {}
        excepted: set[tuple[str, str, str]] = set()
        routed: set[tuple[str, str]] = set()
        for team_id in {reply.team_id for reply in batch}:
            recipients = {reply.recipient_id for reply in batch if reply.team_id == team_id}
            tokens[team_id] = self.store.user_tokens(team_id, recipients)
            prefs[team_id] = self.services.people.get_many(team_id, recipients)
            # Re-checked like "paused": a sender put on the person's list since the DM came gets nothing.
            senders = {reply.sender_id for reply in batch if reply.team_id == team_id}
            excepted |= {(team_id, *pair) for pair in self.store.exceptions.pairs(team_id, recipients, senders)}
            routed |= {(team_id, user_id) for user_id in self.store.urgent.routes(team_id, recipients)}
        ephemeral = self.services.config.reply.mode == "ephemeral"
        prepared: list[tuple[PendingReply, ReadyReply | Outcome]] = []
        for reply in batch:
            token = tokens[reply.team_id].get(reply.recipient_id)
            person = prefs[reply.team_id][reply.recipient_id]
            why_not = _why_not(reply, person, token=token, now=now)
            if why_not is None and (reply.team_id, reply.recipient_id, reply.sender_id) in excepted:
                why_not = Outcome(S.EXPIRED, error="excepted")
            if why_not is not None or token is None:
                self.lookups.release(reply.team_id, reply.id)  # a slot it held must not hold the others back
                prepared.append((reply, why_not or Outcome(S.FAILED, error="not_connected")))
                continue
            text = autoreply.compose(
                person, now=max(now, reply.received_at), sender_id=reply.sender_id, external=reply.external
            )
            # Not for people of another organisation: their clicks would reach Offhours from outside the workspace;
            # nor on a mention's reply in a channel (reply.ephemeral): urgent notes answer DMs.
            urgent = (reply.team_id, reply.recipient_id) in routed and not reply.external and not reply.ephemeral
            prepared.append(
                (reply, ReadyReply(token=token, text=text, ephemeral=ephemeral or reply.ephemeral, urgent=urgent))
            )
        return prepared

    def compose(self, claim: PendingReply, prepared: ReadyReply, *, now: datetime) -> ReadyReply | Outcome:
        return prepared  # composed per batch, in `prepare`

    def can_look_up(self, prepared: ReadyReply) -> bool:
        return not prepared.ephemeral

    def lookup_wait(self, claim: PendingReply, *, now: datetime) -> datetime | None:
        return self.lookups.reserve(claim.team_id, claim.id, now=now)

    def lookup_rate_limited(self, claim: PendingReply, *, wait: timedelta, now: datetime) -> Outcome:
        # Not an attempt used up (the off-window bounds the wait): the reply waits for its own lookup slot.
        at = self.lookups.limited(claim.team_id, claim.id, now=now, retry_after=wait)
        return Outcome(S.OUTCOME_UNKNOWN, error=LOOKUP_FAILED, retry_at=at, untried=True)

    def look_up(self, claim: PendingReply, prepared: ReadyReply) -> Posted | None:
        """This reply, if an earlier attempt did post it (found by its metadata in the thread)."""
        response = self.client.conversations_replies(
            token=prepared.token, channel=claim.channel_id, ts=claim.thread_ts, oldest=claim.message_ts,
            include_all_metadata=True, limit=200,
        )  # fmt: skip
        for message in response.get("messages") or []:
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == autoreply.METADATA_EVENT_TYPE and payload.get("reply_id") == str(claim.id):
                return Posted(channel=claim.channel_id, ts=message.get("ts"))
        return None

    def renew(self, claim: PendingReply, *, until: datetime) -> bool:
        return self.store.replies.renew(claim.id, attempts=claim.attempts, until=until)

    def post(self, claim: PendingReply, prepared: ReadyReply) -> Posted:
        blocks = auto_reply_blocks(prepared.text)
        if prepared.urgent:
            blocks = [*blocks, urgent_button(claim.id)]
        fallback = ":crescent_moon: Auto-reply: " + prepared.text
        if prepared.ephemeral:
            # Shown where the sender wrote: in the thread if their DM was a thread reply, else in the conversation
            # (an ephemeral message in a new thread under their DM would go unseen).
            in_thread = claim.thread_ts if claim.thread_ts != claim.message_ts else None
            response = self.client.chat_postEphemeral(
                token=prepared.token, channel=claim.channel_id, user=claim.sender_id, text=fallback, blocks=blocks,
                thread_ts=in_thread,
            )  # fmt: skip
            return Posted(channel=claim.channel_id, ts=response.get("message_ts"))
        response = self.client.chat_postMessage(
            token=prepared.token,
            channel=claim.channel_id,
            thread_ts=claim.thread_ts,
            text=fallback,
            blocks=blocks,
            metadata={"event_type": autoreply.METADATA_EVENT_TYPE, "event_payload": {"reply_id": str(claim.id)}},
        )
        return Posted(channel=claim.channel_id, ts=response.get("ts"))

    def revoked(self, claim: PendingReply, code: str) -> bool:
        self.store.revoke_user_tokens(claim.team_id, [claim.recipient_id])
        log.warning("reply id=%s outcome=disconnected error=%s", claim.id, code)
        return True  # forget_person removed the reply row with the rest of their data

    def settle(self, claim: PendingReply, prepared: ReadyReply | None, outcome: Outcome, *, now: datetime) -> None:
        # Queued the moment Slack answers, written with the next group commit: a reply posted early in a batch must
        # not look unsent to another process if the batch outlives its lease, or if we stop half-way.
        self._outcomes.add((claim.id, claim.attempts, outcome))

    def settle_all(self, settled: list[tuple[PendingReply, Outcome]], *, now: datetime) -> None:
        self.store.replies.settle([(claim.id, claim.attempts, outcome) for claim, outcome in settled])

    def settled_batch(self) -> None:
        self._outcomes.flush()


def _why_not(reply: PendingReply, person: Preferences, *, token: str | None, now: datetime) -> Outcome | None:
    if token is None:
        return Outcome(S.FAILED, error="not_connected")
    window = person.schedule.off_window(reply.received_at)
    if window is None or now >= window[1]:
        # Hours changed or the person is already back: "I'm offline" would now be untrue.
        return Outcome(S.EXPIRED, error="recipient_back")
    if person.paused:
        return Outcome(S.EXPIRED, error="paused")
    if reply.message_state == "answered":
        return Outcome(S.EXPIRED, error="message_answered")  # the person answered while the reply waited
    if reply.message_state == "deleted":
        # The sender took the message back. Unless an earlier attempt may have posted it, the reply never went out
        # and does not count for the once-per-window rule: their next DM takes its place (bot/storage/replies.py).
        return Outcome(S.EXPIRED, error="message_deleted_maybe_posted" if reply.outcome_unknown else MESSAGE_DELETED)
    return None


class ReplySender:
    """The auto-reply worker: the delivery engine running the reply kind (one per process)."""

    def __init__(self, services: Services, *, poll_seconds: float = 5.0, workers: int = 8) -> None:
        self.services = services
        self.store = services.store
        self.workers = workers
        self.kind = ReplyKind(services, batch_size=workers * 4)
        self.engine: DeliveryEngine[PendingReply, ReadyReply, ReadyReply] = DeliveryEngine(
            self.kind,
            clock=services.clock,
            workers=workers,
            wake=services.replies_queued,
            poll_seconds=poll_seconds,
            metrics=services.metrics,
        )

    def drain(self, *, now: datetime | None = None) -> int:
        """Send every reply due at `now` (default: the clock); returns how many were posted."""
        return self.engine.run(now)

    def send_batch(self, batch: list[PendingReply], *, now: datetime) -> int:
        """Post a batch of claimed replies and record the outcomes; returns how many were posted."""
        return self.engine.deliver_batch(batch, now=now)

    def start(self) -> None:
        self.engine.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Post nothing more; what is queued is written back as not posted, for the next claim to send at once."""
        self.engine.stop(timeout)
