"""A channel's office hours: the team's schedule, what a sender is told outside it, and what the summary holds.

Pure: the hours language, days off and holidays are bot/domain/hours' own; a channel's hours are a Schedule like a
person's. Outside them a new top-level message gets one threaded reply per sender and off window (the window's
end, when the team is back, is the once-per key); at the start of the next hours one summary lists what is still
unanswered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.domain.autoreply import SLACKBOT, ReplyWindow, reply_window
from bot.domain.errors import HoursError
from bot.domain.hours import Schedule, format_local, parse_days_off, parse_hours, render_hours, resolve_timezone
from bot.domain.hours.timezones import format_utc_offset
from bot.domain.templates import BACK_AT_SENDER_FORMAT, slack_date

REPLY_EVENT_TYPE = "offhours_channel_reply"  # message metadata on every channel reply, to find it after a timeout
SUMMARY_EVENT_TYPE = "offhours_channel_summary"
DEFAULT_MESSAGE = "Thanks for your message! The team is away right now."
MAX_MESSAGE = 1000
MAX_SUMMARY_ITEMS = 40
# A top-level message of these subtypes is a person posting; every other subtype (edits, joins, bots...) is not.
POSTING_SUBTYPES = frozenset({None, "file_share"})
MANAGERS = ("admins", "members")


@dataclass(frozen=True, slots=True)
class ChannelHours:
    """One channel's settings, as stored: hours text, zone, days off, holidays, message, summary recipient."""

    team_id: str
    channel_id: str
    hours: str  # canonical hours text
    tz: str
    days_off: str = ""  # canonical, ";"-separated
    holidays: str | None = None
    message: str | None = None  # None: DEFAULT_MESSAGE
    summary_to: str | None = None  # a user id: the summary is DMed to them; None: posted in the channel

    @property
    def schedule(self) -> Schedule:
        return _schedule(self.hours, self.tz, self.days_off, self.holidays)

    @property
    def text(self) -> str:
        return self.message or DEFAULT_MESSAGE


_schedules: dict[tuple[str, str, str, str | None], Schedule] = {}


def _schedule(hours: str, tz: str, days_off: str, holidays: str | None) -> Schedule:
    key = (hours, tz, days_off, holidays)
    cached = _schedules.get(key)
    if cached is None:
        parsed = tuple(parse_days_off(part) for part in days_off.split(";") if part.strip())
        try:
            cached = Schedule(tz=tz, weekly=parse_hours(hours), days_off=parsed, holidays=holidays)
        except HoursError:
            if holidays is None:
                raise
            # A code the holidays package no longer knows (an upgrade dropped it): no holidays rather than no hours.
            cached = Schedule(tz=tz, weekly=parse_hours(hours), days_off=parsed)
        if len(_schedules) > 4096:
            _schedules.clear()
        _schedules[key] = cached
    return cached


def parse_set(text: str) -> tuple[str, str]:
    """`mon-fri 9-17:30 Europe/London` -> (canonical hours, zone). The zone is the last word, and required."""
    words = text.split()
    if len(words) < 2:
        raise HoursError("Give the hours and the team's time zone, like `mon-fri 9-17:30 Europe/London`.")
    tz = resolve_timezone(words[-1])
    weekly = parse_hours(" ".join(words[:-1]))
    return render_hours(weekly), tz


def validate_message(text: str) -> str:
    text = text.strip()
    if not text:
        raise HoursError("Give the text senders should see, like `/hours channel message We answer 9-17:30.`")
    if len(text) > MAX_MESSAGE:
        raise HoursError(f"The channel message is {len(text)} characters; at most {MAX_MESSAGE} fit.")
    if "\x00" in text:  # PostgreSQL text cannot hold NUL: refused here rather than failing the write
        raise HoursError("The channel message contains a NUL character (\\0); remove it and try again.")
    return text


def off_window(hours: ChannelHours, at: datetime) -> ReplyWindow | None:
    """The off window a message at `at` falls in (its key: when the team is back); None while the team works."""
    schedule = hours.schedule
    return reply_window(schedule.off_window(at), at=at, tz=schedule.tz, once_per="off_window")


def is_posting(*, user: str | None, subtype: str | None, is_bot: bool, ts: str, thread_ts: str | None) -> bool:
    """A new top-level message a person wrote (not a thread reply, a bot, an edit, a join...)."""
    top_level = not thread_ts or thread_ts == ts
    return bool(user) and user != SLACKBOT and not is_bot and subtype in POSTING_SUBTYPES and top_level


def is_thread_answer(*, user: str | None, subtype: str | None, is_bot: bool, ts: str, thread_ts: str | None) -> bool:
    """A person's reply inside a thread: it answers the thread's root (unless the root's own sender wrote it)."""
    in_thread = bool(thread_ts) and thread_ts != ts
    answering = subtype in (None, "file_share", "thread_broadcast")
    return in_thread and bool(user) and user != SLACKBOT and not is_bot and answering


def back_text(back_at: datetime, tz: str, *, now: datetime) -> str:
    """When the team is back, as a Slack date each reader sees in their own zone (the fallback names the offset)."""
    fallback = f"{format_local(back_at, tz, now=now)} {format_utc_offset(back_at, tz)}"
    return slack_date(back_at, BACK_AT_SENDER_FORMAT, fallback=fallback) + " your time"


def reply_text(hours: ChannelHours, *, back_at: datetime, now: datetime) -> str:
    """The threaded reply: the channel's message, then when the team is back."""
    return f"{hours.text}\nThe team is back {back_text(back_at, hours.tz, now=now)}."


@dataclass(frozen=True, slots=True)
class WaitingPost:
    """A top-level message that came while the team was off and still has no answer."""

    sender_id: str
    ts: str
    received_at: datetime


def summary_lines(posts: list[WaitingPost], permalinks: dict[str, str | None]) -> list[str]:
    """One line per unanswered post: sender, time (a Slack date), link."""
    lines = []
    for post in posts[:MAX_SUMMARY_ITEMS]:
        when = slack_date(
            post.received_at, "{date_short_pretty} {time}", fallback=post.received_at.strftime("%Y-%m-%d %H:%M UTC")
        )
        link = permalinks.get(post.ts)
        lines.append(f"• <@{post.sender_id}> · {when}" + (f" · <{link}|Open>" if link else ""))
    if len(posts) > MAX_SUMMARY_ITEMS:
        lines.append(f"…and {len(posts) - MAX_SUMMARY_ITEMS} more.")
    return lines


def summary_title(count: int, channel_id: str) -> str:
    noun = "message" if count == 1 else "messages"
    return f"While the team was off: {count} {noun} in <#{channel_id}> still without a reply"


def describe(hours: ChannelHours, *, now: datetime) -> str:
    """`/hours channel show`: the hours, the zone, whether the team is in now, the message and the summary's target."""
    schedule = hours.schedule
    if schedule.is_working(now):
        state = f"The team is in now, until {format_local(schedule.next_end(now), hours.tz, now=now)}."
    else:
        state = f"The team is off now, back {format_local(schedule.next_start(now), hours.tz, now=now)}."
    target = f"DMed to <@{hours.summary_to}>" if hours.summary_to else "posted in the channel"
    extra = f" Holidays: {hours.holidays}." if hours.holidays else ""
    return (
        f"<#{hours.channel_id}>'s hours: *{hours.hours}* ({hours.tz}).{extra} {state}\n"
        f"Senders outside them are told: {hours.text}\nThe summary at the start of the hours is {target}."
    )
