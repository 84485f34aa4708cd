"""Channel office hours in Slack: `/hours channel ...`, the channel messages the bot sees, the bot leaving a channel.

The command answers in its ack; before it at most three Web API calls go out through the no-sleep client
(conversations.info: is the bot a member, who created the channel; users.info: is the asker an admin or owner;
for `summary @person`, users.info: is that a person, still in the workspace).
A channel message costs nothing unless its channel has office hours (ChannelHoursService's in-memory set): then a
thread reply marks its thread answered, and a new top-level message off hours is recorded with its one reply
queued, before the ack. The reply and the summary are posted by bot/workers/channel_hours.py.
"""

from __future__ import annotations

import logging
import re

from slack_bolt import App
from slack_sdk.errors import SlackApiError

from bot.channel_hours import ChannelHoursService
from bot.domain import channel_hours as domain
from bot.domain.errors import OffhoursError
from bot.services import Services
from bot.slack import payloads
from bot.slack.blocks.channel_hours import answer_blocks
from bot.slack.client import ack_client, slack_code
from bot.slack.inbound import message_time

log = logging.getLogger(__name__)

_MENTION = re.compile(r"<@([UW][A-Z0-9]{1,31})(?:\|[^<>]*)?>")  # as Slack escapes a mention in a command
CHANNEL_SUBCOMMANDS = ("set", "message", "show", "off", "summary", "holidays", "daysoff", "help")


class ChannelUsageError(OffhoursError):
    """`/hours channel` used in a way that cannot work (a missing value, an unknown word)."""


def service_of(services: Services) -> ChannelHoursService:
    assert services.channel_hours is not None  # built by build_services
    return services.channel_hours


def usage(command: str) -> str:
    return (
        f"In a channel Offhours was invited to: `{command} channel set mon-fri 9-17:30 Europe/London` "
        f"(the hours language of `{command} set`, then the team's time zone), "
        f"`{command} channel message <text>`, `{command} channel summary @person` (or `here`), "
        f"`{command} channel holidays GB`, `{command} channel daysoff 2026-12-24..2027-01-02`, "
        f"`{command} channel show`, `{command} channel off`."
    )


def _in_a_channel(channel_id: str, channel_name: str) -> bool:
    """The command ran in a channel (public or private), not in a DM or a group DM."""
    if not channel_id or channel_id.startswith("D"):
        return False
    return channel_name != "directmessage" and not channel_name.startswith("mpdm-")


