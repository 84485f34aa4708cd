"""Nudges, pure: the working-time instant before a promise (across a weekend and a DST change), and the decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytz

from bot.domain.hours import Schedule, parse_days_off, parse_hours
from bot.domain.nudge import (
    Drop,
    Send,
    Wait,
    decide,
    effective_before,
    plan,
    promise,
    promises,
    snooze_until,
)
from bot.domain.templates import DEFAULT_MESSAGE

BERLIN = pytz.timezone("Europe/Berlin")
NEW_YORK = pytz.timezone("America/New_York")
H = timedelta(hours=1)
M30 = timedelta(minutes=30)


def local(zone: pytz.BaseTzInfo, *args: int) -> datetime:
    return zone.localize(datetime(*args))


def schedule(hours: str = "mon-fri 9-17:30", tz: str = "Europe/Berlin", days_off: str = "") -> Schedule:
    return Schedule(tz=tz, weekly=parse_hours(hours), days_off=(parse_days_off(days_off),) if days_off else ())


def test_a_friday_evening_dm_is_nudged_monday_30_working_minutes_before_the_promise():
    s = schedule()
    friday_evening = local(BERLIN, 2026, 3, 6, 20, 0)  # a Friday
    p = plan(s, received_at=friday_evening, reply_within=4 * H, before=M30)
    assert p is not None
    assert p.promise == local(BERLIN, 2026, 3, 9, 13, 0)  # Monday 09:00 + 4 h
    assert p.at == local(BERLIN, 2026, 3, 9, 12, 30)


def test_working_minutes_before_a_promise_skip_the_weekend():
    # Half an hour of work a day: 1 h of reply time from Friday 17:00 spans the weekend.
    s = schedule("mon-fri 17:00-17:30")
    p = plan(s, received_at=local(BERLIN, 2026, 3, 6, 12, 0), reply_within=H, before=M30)
    assert p is not None
    # Friday 17:00-17:30 is the first half hour; the promise is Monday 17:30; 30 working minutes before is Monday 17:00.
    assert p.promise == local(BERLIN, 2026, 3, 9, 17, 30)
    assert p.at == local(BERLIN, 2026, 3, 9, 17, 0)
    # One hour before: Friday 17:00, across the weekend.
    early = plan(s, received_at=local(BERLIN, 2026, 3, 6, 12, 0), reply_within=H, before=H)
    assert early is not None and early.at == local(BERLIN, 2026, 3, 6, 17, 0)


def test_across_the_spring_dst_change_the_nudge_is_at_wall_clock_working_time():
    s = schedule("daily 9-17", tz="America/New_York")
    saturday_night = local(NEW_YORK, 2026, 3, 7, 22, 0)  # DST starts Sunday 2026-03-08 02:00
    p = plan(s, received_at=saturday_night, reply_within=4 * H, before=M30)
    assert p is not None
    assert p.promise == local(NEW_YORK, 2026, 3, 8, 13, 0)
    assert p.at == local(NEW_YORK, 2026, 3, 8, 12, 30)
    assert p.at.astimezone(UTC) == datetime(2026, 3, 8, 16, 30, tzinfo=UTC)  # EDT, UTC-4


def test_overnight_hours_across_the_dst_change_count_real_working_minutes():
    # 01:00-04:00 on the spring-forward night holds only 2 real hours: 3 h of reply time spill into the next night.
    s = schedule("daily 1-4", tz="America/New_York")
    p = plan(s, received_at=local(NEW_YORK, 2026, 3, 7, 22, 0), reply_within=3 * H, before=M30)
    assert p is not None
    assert p.promise == local(NEW_YORK, 2026, 3, 9, 2, 0)
    assert p.at == local(NEW_YORK, 2026, 3, 9, 1, 30)


def test_a_nudge_landing_on_the_end_of_a_stretch_moves_to_the_next_start():
    s = schedule("mon-fri 9-12, 13-17")
    p = plan(s, received_at=local(BERLIN, 2026, 3, 6, 20, 0), reply_within=3 * H + M30, before=M30)
    assert p is not None
    assert p.promise == local(BERLIN, 2026, 3, 9, 13, 30)
    assert p.at == local(BERLIN, 2026, 3, 9, 13, 0)  # not 12:00, when the person is at lunch


def test_a_reply_time_shorter_than_the_lead_nudges_when_the_person_is_back():
    s = schedule()
    p = plan(s, received_at=local(BERLIN, 2026, 3, 6, 20, 0), reply_within=timedelta(minutes=10), before=M30)
    assert p is not None and p.at == local(BERLIN, 2026, 3, 9, 9, 0)


def test_no_plan_for_a_dm_in_working_time():
    assert plan(schedule(), received_at=local(BERLIN, 2026, 3, 9, 10, 0), reply_within=H, before=M30) is None
    assert promise(schedule(), received_at=local(BERLIN, 2026, 3, 9, 10, 0), reply_within=H) is None


def test_only_a_template_naming_reply_by_promises():
    assert promises(DEFAULT_MESSAGE)
    assert not promises("I'm off until {back_at}.")
    assert not promises("Literal {{reply_by}} is no promise")


def test_effective_before():
    assert effective_before(None, M30) == M30
    assert effective_before(3600, M30) == H
    assert effective_before(0, M30) is None
    assert effective_before(None, None) is None


# --- decide ----------------------------------------------------------------------------------------------------------

FRIDAY_EVENING = local(BERLIN, 2026, 3, 6, 20, 0)
PROMISE = local(BERLIN, 2026, 3, 9, 13, 0)
DUE = local(BERLIN, 2026, 3, 9, 12, 30)


def _decide(s: Schedule | None = None, **overrides: object) -> object:
    args: dict[str, object] = dict(received_at=FRIDAY_EVENING, reply_within=4 * H, before=M30, paused=False,
                                   promised=PROMISE, due_at=DUE, snoozed=False, now=DUE)  # fmt: skip
    args.update(overrides)
    return decide(s or schedule(), **args)  # type: ignore[arg-type]


def test_due_and_unchanged_sends():
    assert _decide() == Send(promise=PROMISE)


def test_off_or_paused_drops_when_due_and_waits_before():
    assert _decide(before=None) == Drop("off")
    assert _decide(paused=True) == Drop("paused")
    earlier = DUE - H
    assert _decide(before=None, now=earlier) == Wait(at=DUE, promise=PROMISE)
    assert _decide(paused=True, now=earlier) == Wait(at=DUE, promise=PROMISE)


def test_a_promise_that_moved_waits_for_its_new_time():
    later = schedule("mon-fri 10-18")
    assert _decide(later) == Wait(at=local(BERLIN, 2026, 3, 9, 13, 30), promise=local(BERLIN, 2026, 3, 9, 14, 0))


def test_a_promise_now_outside_working_time_is_dropped():
    mornings = schedule("mon-fri 9-12")
    assert _decide(mornings) == Drop("promise_off_hours")


def test_a_dm_now_in_working_time_is_dropped():
    assert _decide(schedule("mon-fri 9-17:30; fri 9-17:30, 18-23"), now=DUE) == Drop("hours_changed")


def test_after_the_promise_it_is_dropped():
    assert _decide(now=PROMISE + timedelta(minutes=1)) == Drop("promise_passed")


def test_caught_up_on_a_break_waits_for_the_next_start_if_still_in_time():
    s = schedule("mon-fri 9-12:40, 12:50-17")
    # 4 working hours from Monday 09:00 with a 10-minute break: 13:10; the nudge at 12:50 (stretch start).
    p = plan(s, received_at=FRIDAY_EVENING, reply_within=4 * H, before=timedelta(minutes=20))
    assert p is not None and p.at == local(BERLIN, 2026, 3, 9, 12, 50)
    at_break = local(BERLIN, 2026, 3, 9, 12, 45)
    result = decide(s, received_at=FRIDAY_EVENING, reply_within=4 * H, before=timedelta(minutes=20), paused=False,
                    promised=p.promise, due_at=at_break, snoozed=True, now=at_break)  # fmt: skip
    assert result == Wait(at=local(BERLIN, 2026, 3, 9, 12, 50), promise=p.promise)


def test_a_snoozed_nudge_waits_for_its_snooze():
    until = DUE + timedelta(minutes=25)
    assert _decide(due_at=until, snoozed=True) == Wait(at=until, promise=PROMISE)
    assert _decide(due_at=until, snoozed=True, now=until) == Send(promise=PROMISE)


def test_snooze_is_an_hour_at_most_until_shortly_before_the_promise():
    assert snooze_until(now=DUE - H, promised=PROMISE) == DUE
    assert snooze_until(now=DUE, promised=PROMISE) == PROMISE - timedelta(minutes=5)
    assert snooze_until(now=PROMISE - timedelta(minutes=4), promised=PROMISE) is None


def test_across_the_autumn_dst_change_the_repeated_hour_counts_once_more():
    # DST ends Sunday 2026-11-01 02:00 EDT -> 01:00 EST: the 01:00-04:00 window that night holds 4 real hours.
    s = schedule("daily 1-4", tz="America/New_York")
    p = plan(s, received_at=local(NEW_YORK, 2026, 10, 31, 22, 0), reply_within=3 * H, before=M30)
    assert p is not None
    assert p.promise == datetime(2026, 11, 1, 8, 0, tzinfo=UTC)  # 03:00 EST: 3 real hours after 01:00 EDT
    assert p.at == datetime(2026, 11, 1, 7, 30, tzinfo=UTC)  # 02:30 EST
