"""Direct messages seen through a connected person's token: record after-hours ones, queue one auto-reply.

Runs before the HTTP 200 (process_before_response): the record is in the database before Slack hears "ok",
and the reply itself is posted afterwards by the reply sender.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import TypeGuard

from slack_bolt import App, BoltRequest
from slack_sdk.errors import SlackApiError

from bot.domain import autoreply
from bot.domain.autoreply import DirectMessage
from bot.services import Services
from bot.slack import payloads
from bot.slack.client import REVOKED, ack_client, retry_after

# parse_message and authorized_user live in inbound: bot/slack/listeners/channel_messages.py reads events the same way
from bot.slack.inbound import (
    authorized_user,
    message_time,
    parse_message,
    record_after_hours,
    record_for_other_member,
    stored_text,
)
from bot.slack.listeners.channel_hours import ChannelMessages

log = logging.getLogger(__name__)

DEFER_S = 10.0  # when a refused lookup says nothing of when to come back


class LookupRefused(Exception):
    """conversations.info was refused for now (429, 5xx, the network): the DM is deferred, `wait_s` at least."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(wait_s)
        self.wait_s = wait_s


def malformed(message: DirectMessage, event: dict) -> bool:
    """A DM whose ids or timestamp no Slack message has: nothing can be recorded or answered for it."""
    sender = event.get("user")
    bad_sender = sender is not None and message.sender_id is None
    return not message.team_id or not message.channel_id or not message.ts or bad_sender


def _enterprise(body: dict) -> str | None:
    """The organisation (Enterprise Grid) the event came from, if any."""
    enterprise = body.get("enterprise_id")
    return enterprise if isinstance(enterprise, str) and enterprise else None


def register(app: App, services: Services) -> None:
    from bot.slack.listeners.channel_messages import ChannelMessages as MentionMessages

    handler = MessageHandler(services)
    mentions = MentionMessages(services)

    @app.event("message")
    def on_message(event: dict, body: dict, request: BoltRequest) -> None:
        started = time.perf_counter()
        # Slack sends the redelivery count as a header, not in the body (body["_retry_num"] was always absent: 0).
        retry = (request.headers.get("x-slack-retry-num") or ["0"])[0]
        if event.get("channel_type") == "im":
            handle_dm(handler, event, body, retry=retry, started=started)
            return
        # Channels and group DMs: office hours (issue 25), then mentions (issue 20); most messages concern
        # neither and leave here without a trace (no statement, no log line).
        found = [o for o in (handler.channel_hours.handle(event, body), mentions.handle(event, body)) if o]
        if found:
            _log_outcome(services, ",".join(found), body, retry=retry, started=started)


def is_dm_event(payload: object) -> TypeGuard[dict]:
    """A signed event callback carrying a 1:1 DM (the HTTP server hands these to `handle_dm` without Bolt)."""
    if not isinstance(payload, dict) or payload.get("type") != "event_callback":
        return False
    event = payload.get("event")
    return isinstance(event, dict) and event.get("type") == "message" and event.get("channel_type") == "im"


def handle_dm(handler: MessageHandler, event: dict, body: dict, *, retry: str, started: float) -> None:
    """A DM event, from Bolt's listener (Socket Mode) or straight from the HTTP server (bot/slack/web.py)."""
    _log_outcome(handler.services, handler.handle(event, body), body, retry=retry, started=started)


def _log_outcome(services: Services, outcome: str, body: dict, *, retry: str, started: float) -> None:
    latency = (time.perf_counter() - started) * 1000
    # A watched person's own channel message that answered nothing is routine: not one INFO line each.
    level = logging.DEBUG if outcome == "ignored:own_message" else logging.INFO
    log.log(
        level,
        "event type=message outcome=%s team=%s event_id=%s retry=%s latency_ms=%.1f",
        outcome, payloads.ident(body, "team_id"), payloads.ident(body, "event_id"), retry, latency,
    )  # fmt: skip
    services.metrics.event("message", outcome)


