"""Memory: resident set size with N connected people and their schedules.

    python bench/memory.py [--quick] [--people N]

Offhours keeps no per-person state in memory between requests (preferences are read from the database per
event), so the figure that matters is what holding everyone's parsed Preferences would cost: RSS after
create_app, then after loading all N through PeopleService.get into a list (schedules parsed, as the engine uses
them). Also one schedule query per person, to touch the engine's per-zone caches. Prints JSON on the last line.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import CLIENT_ID, SIGNING_SECRET, TEAM, emit, make_store, seed_connected, status_kib

ZONES = ("America/New_York", "Europe/Berlin", "Asia/Tokyo", "America/Los_Angeles", "Europe/London", "Asia/Kolkata")


def rss_mib() -> float:
    gc.collect()
    return status_kib("self", "VmRSS") / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 people (CI smoke test)")
    parser.add_argument("--people", type=int)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    people = args.people or (200 if args.quick else 10_000)

    import sqlalchemy as sa
    from slack_sdk import WebClient

    from bot.config import Config
    from bot.settings import Settings
    from bot.slack.app import create_app
    from bot.storage import db

    readings: dict[str, float] = {"python + imports": rss_mib()}
    with tempfile.TemporaryDirectory(prefix="offhours-memory-") as tmp:
        store = make_store(f"sqlite:///{Path(tmp) / 'memory.db'}")
        settings = Settings(
            signing_secret=SIGNING_SECRET,
            client_id=CLIENT_ID,
            client_secret="bench",
            slack_api_url="http://127.0.0.1:9/api/",
        )
        app = create_app(Config(), store, settings=settings, client=WebClient(base_url=settings.slack_api_url))
        readings["create_app"] = rss_mib()
        user_ids = [f"UM{i:06d}" for i in range(people)]
        seed_connected(store, user_ids, tz=None)
        # Give people different zones and some their own hours and days off, as a real workspace has.
        with store.engine.begin() as conn:
            for i, user_id in enumerate(user_ids):
                values = {"tz": ZONES[i % len(ZONES)]}
                if i % 3 == 0:
                    values["hours"] = "Mon–Thu 08:00–12:00, 13:00–16:30; Fri 08:00–12:00"
                if i % 10 == 0:
                    values["days_off"] = "2026-07-27..2026-08-07"
                conn.execute(
                    db.people.update()
                    .where(db.people.c.team_id == TEAM, db.people.c.user_id == user_id)
                    .values(**values)
                )
        readings["after seeding the database"] = rss_mib()
        started = time.perf_counter()
        held = [app.services.people.get(TEAM, user_id) for user_id in user_ids]
        load_s = time.perf_counter() - started
        readings[f"holding {people} Preferences"] = rss_mib()
        now = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)
        for prefs in held:
            prefs.schedule.next_start(now)
        readings["after one next_start each"] = rss_mib()
        with store.engine.connect() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(db.people)).scalar_one()
        store.close()
    base = readings["after seeding the database"]
    result = {
        "benchmark": "memory",
        "people": count,
        "rss_mib": readings,
        "preferences_mib": readings[f"holding {people} Preferences"] - base,
        "per_person_kib": (readings["after one next_start each"] - base) * 1024 / max(count, 1),
        "load_all_s": load_s,
        "peak_rss_mib": status_kib("self", "VmHWM") / 1024,
    }
    for name, value in readings.items():
        print(f"{name:<32} {value:8.1f} MiB")
    print(
        f"per person (Preferences + engine caches): {result['per_person_kib']:.2f} KiB; "
        f"loading all took {load_s:.2f} s",
        flush=True,
    )
    emit(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
