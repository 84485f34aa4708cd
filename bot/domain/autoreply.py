"""The auto-reply rules, pure: which direct messages get an answer, once per what, and what it says."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytz

from bot.domain.preferences import Preferences
from bot.domain.templates import boundary_values, render_template

METADATA_EVENT_TYPE = "offhours_auto_reply"
SLACKBOT = "USLACKBOT"
# Plain messages, shared files and thread replies also sent to the channel are people talking; every other
# subtype (edits, deletions, joins, bot messages, ...) is not.
COUNTED_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})
# A person who wrote in a DM (started it or answered in it) counts as present there for this long: the other member
# is not told they are offline. Half an hour covers a conversation's pauses without hiding a later evening's DM.
PRESENT_FOR = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class DirectMessage:
    """The parts of a `message` event the rules look at."""

    team_id: str
    channel_id: str
    channel_type: str
    ts: str
    thread_ts: str | None
    sender_id: str | None
    subtype: str | None
    is_bot: bool
    metadata_event_type: str | None
    text: str
    # Posted through Offhours itself (the event's app_id is ours): with a user token we only ever post auto-replies.
    from_this_app: bool = False

    @property
    def thread_root(self) -> str:
        return self.thread_ts or self.ts

    @property
    def is_auto_reply(self) -> bool:
        """Ours (marked with our metadata) or anyone's (an auto-reply marker in metadata or subtype)."""
        if self.from_this_app or self.metadata_event_type == METADATA_EVENT_TYPE:
            return True
        marker = (self.metadata_event_type or "") + " " + (self.subtype or "")
        return "auto_re" in marker or "autorespon" in marker


def ignore_reason(
    message: DirectMessage, *, recipient_id: str | None, channel_types: frozenset[str] = frozenset({"im"})
) -> str | None:
    """Why this message gets no auto-reply, as a short log-friendly reason; None when it may get one.
    `channel_types`: the conversations that may get one (channel mentions and group DMs: bot/domain/mentions.py)."""
    if message.channel_type not in channel_types:
        return "not_dm"
    if message.is_auto_reply:
        return "auto_reply"
    if message.is_bot or message.subtype == "bot_message":
        return "bot"
    if message.sender_id == SLACKBOT:
        return "slackbot"
    if message.subtype not in COUNTED_SUBTYPES:
        return f"subtype:{message.subtype}"
    if message.sender_id is None:
        return "no_sender"
    if recipient_id is None:
        return "unknown_recipient"
    if message.sender_id == recipient_id:
        return "self"
    return None


def reply_withheld(
    *, paused: bool, sender_excepted: bool, present: bool = False, external_silenced: bool = False
) -> str | None:
    """Why an after-hours DM is recorded for the recap but answered with no auto-reply: "paused" (the recipient
    paused auto-replies), "excepted" (the sender is on the recipient's never-auto-reply list), "present" (the
    recipient wrote in this DM within PRESENT_FOR) or "external" (the sender is of another organisation and neither
    the person nor the config answers such people); None: reply."""
    if paused:
        return "paused"
    if sender_excepted:
        return "excepted"
    if present:
        return "present"
    if external_silenced:
        return "external"
    return None


def is_present(wrote_at: datetime | None, *, at: datetime) -> bool:
    """Whether the recipient, who last wrote in this DM at `wrote_at`, still counts as present there at `at`."""
    return wrote_at is not None and at - PRESENT_FOR <= wrote_at


def is_external(*, team_id: str, enterprise_id: str | None, ext_shared: object, user_team: object) -> bool:
    """Whether a DM's sender is of another organisation (Slack Connect), from the event alone (no Web API call).

    Slack marks an event from a channel shared with another organisation with `is_ext_shared_channel` in the
    envelope; a message also names its author's workspace as `user_team`. On Enterprise Grid another workspace of
    the same organisation is not external, so there only the envelope's flag counts.
    """
    if ext_shared is True:
        return True
    if enterprise_id:
        return False
    return isinstance(user_team, str) and bool(user_team) and user_team != team_id


@dataclass(frozen=True, slots=True)
class ReplyWindow:
    """What one auto-reply covers: its key (unique per sender, the race guard) and the interval it answered.

    The once-per-window rule compares intervals, not keys: a later DM whose window overlaps a replied one (the
    same evening after a change of hours, zone or days off, which moves the "back at" key) gets no second reply.
    """

    key: str
    start: datetime
    end: datetime


def is_person_writing(message: DirectMessage) -> bool:
    """The sender typed this themselves (not an app, an auto-reply, an edit or a deletion)."""
    return (
        message.sender_id is not None
        and message.sender_id != SLACKBOT
        and not message.is_bot
        and not message.is_auto_reply
        and message.subtype in COUNTED_SUBTYPES
    )


def window_key(prefs: Preferences, *, at: datetime, once_per: str) -> str | None:
    """The off-window a message at `at` belongs to, as a stable key; None when the person is working then.

    `off_window`: the instant the person is back (one key per evening, weekend or vacation).
    `day`: the recipient's local calendar date.
    """
    return off_window_key(prefs.schedule.off_window(at), at=at, tz=prefs.tz, once_per=once_per)


def off_window_key(
    window: tuple[datetime | None, datetime] | None, *, at: datetime, tz: str, once_per: str
) -> str | None:
    """window_key for a caller that already has the off window at `at` (the listener: once per DM, before the ack)."""
    if window is None:
        return None
    if once_per == "day":
        return "day:" + at.astimezone(pytz.timezone(tz)).date().isoformat()
    back = window[1].astimezone(pytz.utc)  # as strftime("%Y-%m-%dT%H:%MZ") wrote it, without its dst() calls
    return f"back:{back.year:04d}-{back.month:02d}-{back.day:02d}T{back.hour:02d}:{back.minute:02d}Z"


def reply_window(
    window: tuple[datetime | None, datetime] | None, *, at: datetime, tz: str, once_per: str
) -> ReplyWindow | None:
    """The ReplyWindow of a DM at `at` in off-window `window`: the off-window itself, or (`day`) the recipient's
    local calendar day; None when the person is working then."""
    key = off_window_key(window, at=at, tz=tz, once_per=once_per)
    if window is None or key is None:
        return None
    if once_per == "day":
        zone = pytz.timezone(tz)
        day = at.astimezone(zone).date()
        start = zone.localize(datetime.combine(day, datetime.min.time())).astimezone(pytz.utc)
        end = zone.localize(datetime.combine(day + timedelta(days=1), datetime.min.time())).astimezone(pytz.utc)
        return ReplyWindow(key=key, start=start, end=end)
    # An off-window whose start lies beyond the engine's horizon counts from the DM: every DM of it ends at its end,
    # so two of them still overlap.
    return ReplyWindow(key=key, start=window[0] or at, end=window[1])


def compose(prefs: Preferences, *, now: datetime, sender_id: str, external: bool = False) -> str:
    """The boundary message as the sender will read it (`external`: the person's message for other organisations)."""
    values = boundary_values(
        prefs.schedule,
        now=now,
        user=f"<@{prefs.user_id}>",
        sender=f"<@{sender_id}>",
        reply_within=prefs.reply_within,
    )
    return render_template(prefs.message if not external else prefs.external_message or prefs.message, values)
