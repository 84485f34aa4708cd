"""Messages in channels and group DMs (issue 20): the fast path that drops what concerns no one, then a channel
mention or group-DM message to a watched person who is off, recorded with its one ephemeral auto-reply.

`triage` decides from the event and the in-memory view (bot/mentions.py) alone — no database statement, no Web API
call, no log line — whether a message concerns anyone. It runs twice in front of nothing else: in the HTTP server
before Bolt (bot/slack/web.py answers 200 at once when it says no: most channel traffic never reaches Bolt), and
in the message listener (bot/slack/listeners/messages.py, which Socket Mode reaches too). What concerns someone
goes the way of a DM (bot/slack/inbound.py): recorded before the ack, its reply queued in the same outbox (once per
sender per off window, DMs included), and posted ephemerally by the reply sender.

Another feature that wants channel messages (none of which mention a watched person) adds its own cheap,
in-memory test to `also_wanted` in `ChannelMessages.__init__`, so that the fast path lets them through to the
listener.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from slack_sdk.errors import SlackApiError

from bot.domain import autoreply, mentions
from bot.domain.autoreply import DirectMessage
from bot.domain.preferences import Preferences
from bot.services import Services
from bot.slack import payloads
from bot.slack.client import ack_client
from bot.slack.inbound import authorized_user, message_time, parse_message, record_after_hours

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 20  # watched people one message is recorded for, at most (each is a transaction before the ack)


@dataclass(frozen=True, slots=True)
class Triage:
    """A channel message that concerns someone: the watched people it may be for, and whether its sender is one."""

    team_id: str
    recipients: tuple[str, ...]  # watched, off at the message's time, not its sender
    sender_watched: bool  # the sender is watched: what waited for them in this channel may be answered
    # A group DM whose members are not known yet, in a team where someone watched may be among them: the listener
    # looks them up (once per group DM and process) and decides again.
    members_unknown: bool = False


def _when(ts: object) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(ts), UTC) if isinstance(ts, str) else None
    except (ValueError, OverflowError, OSError):
        return None


class ChannelMessages:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store
        # Other features' tests, (event, body) -> bool, in memory like `triage`: a message any of them wants goes
        # on to the listener (e.g. channel office hours: the channel has hours).
        self.also_wanted: list[Callable[[dict, dict], bool]] = []
        hours = services.channel_hours
        if hours is not None:  # channel office hours (issue 25): the channel has hours (its in-memory set)
            self.also_wanted.append(
                lambda event, body: (
                    hours.lookup(payloads.ident(body, "team_id"), payloads.ident(event, "channel")) is not None
                )
            )

    # --- the fast path: no statement, no call, no log line -------------------------------------------------------

    def wanted(self, event: dict, body: dict) -> bool:
        """Whether a channel or group-DM message must reach the listener."""
        return self.triage(event, body) is not None or any(test(event, body) for test in self.also_wanted)

    def triage(self, event: dict, body: dict) -> Triage | None:
        """None: the message concerns no one watched (decided from the event and the in-memory view only)."""
        channel_type = event.get("channel_type")
        if not isinstance(channel_type, str) or channel_type not in mentions.CHANNEL_TYPES:
            return None
        team_id = body.get("team_id")
        if not isinstance(team_id, str):
            return None
        watched = self.services.mentions.view().get(team_id)
        if not watched:
            return None
        sender = event.get("user")
        if event.get("subtype") == "message_deleted":
            previous = payloads.obj(event, "previous_message")
            if channel_type == "mpim" or mentions.mentioned_users(previous, among=watched):
                return Triage(team_id=team_id, recipients=(), sender_watched=False)
            return None
        at = _when(event.get("ts"))
        # A watched person's own message matters only near their off hours: it answers what waits for them, or
        # makes them present in a group DM. At work, nothing of theirs waits (a recap took it) and no reply goes out.
        sender_prefs = watched.get(sender) if isinstance(sender, str) else None
        sender_watched = sender_prefs is not None and at is not None and _near_off(sender_prefs, at)
        group: list[str] = []  # the watched members of a group DM
        if channel_type == "mpim":
            authorized = authorized_user(body)
            channel = event.get("channel")
            known = self.services.mentions.group_dms.known(team_id, channel) if isinstance(channel, str) else None
            lookup = known is None and self.services.mentions.can_list_members(team_id, authorized)
            if lookup and any(user != authorized for user in watched):
                return Triage(team_id=team_id, recipients=(), sender_watched=sender_watched, members_unknown=True)
            group = [user for user in {*(known or ()), *([authorized] if authorized else [])} if user in watched]
        if not (sender_watched or group or mentions.may_mention(event.get("text"))):
            return None
        candidates = mentions.mentioned_users(event, among=watched) + sorted(group)
        recipients = tuple(
            user for user in dict.fromkeys(candidates) if user != sender and at is not None and _off(watched[user], at)
        )[:MAX_RECIPIENTS]
        if not recipients and not sender_watched:
            return None  # mentions only people at work, or the rest are nobody's: nothing to do
        return Triage(team_id=team_id, recipients=recipients, sender_watched=sender_watched)

    # --- what concerns someone -----------------------------------------------------------------------------------

    def handle(self, event: dict, body: dict) -> str | None:
        """The outcome for the log line; None: the message concerns no one (nothing was done, nothing to log)."""
        triage = self.triage(event, body)
        if triage is not None and triage.members_unknown:
            self._learn_members(triage.team_id, event, body)
            triage = self.triage(event, body)
        if triage is None:
            return None
        if event.get("subtype") == "message_deleted":
            return self._deleted(event, triage.team_id)
        message = parse_message(event, body)
        if not message.channel_id or not message.ts or not message.team_id:
            return "ignored:malformed"
        answered = self._wrote(message) if triage.sender_watched else 0
        if not triage.recipients:
            return "answered" if answered else "ignored:own_message"
        return self._record(message, body, list(triage.recipients), user_team=event.get("user_team"))

    def _learn_members(self, team_id: str, event: dict, body: dict) -> None:
        """A group DM's members, asked of Slack with the token that saw the message (conversations.members needs
        its mpim:read); before the ack, so with the no-sleep client. Refused or unreachable: only that person is
        known for a while (bot/group_dms.py)."""
        channel, authorized = payloads.ident(event, "channel"), authorized_user(body)
        groups = self.services.mentions.group_dms
        token = self.store.user_token(team_id, authorized) if channel and authorized else None
        if not channel or token is None:
            if channel:
                groups.refused(team_id, channel)
            return
        try:
            answer = ack_client(self.services.client).conversations_members(token=token, channel=channel, limit=100)
            members = answer.get("members")
        except (SlackApiError, OSError) as e:  # a refusal (missing_scope...), a timeout, a dropped connection
            error = e.response.get("error") if isinstance(e, SlackApiError) else type(e).__name__
            log.info("group dm members lookup failed error=%s", error)
            groups.refused(team_id, channel)
            return
        if isinstance(members, list) and all(isinstance(m, str) for m in members):
            groups.learn(team_id, channel, frozenset(members))
        else:
            groups.refused(team_id, channel)

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

    def _record(self, message: DirectMessage, body: dict, recipients: list[str], *, user_team: object) -> str:
        reason = autoreply.ignore_reason(message, recipient_id=recipients[0], channel_types=mentions.CHANNEL_TYPES)
        if reason is not None:
            return f"ignored:{reason}"  # of the message itself (a bot, an edit...): the same for every recipient
        source = "mpim" if message.channel_type == "mpim" else "mention"
        external = autoreply.is_external(
            # Not the envelope's is_ext_shared_channel: in a shared channel most senders are still colleagues.
            team_id=message.team_id, enterprise_id=_enterprise(body), ext_shared=None, user_team=user_team,
        )  # fmt: skip
        outcomes: set[str] = set()
        for recipient in recipients:
            view = self.store.dm_view(
                message.team_id, message.channel_id, recipient_id=recipient, sender_id=None,
                excepted_sender=message.sender_id,
            )  # fmt: skip
            outcomes.add(record_after_hours(self.services, message, recipient, view, external=external, source=source))
        return f"{source}:" + ",".join(sorted(outcomes))

    def _deleted(self, event: dict, team_id: str) -> str:
        """A deleted message that mentioned a watched person (or was in a group DM): out of their recap."""
        previous = payloads.obj(event, "previous_message")
        deleted = payloads.ts(event, "deleted_ts") or payloads.ts(previous, "ts")
        channel_id = payloads.ident(event, "channel")
        if not (channel_id and deleted):
            return "ignored:malformed"
        dropped = self.store.inbox.drop_deleted(team_id, channel_id, deleted)
        return "deleted" if dropped else "ignored:deleted"


def _off(prefs: Preferences, at: datetime) -> bool:
    return prefs.schedule.off_window(at) is not None


def _near_off(prefs: Preferences, at: datetime) -> bool:
    """Off at `at`, or within PRESENT_FOR of it: just before, their presence in a group DM holds into the window;
    just after, the recap of the window that ended may not have gone yet (an answer still takes a mention out)."""
    return any(_off(prefs, t) for t in (at, at - autoreply.PRESENT_FOR, at + autoreply.PRESENT_FOR))


def _enterprise(body: dict) -> str | None:
    enterprise = body.get("enterprise_id")
    return enterprise if isinstance(enterprise, str) and enterprise else None


def concerns_no_one(channels: ChannelMessages, payload: object) -> bool:
    """For the HTTP server, before Bolt: a signed, well-formed event callback that is a channel or group-DM
    message no one wants (its 200 can go at once). Anything else — 1:1 DMs, other events, odd shapes — is Bolt's."""
    if not isinstance(payload, dict) or payload.get("type") != "event_callback":
        return False
    event = payload.get("event")
    if not isinstance(event, dict) or event.get("type") != "message":
        return False
    if event.get("channel_type") == "im":
        return False  # a DM: Bolt's listener (bot/slack/listeners/messages.py)
    # Any other message, whatever its channel_type (missing or odd included), is the channel listener's, which
    # would drop it just the same.
    return not channels.wanted(event, payload)
