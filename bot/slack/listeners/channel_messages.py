"""Messages in channels and group DMs (issue 20): the fast path that drops what concerns no one, then a channel
mention or group-DM message to a watched person who is off, recorded with its one ephemeral auto-reply.

Called by bot/slack/listeners/messages.py for every message event that is not a 1:1 DM. `handle` returns None for
a message that concerns no one: decided from the event and the in-memory view (bot/mentions.py) alone — no
database statement, no Web API call, no log line. Everything else goes the way of a DM (bot/slack/inbound.py):
recorded before the ack, its reply queued in the same outbox (once per sender per off window, DMs included).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from bot.domain import autoreply, mentions
from bot.domain.autoreply import DirectMessage
from bot.domain.preferences import Preferences
from bot.services import Services
from bot.slack import payloads
from bot.slack.inbound import message_time, record_after_hours
from bot.slack.listeners.messages import authorized_user, parse_message

MAX_RECIPIENTS = 20  # watched people one message is recorded for, at most (each is a transaction before the ack)


def _off(prefs: Preferences, at: datetime) -> bool:
    return prefs.schedule.off_window(at) is not None


class ChannelMessages:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store

    def handle(self, event: dict, body: dict) -> str | None:
        """The outcome for the log line; None: the message concerns no one (nothing was done, nothing to log)."""
        channel_type = event.get("channel_type")
        if channel_type not in mentions.CHANNEL_TYPES:
            return None
        team_id = body.get("team_id")
        if not isinstance(team_id, str):
            return None
        watched = self.services.mentions.view().get(team_id)
        if not watched:
            return None
        sender = event.get("user")
        sender_watched = isinstance(sender, str) and sender in watched
        subtype = event.get("subtype")
        if subtype == "message_deleted":
            return self._deleted(event, team_id, watched)
        text = event.get("text")
        if channel_type == "mpim":
            authorized = authorized_user(body)
            if not sender_watched and authorized not in watched and not mentions.may_mention(text):
                return None
        elif not sender_watched and not mentions.may_mention(text):
            return None
        return self._concerning(event, body, team_id, watched, sender_watched=sender_watched)

    def _concerning(
        self, event: dict, body: dict, team_id: str, watched: Mapping[str, Preferences], *, sender_watched: bool
    ) -> str | None:
        message = parse_message(event, body)
        if not message.channel_id or not message.ts or not message.team_id:
            return "ignored:malformed" if sender_watched else None
        at = message_time(message.ts, self.services.clock())
        candidates = mentions.mentioned_users(event, among=watched)
        if message.channel_type == "mpim":
            authorized = authorized_user(body)
            if authorized is not None and authorized in watched:
                candidates.append(authorized)
        recipients = [
            user for user in dict.fromkeys(candidates)
            if user != message.sender_id and _off(watched[user], at)
        ][:MAX_RECIPIENTS]  # fmt: skip
        answered = self._wrote(message) if sender_watched else 0
        if not recipients:
            if sender_watched:
                return "answered" if answered else "ignored:own_message"
            return None  # mentions only people at work, or no one watched: nothing to do
        return self._record(message, body, recipients, message_user_team=event.get("user_team"))

    def _wrote(self, message: DirectMessage) -> int:
        """A watched person wrote here: the mentions waiting for them in this channel (or thread) are answered, and
        for a while they count as present (no "offline" for them in this channel)."""
        if not autoreply.is_person_writing(message):
            return 0
        me = message.sender_id or ""
        answered = self.store.mentions.answered(
            message.team_id, me, message.channel_id, ts=message.ts, thread_ts=message.thread_ts
        )
        at = message_time(message.ts, self.services.clock())
        self.store.inbox.wrote(message.team_id, me, message.channel_id, at=at)
        return answered

    def _record(self, message: DirectMessage, body: dict, recipients: list[str], *, message_user_team: object) -> str:
        source = "mpim" if message.channel_type == "mpim" else "mention"
        external = autoreply.is_external(
            # Not the envelope's is_ext_shared_channel: in a shared channel most senders are still colleagues.
            team_id=message.team_id, enterprise_id=_enterprise(body), ext_shared=None,
            user_team=message_user_team,
        )  # fmt: skip
        outcomes: list[str] = []
        for recipient in recipients:
            reason = autoreply.ignore_reason(message, recipient_id=recipient, channel_types=mentions.CHANNEL_TYPES)
            if reason is not None:
                return f"ignored:{reason}"  # of the message, so the same for every recipient
            view = self.store.dm_view(
                message.team_id, message.channel_id, recipient_id=recipient, sender_id=None,
                excepted_sender=message.sender_id,
            )  # fmt: skip
            outcomes.append(record_after_hours(self.services, message, recipient, view, external=external,
                                               source=source))  # fmt: skip
        return f"{source}:" + ",".join(sorted(set(outcomes)))

    def _deleted(self, event: dict, team_id: str, watched: Mapping[str, Preferences]) -> str | None:
        """A deleted message that mentioned a watched person (or was in a group DM): out of their recap."""
        previous = payloads.obj(event, "previous_message")
        concerned = event.get("channel_type") == "mpim" or bool(mentions.mentioned_users(previous, among=watched))
        if not concerned:
            return None
        deleted = payloads.ts(event, "deleted_ts") or payloads.ts(previous, "ts")
        channel_id = payloads.ident(event, "channel")
        if not (channel_id and deleted):
            return "ignored:malformed"
        dropped = self.store.inbox.drop_deleted(team_id, channel_id, deleted)
        return "deleted" if dropped else "ignored:deleted"


def _enterprise(body: dict) -> str | None:
    enterprise = body.get("enterprise_id")
    return enterprise if isinstance(enterprise, str) and enterprise else None
