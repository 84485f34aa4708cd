"""Status sync: what a person's Slack status says while they are off, and whether a status is Offhours' own.

Pure: the off window comes from the Schedule, the text from the boundary-message placeholders (bot/domain/templates).
A status is Offhours' when its text and emoji are those Offhours last set; anything else is the person's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from bot.domain.errors import TemplateError
from bot.domain.preferences import Preferences
from bot.domain.templates import boundary_values, render_template, validate_template

DEFAULT_STATUS_TEXT = "Off the clock — back {back_at}"
DEFAULT_STATUS_EMOJI = ":crescent_moon:"
MAX_STATUS_LENGTH = 100  # Slack's limit on status_text
MAX_TEMPLATE_LENGTH = 400  # what status_prefs.text holds (bot/storage/schema.py)
# The user scopes status sync needs, asked for only from people who turn it on.
STATUS_SCOPES = ("users.profile:read", "users.profile:write")
DND_SCOPES = ("dnd:write",)  # snoozing notifications, asked for only from people who turn it on
_EMOJI = re.compile(r":[a-z0-9_+\-']{1,98}:")


@dataclass(frozen=True, slots=True)
class StatusChoice:
    """What a person chose about status sync; None: the config's default."""

    enabled: bool | None = None
    text: str | None = None
    emoji: str | None = None
    replace: bool = False  # put their own status back at the window's end, after replacing it
    dnd: bool = False  # snooze notifications for the off window


@dataclass(frozen=True, slots=True)
class StatusSettings:
    """Status sync as it applies to one person: their choice merged with the config's defaults."""

    enabled: bool
    text: str
    emoji: str
    replace: bool
    dnd: bool = False


@dataclass(frozen=True, slots=True)
class StatusPlan:
    """The status Offhours wants on a person now: for the off window ending at `window_end`."""

    window_end: datetime
    text: str
    emoji: str

    @property
    def expiration(self) -> int:
        """status_expiration: Slack clears it by itself when the window ends, even if Offhours is down."""
        return int(self.window_end.timestamp())


@dataclass(frozen=True, slots=True)
class SlackStatus:
    """A status as users.profile.get shows it."""

    text: str
    emoji: str
    expiration: int = 0

    @property
    def empty(self) -> bool:
        return not self.text and not self.emoji


def settings(choice: StatusChoice | None, *, enabled: bool, text: str, emoji: str) -> StatusSettings:
    choice = choice or StatusChoice()
    return StatusSettings(
        enabled=enabled if choice.enabled is None else choice.enabled,
        text=choice.text or text,
        emoji=choice.emoji or emoji,
        replace=choice.replace,
        dnd=choice.dnd,
    )


def render_status(template: str, prefs: Preferences, *, now: datetime) -> str:
    """The status text at `now`, with the boundary message's placeholders ({sender} is empty); at most 100
    characters (longer is cut, with an ellipsis)."""
    values = boundary_values(prefs.schedule, now=now, user=f"<@{prefs.user_id}>", sender="",
                             reply_within=prefs.reply_within)  # fmt: skip
    values["back_at_sender"] = values["back_at"]  # a Slack date does not render in a status
    text = " ".join(render_template(template, values).split())
    return text if len(text) <= MAX_STATUS_LENGTH else text[: MAX_STATUS_LENGTH - 1] + "…"


def plan(prefs: Preferences, status: StatusSettings, *, now: datetime) -> StatusPlan | None:
    """The status Offhours should show at `now`; None when sync is off, auto-replies are paused or they work now."""
    if not status.enabled or prefs.paused:
        return None
    window = prefs.schedule.off_window(now)
    if window is None:
        return None
    # Rendered as at the window's start, so that the text stays the same all window long ({back_in} included):
    # a text that changed every minute would be set again every minute.
    start = window[0]
    at = start if start is not None and not prefs.schedule.is_working(start) else now
    return StatusPlan(window_end=window[1], text=render_status(status.text, prefs, now=at), emoji=status.emoji)


def next_plan(prefs: Preferences, status: StatusSettings, *, now: datetime) -> StatusPlan | None:
    """What the status will read during the current off window, or the next one if they are working now."""
    at = prefs.schedule.next_end(now) if prefs.schedule.is_working(now) else now
    return plan(prefs, StatusSettings(True, status.text, status.emoji, status.replace), now=at)


def validate_status_text(text: str, prefs: Preferences, *, now: datetime) -> str:
    """A status template: the placeholders of a boundary message, at most 400 characters as typed and 100 once
    rendered, no NUL."""
    if "\x00" in text:
        raise TemplateError("The status contains a NUL character (\\0); remove it and try again.")
    text = validate_template(" ".join(text.split()))
    # Placeholders may render short (`{sender}` is empty here), but the template itself is what is stored.
    if len(text) > MAX_TEMPLATE_LENGTH:
        raise TemplateError(
            f"A status template holds at most {MAX_TEMPLATE_LENGTH} characters, placeholders included; yours has "
            f"{len(text)}. Shorten it and try again."
        )
    at = prefs.schedule.next_end(now) if prefs.schedule.is_working(now) else now
    values = boundary_values(prefs.schedule, now=at, user=f"<@{prefs.user_id}>", sender="",
                             reply_within=prefs.reply_within)  # fmt: skip
    values["back_at_sender"] = values["back_at"]
    rendered = render_template(text, values)
    if len(rendered) > MAX_STATUS_LENGTH:
        raise TemplateError(
            f"A status holds at most {MAX_STATUS_LENGTH} characters; yours would read {len(rendered)} "
            f"(“{rendered[:60]}…”). Shorten it and try again."
        )
    return text


def validate_emoji(text: str) -> str:
    emoji = text.strip().lower()
    if not _EMOJI.fullmatch(emoji):
        raise TemplateError(f"`{text[:40]}` is not an emoji code — give one like :crescent_moon: or :palm_tree:")
    return emoji


def is_ours(current: SlackStatus, *, text: str | None, emoji: str | None) -> bool:
    """Whether the status now on the profile is the one Offhours set (same text and emoji)."""
    return text is not None and not current.empty and current.text == text and current.emoji == (emoji or "")


def missing_scopes(granted: set[str] | None, wanted: tuple[str, ...] = STATUS_SCOPES) -> list[str]:
    """The status (or `wanted`) scopes the person's token lacks (all of them when nothing is known)."""
    return [scope for scope in wanted if granted is None or scope not in granted]


def snooze_until(prefs: Preferences, status: StatusSettings, *, now: datetime) -> datetime | None:
    """When notifications snoozed for the off window should end; None when DND is off, paused, or they work now."""
    if not status.dnd or prefs.paused:
        return None
    window = prefs.schedule.off_window(now)
    return None if window is None else window[1]


def snooze_minutes(until: datetime, *, now: datetime) -> int:
    """dnd.setSnooze's num_minutes: to the window's end, rounded up (at least one)."""
    return max(1, -(-int((until - now).total_seconds()) // 60))
