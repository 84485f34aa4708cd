"""Urgent notices as a kind of delivery: a sender's note, posted once by the app to the backup (or the person).

The delivery engine (bot/workers/engine.py) runs the loop, the claim re-check, the lookups and the retries. What
is particular here: the note is recorded before the modal's ack (bot/slack/listeners/urgent.py), so a crash after
the ack loses nothing; a claim whose earlier attempt may have posted looks for the notice by its metadata in the
app's own DM with the recipient (the bot's im:history), so it is never posted twice. The person disconnecting
meanwhile deletes the notice with the rest of their data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import datetime

from slack_sdk.errors import SlackApiError

from bot.domain.delivery import DeliveryState, Outcome
from bot.domain.urgent import NOTE_EVENT_TYPE
from bot.services import Services
from bot.slack.blocks.urgent import BUTTON_BLOCK, notice_blocks, notice_fallback, passed_on
from bot.slack.client import sending_client, slack_code
from bot.storage.urgent import MAX_URGENT_ATTEMPTS, URGENT_LEASE, PendingNotice
from bot.workers.engine import DeliveryEngine
from bot.workers.kind import KindDefaults, Posted

log = logging.getLogger(__name__)

S = DeliveryState


@dataclass(frozen=True, slots=True)
class ReadyNotice:
    bot_token: str
    blocks: list[dict]
    text: str


class UrgentKind(KindDefaults[PendingNotice, ReadyNotice]):
    """The urgent-notice kind of delivery (see bot/workers/engine.py's DeliveryKind)."""

    name = "urgent"
    metric_name = "urgent"
    lease = URGENT_LEASE
    max_attempts: int | None = MAX_URGENT_ATTEMPTS
    look_up_after_5xx = True

    def __init__(self, services: Services, *, batch_size: int = 20) -> None:
        self.services = services
        self.store = services.store
        self.client = sending_client(services.client)
        self.batch_size = batch_size

    def lag_from(self, claim: PendingNotice) -> datetime | None:
        return claim.created_at

    def claims(
        self, at: Callable[[], datetime], wait: Callable[[], None]
    ) -> Generator[tuple[datetime, list[PendingNotice]]]:
        while True:
            now = at()
            batch = self.store.urgent.claim_due(now=now, limit=self.batch_size)
            if not batch:
                return
            yield now, batch
            wait()

    def prepare(
        self, batch: list[PendingNotice], *, now: datetime
    ) -> list[tuple[PendingNotice, PendingNotice | Outcome]]:
        prepared: list[tuple[PendingNotice, PendingNotice | Outcome]] = []
        for notice in batch:
            if self.store.user_token(notice.team_id, notice.recipient_id) is None:
                prepared.append((notice, Outcome(S.FAILED, error="not_connected")))  # disconnected since
            elif self.store.bot_token(notice.team_id) is None:
                prepared.append((notice, Outcome(S.FAILED, error="not_installed")))
            else:
                prepared.append((notice, notice))
        return prepared

    def compose(self, claim: PendingNotice, prepared: PendingNotice, *, now: datetime) -> ReadyNotice | Outcome:
        bot_token = self.store.bot_token(claim.team_id)
        if bot_token is None:
            return Outcome(S.FAILED, error="not_installed")
        to_self = claim.target_id == claim.recipient_id
        person = self.services.people.get(claim.team_id, claim.recipient_id)
        window = person.schedule.off_window(now)
        back_at = window[1] if window is not None else None
        link = self._thread_link(claim) if to_self else None
        blocks = notice_blocks(team_id=claim.team_id, sender_id=claim.sender_id, person_id=claim.recipient_id,
                               to_self=to_self, note=claim.note, back_at=back_at, thread_link=link)  # fmt: skip
        text = notice_fallback(
            sender_id=claim.sender_id, person_id=claim.recipient_id, to_self=to_self, note=claim.note
        )
        return ReadyNotice(bot_token=bot_token, blocks=blocks, text=text)

    def _thread_link(self, claim: PendingNotice) -> str | None:
        """The original DM's permalink, read with the person's own token (the app is not in that DM)."""
        token = self.store.user_token(claim.team_id, claim.recipient_id)
        if token is None:
            return None
        try:
            answer = self.client.chat_getPermalink(token=token, channel=claim.channel_id, message_ts=claim.message_ts)
        except (SlackApiError, OSError) as e:  # the notice goes without the link rather than not at all
            log.warning("urgent id=%s permalink failed error=%s", claim.id, type(e).__name__)
            return None
        link = answer.get("permalink")
        return link if isinstance(link, str) else None

    def look_up(self, claim: PendingNotice, prepared: ReadyNotice) -> Posted | None:
        """The notice an earlier attempt posted, read in the app's own DM with the recipient (the bot's im:history).
        An installation from before that scope reads with the recipient's token if Offhours holds one, else the
        notice cannot be looked up and is posted again."""
        channel = self.client.conversations_open(token=prepared.bot_token, users=claim.target_id)["channel"]["id"]
        try:
            history = self._history(prepared.bot_token, channel, claim)
        except SlackApiError as e:
            if slack_code(e) != "missing_scope":
                raise
            token = self.store.user_token(claim.team_id, claim.target_id)
            if token is None:
                return None
            history = self._history(token, channel, claim)
        for message in history.get("messages") or []:
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == NOTE_EVENT_TYPE and payload.get("notice_id") == str(claim.id):
                return Posted(channel=channel, ts=message.get("ts"))
        return None

    def _history(self, token: str, channel: str, claim: PendingNotice) -> dict:
        oldest = f"{claim.created_at.timestamp():.6f}"
        answer = self.client.conversations_history(
            token=token, channel=channel, oldest=oldest, include_all_metadata=True, limit=100
        )
        return answer.data if isinstance(answer.data, dict) else {}

    def renew(self, claim: PendingNotice, *, until: datetime) -> bool:
        return self.store.urgent.renew(claim.id, attempts=claim.attempts, until=until)

    def post(self, claim: PendingNotice, prepared: ReadyNotice) -> Posted:
        channel = self.client.conversations_open(token=prepared.bot_token, users=claim.target_id)["channel"]["id"]
        response = self.client.chat_postMessage(
            token=prepared.bot_token, channel=channel, text=prepared.text, blocks=prepared.blocks,
            metadata={"event_type": NOTE_EVENT_TYPE, "event_payload": {"notice_id": str(claim.id)}},
        )  # fmt: skip
        return Posted(channel=channel, ts=response.get("ts"))

    def _mark_passed_on(self, claim: PendingNotice) -> None:
        """The sender's auto-reply, updated with the person's token: the button gives way to "Passed on to @Dana".
        Best effort: the notice is sent whatever becomes of this (an ephemeral reply cannot be updated)."""
        if self.services.config.reply.mode == "ephemeral":
            return
        reply = self.store.urgent.replied_message(claim.team_id, claim.reply_id)
        token = self.store.user_token(claim.team_id, claim.recipient_id)
        if reply is None or reply.reply_ts is None or token is None:
            return
        try:
            thread = self.client.conversations_replies(
                token=token, channel=reply.channel_id, ts=reply.thread_ts, oldest=reply.reply_ts,
                latest=reply.reply_ts, inclusive=True, limit=2,
            )  # fmt: skip
            [message] = [m for m in thread.get("messages") or [] if m.get("ts") == reply.reply_ts] or [None]
            if message is None:
                return
            blocks = [b for b in message.get("blocks") or [] if b.get("block_id") != BUTTON_BLOCK]
            blocks.append(passed_on(claim.target_id))
            self.client.chat_update(
                token=token, channel=reply.channel_id, ts=reply.reply_ts, text=message.get("text") or "", blocks=blocks
            )
        except (SlackApiError, OSError) as e:
            code = e.response.get("error") if isinstance(e, SlackApiError) else type(e).__name__
            log.info("urgent id=%s passed_on update failed error=%s", claim.id, code)

    def settle(self, claim: PendingNotice, prepared: ReadyNotice | None, outcome: Outcome, *, now: datetime) -> None:
        settled = self.store.urgent.settle(claim.id, attempts=claim.attempts, outcome=outcome)
        if settled and outcome.state is S.SENT:
            # After settling, not within the post: these Web API calls must not make the claim's lease run out.
            self._mark_passed_on(claim)


class UrgentSender:
    """The urgent-notice worker: the delivery engine running the urgent kind (one per process)."""

    def __init__(self, services: Services, *, poll_seconds: float = 5.0, workers: int = 2) -> None:
        self.kind = UrgentKind(services)
        self.engine: DeliveryEngine[PendingNotice, PendingNotice, ReadyNotice] = DeliveryEngine(
            self.kind, clock=services.clock, workers=workers, wake=services.urgent_queued,
            poll_seconds=poll_seconds, metrics=services.metrics,
        )  # fmt: skip

    def drain(self, *, now: datetime | None = None) -> int:
        """Send every urgent notice due at `now` (default: the clock); returns how many were posted."""
        return self.engine.run(now)

    def start(self) -> None:
        self.engine.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.engine.stop(timeout)