class ChannelCommand:
    """`/hours channel <sub> <value>`; returns (blocks, fallback text); raises OffhoursError for a wrong value."""

    def __init__(self, services: Services, *, team_id: str, user_id: str, channel_id: str, channel_name: str) -> None:
        self.services = services
        self.service = service_of(services)
        self.store = services.store
        self.team_id = team_id
        self.user_id = user_id
        self.channel_id = channel_id
        self.channel_name = channel_name
        self.command = services.config.command
        self.client = ack_client(services.client)  # before the ack: nothing sleeps on a 429

    def run(self, arg: str) -> tuple[list[dict], str]:
        sub, _, value = arg.strip().partition(" ")
        sub, value = sub.lower(), value.strip()
        if sub in ("", "help") or sub not in CHANNEL_SUBCOMMANDS:
            prefix = "" if sub in ("", "help") else f"`{sub}` is not a `{self.command} channel` subcommand. "
            return self._answer(prefix + usage(self.command))
        if not _in_a_channel(self.channel_id, self.channel_name):
            return self._answer(
                f"`{self.command} channel` sets the hours of the channel you type it in: open "
                f"the channel (after inviting Offhours there), then run it. " + usage(self.command)
            )
        token = self.store.bot_token(self.team_id)
        if token is None:
            return self._answer("Offhours is not installed in this workspace yet.")
        info, problem = self._channel_info(token)
        # `off` works where the bot was removed too: the settings stay until someone turns them off.
        if problem is not None and not (sub == "off" and problem == self._invite):
            return self._answer(problem)
        if sub == "show":
            hours = self.service.get(self.team_id, self.channel_id)
            if hours is None:
                return self._answer(
                    f"<#{self.channel_id}> has no office hours. "
                    f"Set them with `{self.command} channel set mon-fri 9-17:30 Europe/London`."
                )
            return self._answer(domain.describe(hours, now=self.services.clock()))
        refused = self._may_change(token, creator=payloads.ident(info, "creator"))
        if refused is not None:
            return self._answer(refused)
        return self._change(sub, value, token=token)

    def _change(self, sub: str, value: str, *, token: str) -> tuple[list[dict], str]:
        team, channel, now = self.team_id, self.channel_id, self.services.clock()
        if sub == "off":
            gone = self.service.turn_off(team, channel)
            text = (
                "Office hours are off for this channel: Offhours answers nothing here any more."
                if gone
                else (f"<#{channel}> has no office hours to turn off.")
            )
            return self._answer(text)
        if not value:
            raise ChannelUsageError(f"`{self.command} channel {sub}` needs a value. " + usage(self.command))
        if sub == "set":
            hours = self.service.set_hours(team, channel, value)
        elif sub == "message":
            hours = self.service.set_message(team, channel, value)
        elif sub == "holidays":
            hours = self.service.set_holidays(team, channel, value)
        elif sub == "daysoff":
            hours = self.service.add_days_off(team, channel, value)
        else:  # summary
            target = _summary_target(value)
            if target is not None:
                self._check_recipient(token, target)
            hours = self.service.set_summary_to(team, channel, target)
        return self._answer("Saved. " + domain.describe(hours, now=now))

    @property
    def _invite(self) -> str:
        return (
            f"Offhours is not a member of this channel yet. Invite it first (`/invite @Offhours`), "
            f"then run `{self.command} channel` again."
        )

    def _channel_info(self, token: str) -> tuple[dict, str | None]:
        """The channel as the bot sees it, and what to tell the asker if it cannot go on (the bot is not in it,
        Slack did not answer)."""
        invite = self._invite
        busy = "Slack did not answer in time; nothing was changed. Please try again in a moment."
        try:
            channel = self.client.conversations_info(token=token, channel=self.channel_id).get("channel") or {}
        except SlackApiError as e:
            code = slack_code(e)
            log.warning("channel command conversations.info failed error=%s", code)
            if code in ("channel_not_found", "not_in_channel"):  # a private channel the bot is not in
                return {}, invite
            return {}, busy
        except OSError as e:
            log.warning("channel command conversations.info failed error=%s", type(e).__name__)
            return {}, busy
        if not isinstance(channel, dict):
            return {}, invite
        return channel, None if channel.get("is_member") else invite

    def _may_change(self, token: str, *, creator: str) -> str | None:
        """None when the asker may change this channel's hours; else why not."""
        if self.services.config.channels.managers == "members" or (creator and creator == self.user_id):
            return None
        try:
            user = self.client.users_info(token=token, user=self.user_id).get("user") or {}
        except SlackApiError as e:
            log.warning("channel command users.info failed error=%s", slack_code(e))
            return "Slack did not answer in time; nothing was changed. Please try again in a moment."
        except OSError as e:
            log.warning("channel command users.info failed error=%s", type(e).__name__)
            return "Slack did not answer in time; nothing was changed. Please try again in a moment."
        if isinstance(user, dict) and (user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner")):
            return None
        who = f"<@{creator}>, who created the channel," if creator else "the channel's creator"
        return (
            f"Only workspace admins and owners, and {who} can change this channel's office hours "
            f"(`channels.managers: admins` in Offhours' config). Ask one of them, or see them with "
            f"`{self.command} channel show`."
        )

    def _check_recipient(self, token: str, target: str) -> None:
        """Raise ChannelUsageError (nothing changed) unless `target` is a person still in the workspace."""
        busy = "Slack could not tell who that is just now: nothing was changed. Please try again in a moment."
        try:
            user = self.client.users_info(token=token, user=target).get("user") or {}
        except SlackApiError as e:
            code = slack_code(e)
            if code in ("user_not_found", "user_not_visible"):
                raise ChannelUsageError(f"<@{target}> is not someone in this workspace: nothing was changed.") from e
            log.warning("channel command users.info failed error=%s", code)
            raise ChannelUsageError(busy) from e
        except OSError as e:
            log.warning("channel command users.info failed error=%s", type(e).__name__)
            raise ChannelUsageError(busy) from e
        if not isinstance(user, dict) or user.get("is_bot") or user.get("is_app_user") or target == "USLACKBOT":
            raise ChannelUsageError(f"<@{target}> is a bot: the summary goes to a person. Nothing was changed.")
        if user.get("deleted"):
            raise ChannelUsageError(f"<@{target}> is deactivated: choose someone active. Nothing was changed.")

    def _answer(self, text: str) -> tuple[list[dict], str]:
        return answer_blocks(text), text


def _summary_target(value: str) -> str | None:
    if value.lower() in ("here", "channel"):
        return None
    match = _MENTION.fullmatch(value.strip())
    if match is None:
        raise ChannelUsageError("Name one person with @ (the summary is DMed to them), or `here` for the channel.")
    return match.group(1)


class ChannelMessages:
    """Channel message events: None when the channel has no office hours (no database statement), else the
    outcome for the log line."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.service = service_of(services)
        self.store = services.store

    def handle(self, event: dict, body: dict) -> str | None:
        if event.get("channel_type") not in ("channel", "group"):
            return None
        team_id = payloads.ident(body, "team_id")
        channel_id = payloads.ident(event, "channel")
        hours = self.service.lookup(team_id, channel_id)
        if hours is None:
            return None
        raw_subtype = event.get("subtype")
        subtype = raw_subtype if raw_subtype is None or isinstance(raw_subtype, str) else "malformed"
        if subtype == "message_deleted":
            deleted = payloads.ts(event, "deleted_ts") or payloads.ts(payloads.obj(event, "previous_message"), "ts")
            if not deleted:
                return "channel:ignored"
            return "channel:deleted" if self.store.channel_hours.mark_deleted(team_id, channel_id, deleted) else (
                "channel:ignored")  # fmt: skip
        user = payloads.ident(event, "user") or None
        is_bot = bool(event.get("bot_id") or event.get("bot_profile"))
        ts = payloads.ts(event, "ts")
        thread_ts = payloads.ts(event, "thread_ts") or None
        if not ts:
            return "channel:ignored"
        if domain.is_thread_answer(user=user, subtype=subtype, is_bot=is_bot, ts=ts, thread_ts=thread_ts):
            answered = self.store.channel_hours.mark_answered(team_id, channel_id, thread_ts or "", by=user or "")
            return "channel:answered" if answered else "channel:thread"
        if not domain.is_posting(user=user, subtype=subtype, is_bot=is_bot, ts=ts, thread_ts=thread_ts) or user is None:
            return "channel:ignored"
        now = self.services.clock()
        at = message_time(ts, now)
        window = domain.off_window(hours, at)
        if window is None:
            return "channel:working"
        queued = self.store.channel_hours.record(
            team_id=team_id, channel_id=channel_id, ts=ts, sender_id=user, received_at=at, window=window, now=now
        )
        if queued:
            self.service.replies_queued.set()
            return "channel:replied"
        return "channel:recorded"


def register(app: App, services: Services) -> None:
    service = service_of(services)

    def left(event: dict, body: dict) -> None:
        # The bot was removed: what is queued there is settled now (it could only be refused); settings stay.
        team_id = payloads.ident(body, "team_id")
        channel_id = payloads.ident(event, "channel")
        if team_id and channel_id and service.lookup(team_id, channel_id) is not None:
            services.store.channel_hours.bot_left(team_id, channel_id)
        log.info("event type=%s outcome=settled", payloads.text(event, "type"))

    app.event("channel_left")(left)
    app.event("group_left")(left)
