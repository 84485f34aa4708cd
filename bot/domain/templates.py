"""Boundary-message templates: the placeholders, their validation and their (format-free) rendering.

A template is plain text with ``{name}`` placeholders; ``{{`` and ``}}`` are literal braces. Nothing else in braces
is allowed: no attribute access, indexing, format specs or conversions. Rendering is a single regex pass over that
grammar, never ``str.format``, so user text can not reach Python objects.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from bot.domain.errors import TemplateError
from bot.domain.hours import Schedule, format_local, render_hours
from bot.domain.hours.timezones import format_utc_offset

MAX_LENGTH = 3000

PLACEHOLDERS: Mapping[str, str] = MappingProxyType(
    {
        "user": "you, as a mention (the person who is off)",
        "sender": "the person who wrote to you, as a mention",
        "back_at": "when you are back, in your time zone, e.g. Mon 09:00",
        "back_at_sender": "the same moment as a Slack date: each reader sees it in their own time zone, e.g. "
        "tomorrow at 8:00 AM your time",
        "back_in": "how long until you are back, e.g. 35 min, 11 h, 2 d 3 h",
        "reply_by": "when they can expect an answer: back_at plus your reply time, counted in working hours",
        "hours": "your working hours, e.g. Mon–Fri 09:00–17:30",
    }
)

DEFAULT_MESSAGE = (
    "Hi {sender}, thanks for your message! I'm offline right now and back {back_at} my time ({back_at_sender}). "
    "I'll get back to you by {reply_by} at the latest."
)

# The whole grammar: literal braces, a placeholder, or a lone brace (an error when validating, kept when rendering).
# Placeholder names are plain identifiers; the alternation order makes "{{user}}" the literal text "{user}".
_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _placeholder_list() -> str:
    return ", ".join("{" + name + "}" for name in PLACEHOLDERS)


def _did_you_mean(name: str) -> str:
    lowered = {candidate.lower(): candidate for candidate in PLACEHOLDERS}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return f" — did you mean {{{lowered[close[0]]}}}?" if close else ""


def _short(piece: str, limit: int = 40) -> str:
    return piece if len(piece) <= limit else piece[: limit - 1] + "…"


def _explain(piece: str) -> str:
    """Why the braced ``piece`` (starting with "{" and ending with "}") is not a plain placeholder."""
    inner = piece[1:-1]
    shown = _short(piece)
    if not inner.strip():
        return f"{shown} is empty — put a placeholder name inside the braces, or write {{{{ }}}} for literal braces"
    head = _NAME.match(inner.strip())
    base = head.group(0) if head else ""
    rest = inner.strip()[len(base) :]
    if base and rest:
        kinds = {".": "attribute access", "[": "indexing", ":": "a format spec", "!": "a conversion"}
        kind = kinds.get(rest[0])
        if kind:
            return f"{shown} uses {kind}; only plain placeholders like {{{base}}} are allowed"
    if base and not rest:
        if inner != base:
            return f"{shown} has spaces inside the braces; write {{{base}}}"
        return f"{shown} is not a known placeholder{_did_you_mean(base)}"
    return f"{shown} is not a placeholder; write {{{{ and }}}} for literal braces"


def validate_template(text: str) -> str:
    """Check a boundary-message template and return it stripped; raise TemplateError naming every problem."""
    if not isinstance(text, str):
        raise TemplateError(f"The message must be text, got {type(text).__name__}.")
    text = text.strip()
    if not text:
        raise TemplateError("The message is empty; write a few words, e.g. " + DEFAULT_MESSAGE)
    if len(text) > MAX_LENGTH:
        raise TemplateError(f"The message is {len(text):,} characters; the limit is {MAX_LENGTH:,}.")

    problems: list[str] = []
    pos = 0
    while pos < len(text):
        open_at = text.find("{", pos)
        close_at = text.find("}", pos)
        if open_at == -1 and close_at == -1:
            break
        if open_at == -1 or (close_at != -1 and close_at < open_at):
            # A "}" comes first: only "}}" is allowed outside a placeholder.
            if text.startswith("}}", close_at):
                pos = close_at + 2
                continue
            problems.append(f"a lone '}}' at character {close_at + 1}; write }}}} for a literal brace")
            pos = close_at + 1
            continue
        if text.startswith("{{", open_at):
            pos = open_at + 2
            continue
        end = text.find("}", open_at + 1)
        nested = text.find("{", open_at + 1)
        if end == -1 or (nested != -1 and nested < end):
            snippet = _short(text[open_at : (nested if nested != -1 else open_at + 20)].rstrip())
            problems.append(f"'{snippet}' opens a brace that is never closed; write {{{{ for a literal brace")
            pos = open_at + 1
            continue
        piece = text[open_at : end + 1]
        name = piece[1:-1]
        if name not in PLACEHOLDERS:
            problems.append(_explain(piece))
        pos = end + 1

    if problems:
        lines = [f"The message has {'a problem' if len(problems) == 1 else f'{len(problems)} problems'}:"]
        lines += [f"  - {problem}" for problem in problems[:10]]
        if len(problems) > 10:
            lines.append(f"  - … and {len(problems) - 10} more")
        lines.append(f"Valid placeholders: {_placeholder_list()}.")
        raise TemplateError("\n".join(lines))
    return text


def render_template(text: str, values: Mapping[str, str]) -> str:
    """Substitute ``{name}`` from ``values`` in one pass; unknown names and stray braces are left as written."""

    def substitute(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        value = values.get(match.group(1))
        return token if value is None else str(value)

    return _TOKEN.sub(substitute, text)


def render_back_in(delta: timedelta) -> str:
    """A humane "how long until": ``35 min``, ``1 h 30 min``, ``11 h``, ``2 d 3 h``."""
    seconds = delta.total_seconds()
    if seconds <= 0:
        return "0 min"
    minutes = -(-int(seconds) // 60)  # round up: "back in 1 min" rather than "0 min" for 20 seconds
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 3 * 60:
        # Short waits keep five-minute precision; "2 h" for 1 h 40 min would feel wrong to the reader.
        minutes = 5 * round(minutes / 5)
        hours, rest = divmod(minutes, 60)
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    hours = round(minutes / 60)
    if hours < 24:
        return f"{hours} h"
    days, rest = divmod(hours, 24)
    return f"{days} d {rest} h" if rest else f"{days} d"


# How Slack shows {back_at_sender}: "today at 3:00 PM", "tomorrow at 15:00", "Mar 9, 2026 at 3:00 PM". Slack
# renders it in the reader's zone and 12/24-hour setting, and judges today/tomorrow when the message is read, so
# the words stay true when the reply is read the next day; the full date (with the year) for anything further.
BACK_AT_SENDER_FORMAT = "{date_short_pretty} at {time}"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def slack_date(instant: datetime, token_string: str, *, fallback: str) -> str:
    """Slack's date formatting, ``<!date^UNIX_TS^TOKEN_STRING|FALLBACK>``: every client shows ``instant`` in its
    reader's own time zone; ``fallback`` is the plain text shown where a client cannot render it."""
    timestamp = (instant - _EPOCH) // timedelta(seconds=1)
    return f"<!date^{timestamp}^{token_string}|{fallback}>"


