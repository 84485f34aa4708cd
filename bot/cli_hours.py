"""`python -m bot hours`: ask the hours engine about one schedule and print the answer as JSON.

    python -m bot hours --spec "mon-fri 9-17:30" --tz Europe/Rome
        [--at 2026-03-28T20:00:00+00:00] [--off 2026-12-24..2027-01-02 ...] [--holidays US]

--at defaults to the current time (the only clock read of the hours engine); --off is repeatable; --holidays
makes a country's (or region's) public holidays days off, observed dates included, and lists the next three.

Exit status 0 with one JSON object on stdout; 2 with the message on stderr when the input is wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from bot.domain.errors import HoursError
from bot.domain.hours import (
    SUPPORTED_YEARS,
    Schedule,
    parse_days_off,
    parse_hours,
    render_days_off,
    render_hours,
    resolve_holidays,
    resolve_timezone,
)
from bot.domain.hours.timezones import zone


class _ArgumentError(Exception):
    """argparse found a usage problem; the message has already been formatted for people."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _ArgumentError(f"{self.prog}: {message}")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m bot hours", description="Answer working-hours questions about one schedule.")
    parser.add_argument("--spec", required=True, help='working hours, e.g. "mon-thu 9-17:30; fri 9am-1pm"')
    parser.add_argument("--tz", required=True, help="IANA time zone, e.g. Europe/Rome")
    parser.add_argument("--at", help="the instant to ask about, ISO 8601 with an offset (default: now)")
    parser.add_argument(
        "--off", action="append", default=[], help="days off: 2026-12-24 or 2026-12-24..2027-01-02 (repeatable)"
    )
    parser.add_argument("--holidays", help="public holidays as days off: a country code, e.g. US, DE-BY, GB-SCT")
    return parser


_AT_EXAMPLE = "2026-03-28T20:00:00+00:00"


def _parse_at(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)  # the only clock read of the hours engine
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise HoursError(f"--at {text!r} is not an ISO 8601 instant — e.g. 2026-03-28T20:00:00+00:00") from None
    if at.utcoffset() is None:
        raise HoursError(f"--at {text!r} has no UTC offset — add one, e.g. 2026-03-28T20:00:00+00:00")
    first, last = SUPPORTED_YEARS
    if not first <= at.year <= last:
        raise HoursError(f"--at {text!r} must fall between the years {first} and {last}, e.g. {_AT_EXAMPLE}")
    return at


def answer(schedule: Schedule, at: datetime) -> dict[str, object]:
    """The JSON-ready answer for `schedule` at instant `at`."""
    window = schedule.off_window(at)
    result: dict[str, object] = {
        "at": at.astimezone(zone(schedule.tz)).isoformat(),
        "working": window is None,
        "next_start": schedule.next_start(at).isoformat(),
        "next_end": schedule.next_end(at).isoformat(),
        "off_since": window[0].isoformat() if window and window[0] else None,
        "back_at": window[1].isoformat() if window else None,
        "spec": render_hours(schedule.weekly),
        "tz": schedule.tz,
        "days_off": [render_days_off(d) for d in schedule.days_off],
    }
    if schedule.holidays:  # only asked with --holidays: without it the answer is what it always was
        result["holidays"] = schedule.holidays
        result["next_holidays"] = [{"date": d.isoformat(), "name": name} for d, name in schedule.upcoming_holidays(at)]
    return result


def main(argv: list[str]) -> int:
    """Run the `hours` command; returns the exit status."""
    try:
        args = _build_parser().parse_args(argv)
    except _ArgumentError as exc:
        print(exc, file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    try:
        schedule = Schedule(
            tz=resolve_timezone(args.tz),
            weekly=parse_hours(args.spec),
            days_off=tuple(parse_days_off(text) for text in args.off),
            holidays=resolve_holidays(args.holidays) if args.holidays is not None else None,
        )
        result = answer(schedule, _parse_at(args.at))
    except HoursError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, ensure_ascii=False))
    return 0
