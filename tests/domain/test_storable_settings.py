"""Whatever the hours language accepts can be stored and read back; whatever is stored can be read.

- `parse_hours` refuses hours whose canonical form (what is stored) is longer than MAX_TEXT, so a stored value
  always parses again (the people.hours column holds MAX_TEXT characters).
- A run of consecutive days off is at most MAX_DAYS_OFF_RUN days: every schedule question is answered from
  anywhere in it; `within_horizon` drops longer runs from what is read.
- `preferences()` never raises on a stored row: unreadable hours, zone or days off fall back to the defaults.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import Config
from bot.domain.hours import (
    MAX_DAYS_OFF_RUN,
    DayOff,
    HoursError,
    Schedule,
    days_off_runs,
    parse_hours,
    render_hours,
    within_horizon,
)
from bot.domain.hours.text import MAX_TEXT
from bot.domain.preferences import PersonRow, preferences

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def test_hours_longer_than_the_limit_written_out_are_refused_though_shorter_as_typed():
    spec = "; ".join(f"{d} " + " ".join(f"{h}-{h}:0{i + 1}" for h in range(14)) for i, d in enumerate(DAYS))
    assert len(spec) <= MAX_TEXT
    with pytest.raises(HoursError, match="characters written out"):
        parse_hours(spec)


interval = st.tuples(st.integers(0, 23), st.integers(0, 59), st.integers(1, 120))
day_spec = st.lists(interval, min_size=0, max_size=12).map(
    lambda ivs: " ".join(f"{h}:{m:02d}-{(h * 60 + m + n) // 60 % 24}:{(h * 60 + m + n) % 60:02d}" for h, m, n in ivs)
)


@settings(max_examples=200, deadline=None)
@given(days=st.lists(day_spec, min_size=7, max_size=7))
def test_whatever_is_accepted_is_stored_within_the_limit_and_reads_back_the_same(days):
    spec = "; ".join(f"{d} {text}" for d, text in zip(DAYS, days, strict=True) if text)
    try:
        weekly = parse_hours(spec)
    except HoursError:
        return
    stored = render_hours(weekly)
    assert len(stored) <= MAX_TEXT
    assert parse_hours(stored) == weekly


def test_runs_join_touching_and_overlapping_ranges():
    ranges = [DayOff(date(2026, 1, 1), date(2026, 1, 10)), DayOff(date(2026, 1, 11), date(2026, 1, 12)),
              DayOff(date(2026, 1, 5), date(2026, 1, 6)), DayOff(date(2026, 2, 1), date(2026, 2, 1))]  # fmt: skip
    assert days_off_runs(ranges) == [(date(2026, 1, 1), date(2026, 1, 12)), (date(2026, 2, 1), date(2026, 2, 1))]


def year_ranges(start: date, n: int) -> list[DayOff]:
    out = []
    for _ in range(n):
        end = start + timedelta(days=365)
        out.append(DayOff(start, end))
        start = end + timedelta(days=1)
    return out


def test_the_longest_run_allowed_still_answers_from_anywhere_in_it():
    run = year_ranges(date(2026, 3, 1), 2)
    first, last = days_off_runs(run)[0]
    assert (last - first).days + 1 == MAX_DAYS_OFF_RUN
    schedule = Schedule(tz="Europe/Rome", weekly=parse_hours("fri 9-10"), days_off=tuple(run), holidays="IT")
    for day in (first, first + timedelta(days=400), last):
        at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        assert schedule.off_window(at)[1].date() > last
        assert schedule.next_end(at) > schedule.next_start(at)


def test_within_horizon_drops_only_a_run_that_is_too_long():
    too_long = year_ranges(date(2026, 3, 1), 3)
    kept = DayOff(date(2030, 1, 1), date(2030, 1, 2))
    assert within_horizon([*too_long, kept]) == (kept,)
    assert within_horizon(year_ranges(date(2026, 3, 1), 2)) == tuple(year_ranges(date(2026, 3, 1), 2))


UNREADABLE_ROWS = [
    PersonRow("T1", "U1", hours="mon " + "x" * 900),
    PersonRow("T1", "U1", hours="x" * 1100),
    PersonRow("T1", "U1", tz="Mars/Olympus_Mons"),
    PersonRow("T1", "U1", days_off="2026-13-45;garbage;2026-03-10"),
    PersonRow("T1", "U1", days_off=";".join(f"{d.start}..{d.end}" for d in year_ranges(date(2026, 3, 1), 3))),
    PersonRow("T1", "U1", holidays="XX-NOWHERE"),
]


@pytest.mark.parametrize("row", UNREADABLE_ROWS)
def test_a_stored_row_that_cannot_be_read_falls_back_to_the_defaults_and_answers(row):
    defaults = Config().defaults
    prefs = preferences(row, defaults, team_id="T1", user_id="U1")
    now = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)
    assert prefs.schedule.off_window(now) is not None  # every question has an answer
    if row.hours:
        assert prefs.weekly == defaults.weekly and not prefs.custom_hours
    if row.tz:
        assert prefs.tz == defaults.fallback_timezone
    if row.days_off.endswith("2026-03-10"):
        assert prefs.days_off == (DayOff(date(2026, 3, 10), date(2026, 3, 10)),)  # the readable one is kept


def test_runs_apart_only_by_days_without_hours_are_one_run_and_dropped_together_when_too_long():
    weekly = parse_hours("mon-fri 9-17")
    ranges = [DayOff(date(2026, 3, 9), date(2027, 3, 5)), DayOff(date(2027, 3, 8), date(2028, 3, 3)),
              DayOff(date(2028, 3, 6), date(2029, 3, 2))]  # fmt: skip
    assert days_off_runs(ranges, weekly) == [(date(2026, 3, 9), date(2029, 3, 2))]
    assert len(days_off_runs(ranges)) == 3  # without the hours: three runs
    assert within_horizon(ranges, weekly) == ()
    assert within_horizon(ranges, parse_hours("daily 9-17")) == tuple(ranges)  # weekends are worked: no run