@dataclass(frozen=True, slots=True)
class BoundaryContext:
    """The moments a boundary message talks about, before they are rendered to text."""

    back_at: datetime
    reply_by: datetime
    recipient_tz: str


def boundary_context(schedule: Schedule, *, now: datetime, reply_within: timedelta) -> BoundaryContext:
    """When the recipient is back and can be expected to reply.

    While off, ``back_at`` is the end of the current off window. While working (e.g. a preview in the Home tab),
    it is the back-at of the *next* off window: the first start after the current working stretch ends.
    ``reply_by`` adds ``reply_within`` of working time to ``back_at``.
    """
    window = schedule.off_window(now)
    back_at = window[1] if window is not None else _back_after_current_interval(schedule, now)
    reply_by = schedule.add_working_time(back_at, reply_within)
    return BoundaryContext(back_at=back_at, reply_by=reply_by, recipient_tz=schedule.tz)


def boundary_values(
    schedule: Schedule, *, now: datetime, user: str, sender: str, reply_within: timedelta
) -> dict[str, str]:
    """The placeholder values for a boundary message sent at ``now`` (see boundary_context for back_at)."""
    context = boundary_context(schedule, now=now, reply_within=reply_within)
    back_at = format_local(context.back_at, context.recipient_tz, now=now)
    # Both people read the reply in the DM thread, and Slack shows each of them their own time: "your time" is
    # right for both. The fallback names the offset, so it means one instant to a reader in any zone.
    fallback = f"{back_at} {format_utc_offset(context.back_at, context.recipient_tz)}"
    return {
        "user": user,
        "sender": sender,
        "back_at": back_at,
        "back_at_sender": slack_date(context.back_at, BACK_AT_SENDER_FORMAT, fallback=fallback) + " your time",
        "back_in": render_back_in(context.back_at - now),
        "reply_by": format_local(context.reply_by, context.recipient_tz, now=now),
        "hours": render_hours(schedule.weekly),
    }


def _back_after_current_interval(schedule: Schedule, now: datetime) -> datetime:
    # next_end is the end of the whole working stretch (touching intervals, e.g. across midnight, are one), so
    # the first start strictly after it is the back-at of the off window that follows.
    return schedule.next_start(schedule.next_end(now))
