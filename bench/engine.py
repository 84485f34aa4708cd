"""Micro-benchmark of the hours engine: median cost per call of is_working and next_start.

    python bench/engine.py            # full run
    python bench/engine.py --quick    # a few iterations, for a CI smoke test

Prints figures only; it asserts nothing about speed. "warm" is the steady state (the per-zone cache of localized
wall times is filled, as in a running app where many users share zones); "cold" is the first pass after
clearing that cache.

"weekly+holidays" must stay within the plain weekly target: a year of holidays costs next_start almost nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.domain.hours import Schedule, parse_days_off, parse_hours
from bot.domain.hours.timezones import wall_timestamp

TARGETS_US = {"weekly": 20.0, "weekly+holidays": 20.0, "30-day vacation": 200.0}


def _instants(count: int, *, start: datetime, span: timedelta) -> list[datetime]:
    """`count` instants spread over `span`, at odd minutes so they fall both inside and outside hours."""
    step = span / count
    return [start + step * i + timedelta(minutes=7 * i % 60) for i in range(count)]


def _per_call_us(function: Callable[[datetime], object], instants: list[datetime]) -> float:
    began = time.perf_counter_ns()
    for instant in instants:
        function(instant)
    return (time.perf_counter_ns() - began) / len(instants) / 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few iterations (CI smoke test)")
    args = parser.parse_args(argv)
    count, repeats = (50, 3) if args.quick else (2000, 15)

    weekly = parse_hours("mon-fri 9-12, 13-17:30")
    cases = {
        "weekly": (
            Schedule("Europe/Rome", weekly),
            _instants(count, start=datetime(2026, 1, 1, tzinfo=UTC), span=timedelta(days=365)),
        ),
        # A year of public holidays (Bavaria: 13 days) over the same year of instants: the calendar's years are
        # loaded on the first pass ("cold"), after which a holiday check is one range test and one set lookup.
        "weekly+holidays": (
            Schedule("Europe/Berlin", weekly, holidays="DE-BY"),
            _instants(count, start=datetime(2026, 1, 1, tzinfo=UTC), span=timedelta(days=365)),
        ),
        # Instants before and inside the vacation, so next_start has to skip all of it.
        "30-day vacation": (
            Schedule("Europe/Rome", weekly, (parse_days_off("2026-07-27..2026-08-25"),)),
            _instants(count, start=datetime(2026, 7, 24, 12, tzinfo=UTC), span=timedelta(days=30)),
        ),
    }
    print(f"{'schedule':<17} {'query':<11} {'warm µs/call':>13} {'cold µs/call':>13} {'target µs':>10}")
    for name, (schedule, instants) in cases.items():
        for query in ("is_working", "next_start"):
            function = getattr(schedule, query)
            wall_timestamp.cache_clear()
            cold = _per_call_us(function, instants)
            warm = statistics.median(_per_call_us(function, instants) for _ in range(repeats))
            print(f"{name:<17} {query:<11} {warm:>13.2f} {cold:>13.2f} {TARGETS_US[name]:>10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