class MessageHandler:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store
        # Before the ack nothing may sleep on a rate limit: the one Web API call here goes through this client.
        self.client = ack_client(services.client)
        self.channel_hours = ChannelMessages(services)  # channel office hours (issue 25)

    def handle(self, event: dict, body: dict) -> str:
        """Returns the outcome for the log line: replied, throttled, duplicate, answered, ignored:<why>."""
        # A channel with office hours (an in-memory set: no database statement for any other channel).
        channel_outcome = self.channel_hours.handle(event, body)
        if channel_outcome is not None:
            return channel_outcome
        if event.get("channel_type") != "im":
            return "ignored:not_dm"
        team_id = payloads.ident(body, "team_id")
        subtype = event.get("subtype")
        if subtype == "message_deleted":
            deleted = payloads.ts(event, "deleted_ts") or payloads.ts(payloads.obj(event, "previous_message"), "ts")
            channel_id = payloads.ident(event, "channel")
            if not (team_id and channel_id and deleted):
                return "ignored:malformed"
            dropped = self.store.inbox.drop_deleted(team_id, channel_id, deleted)
            return "deleted" if dropped else "ignored:deleted"
        message = parse_message(event, body)
        if malformed(message, event):
            return "ignored:malformed"
        authorized = authorized_user(body)
        # The sender wrote in this DM themselves: whatever waited for them here is answered.
        answering = autoreply.is_person_writing(message)
        # Rule out bots, edits, auto-replies... before looking the recipient up (maybe a Web API call, before the ack).
        reason = autoreply.ignore_reason(message, recipient_id=authorized)
        if reason == "self":
            return self._connected_person_wrote(message, authorized or "", answering)
        external = autoreply.is_external(
            team_id=team_id, enterprise_id=_enterprise(body), ext_shared=body.get("is_ext_shared_channel"),
            user_team=event.get("user_team"),
        )  # fmt: skip
        may_reply = reason is None and authorized is not None
        if not may_reply and not answering:
            return f"ignored:{reason}"
        view = self.store.dm_view(
            team_id, message.channel_id,
            recipient_id=authorized if may_reply else None, sender_id=message.sender_id if answering else None,
            excepted_sender=message.sender_id if may_reply else None,
        )  # fmt: skip
        answered = 0
        if view.sender_has_waiting:
            answered = self._mark_answered(message)
            # DMs wait for the writer, so they are connected: Slack delivers the event once, maybe under the other
            # member's authorization, and their answer (nudges, presence) counts all the same.
            self.store.inbox.wrote(
                message.team_id, message.sender_id or "", message.channel_id,
                at=message_time(message.ts, self.services.clock()),
            )  # fmt: skip
        if not may_reply:
            return "answered" if answered else f"ignored:{reason}"
        return record_after_hours(self.services, message, authorized or "", view, external=external)

    def _connected_person_wrote(self, message: DirectMessage, me: str, answering: bool) -> str:
        """The person whose token saw the DM wrote it: settle what waited for them, then see whether the other
        member is connected too (their recipient)."""
        answered = 0
        if answering:
            # Before the lookup below, which may fail (and make Slack redeliver): the answer counts either way.
            view = self.store.dm_view(message.team_id, message.channel_id, recipient_id=None, sender_id=me)
            answered = self._mark_answered(message) if view.sender_has_waiting else 0
            # They are in this conversation now: its other member gets no "offline" from them for a while.
            self.store.inbox.wrote(
                message.team_id, me, message.channel_id, at=message_time(message.ts, self.services.clock())
            )
        try:
            recipient = self._recipient(message, me)
        except LookupRefused as refused:
            # Kept before the ack, answered 200: the deferred-DM worker looks the member up and records it later.
            now = self.services.clock()
            self.store.deferred_dms.defer(
                message.team_id, message.channel_id, message.ts, thread_ts=message.thread_ts, writer_id=me,
                text=stored_text(self.services, message), received_at=message_time(message.ts, now),
                next_attempt_at=now + timedelta(seconds=refused.wait_s),
            )  # fmt: skip
            return "deferred"
        reason = autoreply.ignore_reason(message, recipient_id=recipient)
        if reason is not None or recipient is None:
            return "answered" if answered else f"ignored:{reason}"
        return record_for_other_member(self.services, message, recipient)

    def _mark_answered(self, message: DirectMessage) -> int:
        return self.store.inbox.mark_answered(message.team_id, message.sender_id or "", message.channel_id)

    def _recipient(self, message: DirectMessage, authorized: str | None) -> str | None:
        if authorized is None:
            return None
        if authorized != message.sender_id:
            return authorized
        # The connected person wrote; the other member of the DM may be connected too.
        return self._other_member(message.team_id, message.channel_id, authorized)

    def _other_member(self, team_id: str, channel_id: str, me: str) -> str | None:
        members = self.store.dm_channels.members(team_id, channel_id)
        if members is None:
            if not self.store.anyone_else_connected(team_id, me):
                return None  # no one else here is connected: whoever the other member is, they have no recipient
            token = self.store.user_token(team_id, me)
            if token is None:
                return None
            try:
                other = self.client.conversations_info(token=token, channel=channel_id)["channel"].get("user")
            except SlackApiError as e:
                code = e.response.get("error")
                log.warning("conversations.info failed error=%s", code)
                if code in REVOKED:  # this person's own token was refused: they are disconnected
                    self.store.revoke_user_tokens(team_id, [me])
                    return None
                if e.response.status_code == 429 or e.response.status_code >= 500:
                    # Slack will answer later; this event may be the only copy of a DM to a connected person.
                    raise LookupRefused(retry_after(e, default=DEFER_S)) from e
                return None
            except OSError as e:  # a timeout or a dropped connection: the same
                log.warning("conversations.info failed error=%s", type(e).__name__)
                raise LookupRefused(DEFER_S) from e
            if not other:
                return None
            self.store.dm_channels.remember(team_id, channel_id, me, other)
            return other
        return members[1] if members[0] == me else members[0]
