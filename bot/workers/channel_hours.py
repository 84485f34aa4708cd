"""Channel office hours as two kinds of delivery (issue 25): the threaded reply and the start-of-hours summary.

The delivery engine (bot/workers/engine.py) runs the claims, the re-check, the lookups and the retries, as for
people's replies and recaps. Particular to channels:

- a reply goes out with the bot token, threaded under the message, while the team is still off and the message
  unanswered (the channel's hours re-read per batch: `off` or changed hours expire it); found again after a
  timeout by its metadata in the thread (conversations.replies, channels:history / groups:history);
- a summary is opened once the channel's next hours have started (one row per channel and off window: the unique
  key), lists what is still unanswered when it is composed (none: nothing posted), and goes to the channel, or as a
  DM to the person the channel named; one to the channel is found again in its history, a DM is never repeated;
- Slack's `not_in_channel` / `channel_not_found` (the bot was removed) is a refusal for good: settled, not retried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import datetime

from slack_sdk.errors import SlackApiError

from bot.domain import channel_hours as domain
from bot.domain.channel_hours import ChannelHours
from bot.domain.delivery import DeliveryState, Outcome
from bot.services import Services
from bot.slack.blocks.channel_hours import reply_blocks, summary_blocks
from bot.slack.client import sending_client, slack_code
from bot.storage.channel_hours import (
    CHANNEL_REPLY_LEASE,
    CHANNEL_SUMMARY_LEASE,
    MAX_CHANNEL_REPLY_ATTEMPTS,
    ClaimedChannelReply,
    ClaimedChannelSummary,
)
from bot.workers.engine import DeliveryEngine
from bot.workers.kind import KindDefaults, Posted

log = logging.getLogger(__name__)

S = DeliveryState


@dataclass(frozen=True, slots=True)
class ReadyPost:
    """What to post: where, with which token, the text and blocks."""

    token: str
    channel: str
    text: str
    blocks: list[dict]
    thread_ts: str | None = None
    to_person: bool = False  # a DM: cannot be looked up with the bot's scopes, so never repeated


class ChannelReplyKind(KindDefaults[ClaimedChannelReply, ReadyPost]):
    """The channel reply kind of delivery (see bot/workers/engine.py's DeliveryKind)."""

    name = "channel_reply"
    metric_name = "channel_reply"
    lease = CHANNEL_REPLY_LEASE
    max_attempts: int | None = MAX_CHANNEL_REPLY_ATTEMPTS
    look_up_after_5xx = True

    def __init__(self, services: Services, *, batch_size: int = 32) -> None:
        self.services = services
        self.store = services.store.channel_hours
        self.client = sending_client(services.client)
        self.batch_size = batch_size

    def lag_from(self, claim: ClaimedChannelReply) -> datetime | None:
        return claim.received_at

    def claims(
        self, at: Callable[[], datetime], wait: Callable[[], None]
    ) -> Generator[tuple[datetime, list[ClaimedChannelReply]]]:
        while True:
            now = at()
            batch = self.store.claim_replies(now=now, limit=self.batch_size)
            if not batch:
                return
            yield now, batch
            wait()

    def prepare(
        self, batch: list[ClaimedChannelReply], *, now: datetime
    ) -> list[tuple[ClaimedChannelReply, ReadyPost | Outcome]]:
        tokens: dict[str, str | None] = {}
        hours: dict[tuple[str, str], ChannelHours | None] = {}
        prepared: list[tuple[ClaimedChannelReply, ReadyPost | Outcome]] = []
        for reply in batch:
            if reply.team_id not in tokens:
                tokens[reply.team_id] = self.services.store.bot_token(reply.team_id)
            key = (reply.team_id, reply.channel_id)
            if key not in hours:
                hours[key] = self.store.get(*key)
            token, channel = tokens[reply.team_id], hours[key]
            why_not = _why_not(reply, channel, token=token, now=now)
            if why_not is not None or token is None or channel is None:
                prepared.append((reply, why_not or Outcome(S.FAILED, error="not_installed")))
                continue
            text = domain.reply_text(channel, back_at=reply.back_at, now=max(now, reply.received_at))
            prepared.append((reply, ReadyPost(token=token, channel=reply.channel_id, text=text,
                                              blocks=reply_blocks(text), thread_ts=reply.message_ts)))  # fmt: skip
        return prepared

    def compose(self, claim: ClaimedChannelReply, prepared: ReadyPost, *, now: datetime) -> ReadyPost | Outcome:
        return prepared

    def look_up(self, claim: ClaimedChannelReply, prepared: ReadyPost) -> Posted | None:
        """This reply, if an earlier attempt posted it: found by its metadata in the thread."""
        response = self.client.conversations_replies(
            token=prepared.token, channel=claim.channel_id, ts=claim.message_ts, include_all_metadata=True, limit=200
        )
        for message in response.get("messages") or []:
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == domain.REPLY_EVENT_TYPE and payload.get("reply_id") == str(claim.id):
                return Posted(channel=claim.channel_id, ts=message.get("ts"))
        return None

    def renew(self, claim: ClaimedChannelReply, *, until: datetime) -> bool:
        return self.store.renew_reply(claim.id, attempts=claim.attempts, until=until)

    def post(self, claim: ClaimedChannelReply, prepared: ReadyPost) -> Posted:
        response = self.client.chat_postMessage(
            token=prepared.token, channel=prepared.channel, thread_ts=prepared.thread_ts, text=prepared.text,
            blocks=prepared.blocks,
            metadata={"event_type": domain.REPLY_EVENT_TYPE, "event_payload": {"reply_id": str(claim.id)}},
        )  # fmt: skip
        return Posted(channel=prepared.channel, ts=response.get("ts"))

    def settle(
        self, claim: ClaimedChannelReply, prepared: ReadyPost | None, outcome: Outcome, *, now: datetime
    ) -> None:
        self.store.settle_replies([(claim.id, claim.attempts, outcome)])

    def settle_all(self, settled: list[tuple[ClaimedChannelReply, Outcome]], *, now: datetime) -> None:
        self.store.settle_replies([(claim.id, claim.attempts, outcome) for claim, outcome in settled])


def _why_not(reply: ClaimedChannelReply, channel: ChannelHours | None, *, token: str | None,
             now: datetime) -> Outcome | None:  # fmt: skip
    if token is None:
        return Outcome(S.FAILED, error="not_installed")
    if channel is None:
        return Outcome(S.EXPIRED, error="channel_off")  # `/hours channel off` since the message came
    if now >= reply.back_at:
        return Outcome(S.EXPIRED, error="team_back")  # "the team is away" would now be untrue
    window = domain.off_window(channel, reply.received_at)
    if window is None or now >= window.end:
        return Outcome(S.EXPIRED, error="hours_changed")
    if reply.post_state == "answered":
        return Outcome(S.EXPIRED, error="message_answered")  # someone answered in the thread meanwhile
    if reply.post_state == "deleted" and not reply.outcome_unknown:
        return Outcome(S.EXPIRED, error="message_deleted")
    return None


@dataclass(frozen=True, slots=True)
class SummaryPrepared:
    channel: ChannelHours
    token: str


class ChannelSummaryKind(KindDefaults[ClaimedChannelSummary, ReadyPost]):
    """The channel summary kind of delivery."""

    name = "channel_summary"
    metric_name = "channel_summary"
    lease = CHANNEL_SUMMARY_LEASE
    max_attempts: int | None = None
    look_up_after_5xx = True

    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store.channel_hours
        self.client = sending_client(services.client)

    def lag_from(self, claim: ClaimedChannelSummary) -> datetime | None:
        return claim.due_at

    def claims(
        self, at: Callable[[], datetime], wait: Callable[[], None]
    ) -> Generator[tuple[datetime, list[ClaimedChannelSummary]]]:
        now = at()
        self.store.open_due_summaries(now=now)
        while True:
            batch = self.store.claim_summaries(now=now)
            if not batch:
                return
            yield now, batch
            wait()
            now = at()

    def prepare(
        self, batch: list[ClaimedChannelSummary], *, now: datetime
    ) -> list[tuple[ClaimedChannelSummary, SummaryPrepared | Outcome]]:
        prepared: list[tuple[ClaimedChannelSummary, SummaryPrepared | Outcome]] = []
        for summary in batch:
            channel = self.store.get(summary.team_id, summary.channel_id)
            token = self.services.store.bot_token(summary.team_id)
            if channel is None:
                prepared.append((summary, Outcome(S.EXPIRED, error="channel_off")))
            elif token is None:
                prepared.append((summary, Outcome(S.FAILED, error="not_installed")))
            else:
                prepared.append((summary, SummaryPrepared(channel=channel, token=token)))
        return prepared

    def compose(self, claim: ClaimedChannelSummary, prepared: SummaryPrepared, *, now: datetime) -> ReadyPost | Outcome:
        posts = self.store.unanswered(claim.id)
        if not posts:
            return Outcome(S.EMPTY)  # everything was answered meanwhile: no summary at all
        permalinks: dict[str, str | None] = {}
        for post in posts[: domain.MAX_SUMMARY_ITEMS]:
            permalinks[post.ts] = self._permalink(prepared.token, claim.channel_id, post.ts)
        title = domain.summary_title(len(posts), claim.channel_id)
        lines = domain.summary_lines(posts, permalinks)
        target = prepared.channel.summary_to
        return ReadyPost(token=prepared.token, channel=target or claim.channel_id, text=title,
                         blocks=summary_blocks(title, lines), to_person=target is not None)  # fmt: skip

    def _permalink(self, token: str, channel: str, ts: str) -> str | None:
        try:
            link = self.client.chat_getPermalink(token=token, channel=channel, message_ts=ts).get("permalink")
        except SlackApiError as e:  # a message deleted since, say: listed without its link
            log.warning("channel_summary permalink failed error=%s", slack_code(e))
            return None
        except OSError as e:
            log.warning("channel_summary permalink failed error=%s", type(e).__name__)
            return None
        return link if isinstance(link, str) else None

    def can_look_up(self, prepared: ReadyPost) -> bool:
        return not prepared.to_person

    def look_up(self, claim: ClaimedChannelSummary, prepared: ReadyPost) -> Posted | None:
        response = self.client.conversations_history(
            token=prepared.token, channel=prepared.channel, oldest=f"{claim.due_at.timestamp():.6f}",
            include_all_metadata=True, limit=100,
        )  # fmt: skip
        for message in response.get("messages") or []:
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == domain.SUMMARY_EVENT_TYPE and payload.get("summary_id") == str(claim.id):
                return Posted(channel=prepared.channel, ts=message.get("ts"))
        return None

    def renew(self, claim: ClaimedChannelSummary, *, until: datetime) -> bool:
        return self.store.renew_summary(claim.id, attempts=claim.attempts, until=until)

    def post(self, claim: ClaimedChannelSummary, prepared: ReadyPost) -> Posted:
        response = self.client.chat_postMessage(
            token=prepared.token, channel=prepared.channel, text=prepared.text, blocks=prepared.blocks,
            metadata={"event_type": domain.SUMMARY_EVENT_TYPE, "event_payload": {"summary_id": str(claim.id)}},
        )  # fmt: skip
        return Posted(channel=response.get("channel"), ts=response.get("ts"))

    def settle(
        self, claim: ClaimedChannelSummary, prepared: ReadyPost | None, outcome: Outcome, *, now: datetime
    ) -> None:
        self.store.settle_summary(claim.id, claim.attempts, outcome)


class ChannelReplySender:
    """The channel reply worker: the delivery engine running the channel reply kind (one per process)."""

    def __init__(self, services: Services, *, poll_seconds: float = 5.0, workers: int = 4) -> None:
        self.kind = ChannelReplyKind(services, batch_size=workers * 4)
        wake = services.channel_hours.replies_queued if services.channel_hours is not None else None
        self.engine: DeliveryEngine[ClaimedChannelReply, ReadyPost, ReadyPost] = DeliveryEngine(
            self.kind, clock=services.clock, workers=workers, wake=wake, poll_seconds=poll_seconds,
            metrics=services.metrics,
        )  # fmt: skip

    def drain(self, *, now: datetime | None = None) -> int:
        """Send every channel reply due at `now` (default: the clock); returns how many were posted."""
        return self.engine.run(now)

    def start(self) -> None:
        self.engine.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.engine.stop(timeout)


class ChannelSummarySender:
    """The channel summary worker: opened and posted by the scheduler's tick (a plain function of `now`)."""

    def __init__(self, services: Services, *, workers: int = 4) -> None:
        self.kind = ChannelSummaryKind(services)
        self.engine: DeliveryEngine[ClaimedChannelSummary, SummaryPrepared, ReadyPost] = DeliveryEngine(
            self.kind, clock=services.clock, workers=workers, metrics=services.metrics
        )

    def tick(self, now: datetime | None = None) -> int:
        """Open the summaries due at `now` and post them; returns how many were posted."""
        return self.engine.run(now or self.kind.services.clock())

    def stop(self, timeout: float = 5.0) -> None:
        self.engine.stop(timeout)
