"""What `/hours` answers: status, help, confirmations, errors and the connect prompt."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from slack_sdk.models.blocks import LinkButtonElement

from bot.domain.errors import HoursError
from bot.domain.hours import format_local, render_days_off, render_duration
from bot.domain.hours.holidays import describe_code
from bot.domain.hours.timezones import zone
from bot.domain.preferences import Preferences
from bot.domain.templates import BACK_AT_SENDER_FORMAT, PLACEHOLDERS, render_back_in, slack_date
from bot.slack.blocks.common import context, divider, escape, header, section


def now_line(prefs: Preferences, *, now: datetime) -> str:
    """ ":large_green_circle: Working until 17:30" or ":crescent_moon: Off — back Mon 09:00 (in 11 h)"."""
    prefix = ":double_vertical_bar: Auto-replies paused · " if prefs.paused else ""
    if prefs.schedule.is_working(now):
        until = prefs.schedule.next_end(now)
        return f"{prefix}:large_green_circle: *Working* until {format_local(until, prefs.tz, now=now)}"
    back = prefs.schedule.next_start(now)
    return (
        f"{prefix}:crescent_moon: *Off* — back {format_local(back, prefs.tz, now=now)} "
        f"(in {render_back_in(back - now)})"
    )


def settings_lines(prefs: Preferences, *, now: datetime, connected: bool | None = None) -> list[str]:
    # "Upcoming" is judged by the person's own calendar: at 22:00 in New York it is already tomorrow in UTC.
    today = now.astimezone(zone(prefs.tz)).date()
    days_off = ", ".join(render_days_off(d) for d in prefs.days_off if d.end >= today) or "none"
    lines = [
        f"*Hours:* {prefs.hours_text}" + ("" if prefs.custom_hours else " _(default)_"),
        f"*Time zone:* {prefs.tz}",
        f"*Reply time once back:* {render_duration(prefs.reply_within)}",
        f"*Days off:* {days_off}",
        "*Public holidays:* " + holidays_summary(prefs, now=now),
        f"*Auto-replies:* {'paused' if prefs.paused else 'on'}",
    ]
    if connected is not None:
        lines.append("*DMs:* " + ("connected" if connected else "not connected — auto-replies can't be sent"))
    return lines


def upcoming_holidays_text(prefs: Preferences, *, now: datetime) -> str:
    """ "Fri 25 Dec Christmas Day, Fri 1 Jan New Year's Day, ..." : the next three, or "" without holidays."""
    return ", ".join(f"{day:%a} {day.day} {day:%b} {name}" for day, name in prefs.schedule.upcoming_holidays(now))


def holidays_summary(prefs: Preferences, *, now: datetime) -> str:
    """ "US (United States) — next: ..." or "none"; "(default)" when they come from the config."""
    if prefs.holidays is None:
        return "none" + ("" if prefs.custom_holidays else " _(default)_")
    default = "" if prefs.custom_holidays else " _(default)_"
    upcoming = upcoming_holidays_text(prefs, now=now)
    return f"{prefs.holidays} ({describe_code(prefs.holidays)}){default}" + (f" — next: {upcoming}" if upcoming else "")


def holidays_line(prefs: Preferences, *, now: datetime, changed: bool = False) -> str:
    """The answer to `/hours holidays [code]`."""
    if prefs.holidays is None:
        return "No public holidays count as your days off. Turn them on with e.g. `holidays US` or `holidays DE-BY`."
    lead = "Public holidays now count as your days off" if changed else "Your public holidays"
    return (
        f"{lead}: *{prefs.holidays}* ({describe_code(prefs.holidays)}). Next: {upcoming_holidays_text(prefs, now=now)}."
    )


def exceptions_line(user_ids: list[str]) -> str:
    """Who never gets an auto-reply, as mentions."""
    if not user_ids:
        return "Everyone who writes while you're off gets your auto-reply (nobody is on your list)."
    return f"Never auto-replied ({len(user_ids)}): " + ", ".join(f"<@{u}>" for u in user_ids) + "."


def when_text(prefs: Preferences, *, now: datetime) -> str:
    """`/hours when @them`: working now, or when they are back, in the asker's zone (a Slack date) and theirs."""
    who = f"<@{prefs.user_id}>"
    try:
        if prefs.schedule.is_working(now):
            return f":large_green_circle: {who} is working now."
        back = prefs.schedule.next_start(now)
    except HoursError:
        return f"{who} has no working hours ahead in Offhours, so it can't say when they're back."
    theirs = format_local(back, prefs.tz, now=now)
    yours = slack_date(back, BACK_AT_SENDER_FORMAT, fallback=f"{theirs} ({prefs.tz})")
    return f":crescent_moon: {who} is off — back {yours} your time ({theirs} their time, {prefs.tz})."


def when_blocks(text: str) -> list[dict]:
    return [section(text)]


