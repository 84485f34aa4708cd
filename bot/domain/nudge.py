"""Nudges, pure: when to remind a person of the reply-by time an auto-reply promised, and whether to send it now.

The promise is what the auto-reply said: the end of the off window the DM came in, plus `reply_within` of working
time (bot/domain/templates.py's {reply_by}). The nudge comes `before` (working time) ahead of it, at a working
instant. Everything is recomputed from the person's current settings when a nudge is due: a promise that moved
after a change of hours is nudged by its new time; one that now falls outside working time is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.errors import HoursError
from bot.domain.hours import Schedule, parse_duration, render_duration
from bot.domain.templates import render_template

DEFAULT_BEFORE = timedelta(minutes=30)
SNOOZE = timedelta(hours=1)
# A snooze ends at least this long before the promise: a reminder at the very minute is too late to act on.
SNOOZE_MARGIN = timedelta(minutes=5)
_MARK = "\x00reply_by\x00"


def promises(template: str) -> bool:
    """Whether a boundary message made with `template` names a reply-by time (the {reply_by} placeholder)."""
    return _MARK in render_template(template, {"reply_by": _MARK})


MAX_BEFORE = timedelta(hours=8)


def parse_before(text: str) -> int:
    """`/hours nudge 1h` or `off`: the lead time in seconds to store (0: off); HoursError says what is wrong."""
    if text.strip().lower() in ("off", "none", "0"):
        return 0
    before = parse_duration(text)
    if before > MAX_BEFORE:
        raise HoursError(f"A nudge comes at most {render_duration(MAX_BEFORE)} before the promise — e.g. 30m or 1h")
    return int(before.total_seconds())


def describe(before: timedelta | None) -> str:
    """For /hours and Home: "on, 30 min before your reply-by time" or "off"."""
    if before is None:
        return "off"
    return f"on, {render_duration(before)} of working time before the reply-by time your auto-reply promises"


def effective_before(chosen_s: int | None, default: timedelta | None) -> timedelta | None:
    """How early a person is nudged: their choice (0 is "off"), else the config's default; None: no nudges."""
    if chosen_s is None:
        return default
    return timedelta(seconds=chosen_s) if chosen_s > 0 else None


@dataclass(frozen=True, slots=True)
class NudgePlan:
    promise: datetime  # the reply-by time the auto-reply named
    at: datetime  # when the nudge is due


def promise(schedule: Schedule, *, received_at: datetime, reply_within: timedelta) -> datetime | None:
    """The reply-by time an auto-reply to a DM at `received_at` names; None when that was working time."""
    window = schedule.off_window(received_at)
    if window is None:
        return None
    return schedule.add_working_time(window[1], reply_within)


def plan(schedule: Schedule, *, received_at: datetime, reply_within: timedelta, before: timedelta) -> NudgePlan | None:
    """The promise and the nudge's instant: `before` of working time ahead of the promise (no earlier than the
    person is back), moved to the next working instant if it lands on a break."""
    window = schedule.off_window(received_at)
    if window is None:
        return None
    back_at = window[1]
    promised = schedule.add_working_time(back_at, reply_within)
    at = schedule.add_working_time(back_at, max(reply_within - before, timedelta(0)))
    if not schedule.is_working(at):
        at = schedule.add_working_time(at, timedelta(0))  # the end of a stretch: the next start
    return NudgePlan(promise=promised, at=min(at, promised))


def in_working_time(schedule: Schedule, instant: datetime) -> bool:
    """Whether `instant` lies in working time or ends a working stretch (a promise at 17:30 for 9-17:30)."""
    return schedule.is_working(instant) or schedule.is_working(instant - timedelta(seconds=1))


@dataclass(frozen=True, slots=True)
class Send:
    promise: datetime


@dataclass(frozen=True, slots=True)
class Wait:
    at: datetime
    promise: datetime


@dataclass(frozen=True, slots=True)
class Drop:
    reason: str  # off, paused, hours_changed, promise_off_hours, promise_passed


Decision = Send | Wait | Drop


def decide(
    schedule: Schedule, *, received_at: datetime, reply_within: timedelta, before: timedelta | None, paused: bool,
    promised: datetime, due_at: datetime, snoozed: bool, now: datetime,
) -> Decision:  # fmt: skip
    """What to do with a nudge due at `due_at` for the promise `promised`, at `now`, under the current settings."""
    if before is None or paused:
        # Decided when due: turned back on (or resumed) before then, the nudge still comes.
        if now < due_at:
            return Wait(at=due_at, promise=promised)
        return Drop("off" if before is None else "paused")
    current = plan(schedule, received_at=received_at, reply_within=reply_within, before=before)
    if current is None:
        return Drop("hours_changed")
    if current.promise != promised:
        if not in_working_time(schedule, promised):
            return Drop("promise_off_hours")
        promised, target = current.promise, current.at  # moved: nudged by the new time, once
    else:
        target = due_at if snoozed else current.at
    if now > promised:
        return Drop("promise_passed")
    if now < target:
        return Wait(at=target, promise=promised)
    if not schedule.is_working(now):
        # Caught up after downtime, or a snooze into a break: at the next working instant, if still in time.
        start = schedule.add_working_time(now, timedelta(0))
        return Wait(at=start, promise=promised) if start < promised else Drop("promise_passed")
    return Send(promise=promised)


def snooze_until(*, now: datetime, promised: datetime) -> datetime | None:
    """When a snoozed nudge comes back: an hour later, at most SNOOZE_MARGIN before the promise; None: too late."""
    until = min(now + SNOOZE, promised - SNOOZE_MARGIN)
    return until if until > now else None