def status_blocks(
    prefs: Preferences, *, now: datetime, preview: str, command: str, connected: bool | None = None
) -> list[dict]:
    return [
        section(now_line(prefs, now=now)),
        section("\n".join(settings_lines(prefs, now=now, connected=connected))),
        divider(),
        section("*What a sender gets when you are off:*\n" + quote(preview)),
        context(f"Change anything with `{command} help`, or open Offhours' Home tab."),
    ]


def quote(text: str) -> str:
    return "\n".join("> " + line for line in text.splitlines() or [""])


def confirmation_blocks(text: str, prefs: Preferences, *, now: datetime) -> list[dict]:
    return [section(":white_check_mark: " + text), context(now_line(prefs, now=now))]


def error_blocks(message: str, *, command: str, example: str | None = None) -> list[dict]:
    blocks = [section(":warning: " + escape(message))]
    if example:
        blocks.append(section(f"For example: `{escape(example)}`"))
    return [*blocks, context(f"`{command} help` lists everything you can do.")]


# The link button in a `/hours` answer: Slack opens the URL and still sends the click, which must be acknowledged.
CONNECT_ACTION = "connect"


def connect_blocks(install_url: str, *, command: str) -> list[dict]:
    return [
        section(
            "Offhours can't see your direct messages yet. Connect them so it can answer people who write to you "
            "outside your hours, and recap what came in when you're back.",
            accessory=LinkButtonElement(text="Connect my DMs", url=install_url, action_id=CONNECT_ACTION),
        ),
        context(f"You can disconnect at any time with `{command} forget` or from Slack's app settings."),
    ]


HELP_ROWS: Mapping[str, str] = {
    "": "your status, hours, zone, message and days off",
    "set <hours>": "your working hours, e.g. `mon-thu 9-17:30; fri 9am-1pm`",
    "tz <zone>": "your time zone, e.g. `Europe/Rome` (default: your Slack profile's)",
    "message <text>": "your boundary message; `message reset` restores the default",
    "message external <text>": "what people of other organisations see (by default they get no auto-reply); "
    "`message external reset` restores that",
    "reply <time>": "how soon you reply once back: `30m`, `2h`, `1d`",
    "off <date>[..<date>]": "days off, e.g. `2026-12-24..2027-01-02`; `off list`, `off clear`",
    "holidays <code>": "public holidays as days off, e.g. `US`, `DE-BY`, `GB-SCT`; `holidays off`",
    "except @someone …": "people who never get your auto-reply (still in your recap); `except remove @someone`, "
    "`except` lists them",
    "when @someone": "is that person working now, and if not, when are they back",
    "urgent @someone · me · off": "an \"It's urgent\" button on your auto-reply: the sender's note goes to your "
    "backup, or to you (Do Not Disturb still silences it); `urgent` shows the route",
    "pause · resume": "turn auto-replies off and on",
    "status on · off": "your Slack status shows you are off while you are (`status text …`, `status emoji :zzz:`, "
    "`status replace on`)",
    "dnd on · off": "snooze your notifications while you are off",
    "nudge <time>": "a reminder that long before the reply-by time you promised, e.g. `30m`, `1h`; `nudge off`",
    "mentions on · off": "also answer @-mentions in channels and group DMs outside your hours (asks for channel "
    "access)",
    "preview": "exactly what a sender would get",
    "forget": "delete everything Offhours holds about you and disconnect",
    "channel set <hours> <zone>": "in a channel Offhours is in: the team's hours, e.g. "
    "`mon-fri 9-17:30 Europe/London`; `channel message <text>`, `channel summary @someone`, `channel show`, "
    "`channel off`",
}


def help_blocks(*, command: str) -> list[dict]:
    rows = "\n".join(f"`{command}{' ' + usage if usage else ''}` — {what}" for usage, what in HELP_ROWS.items())
    placeholders = ", ".join(f"`{{{name}}}`" for name in PLACEHOLDERS)
    return [
        header("Offhours — keep your hours"),
        section(rows),
        context(f"Placeholders for your message: {placeholders}"),
    ]


def preview_blocks(text: str, *, working: bool) -> list[dict]:
    when = "at your next off time" if working else "right now"
    return [section(f"*This is what a sender would get {when}:*"), *auto_reply_blocks(text)]


def auto_reply_blocks(text: str) -> list[dict]:
    return [section(":crescent_moon: *Auto-reply*\n" + text), _AUTO_REPLY_FOOTER]


# One post per after-hours sender, and building blocks through slack_sdk's models (with their validation) is not
# cheap: the footer never changes, so it is built once (the dict is shared and never changed).
_AUTO_REPLY_FOOTER = context("Sent automatically by Offhours on their behalf — your message is safe and will be seen.")


def forgotten_blocks(text: str, *, revoked: bool = True) -> list[dict]:
    return [section((":wastebasket: " if revoked else ":warning: ") + text)]
