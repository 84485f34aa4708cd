"""Morning fan-out: N people whose recaps fall due in the same minute, delivered under Slack-like rate limits.

    python bench/fanout.py [--quick] [--people N] [--rate PER_MINUTE] [--database sqlite|postgres]

The fake Slack (its own process) allows 1 chat.postMessage per second per channel and `--rate` per minute for
the workspace (a sliding 60 s window), answering 429 + Retry-After beyond that. The floor is the last instant of
the schedule those same rules allow at best (`RateLimits.earliest`): with a sliding window the first `--rate` posts
pass at once, so 10,000 recaps at 6,000/min have a floor of 60 s, not 100 s. RecapSender.tick(now) runs in a
loop with `now` moving with real time until every recap reached the fake or the time limit passes. Duplicates
and losses are counted per channel at the fake. Prints a JSON summary on the last line.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
from slack_sdk import WebClient

from bench.common import CLIENT_ID, SIGNING_SECRET, TEAM, FakeSlackProcess, emit, make_store, seed_connected
from bench.common import analyze as bench_analyze
from bench.event_path import POSTGRES_URL
from bot.config import Config
from bot.services import build_services
from bot.settings import Settings
from bot.storage import db
from bot.workers.recaps import RecapSender
from tests.support.fakeslack import RateLimits


class MovingClock:
    """Real time, shifted so that it starts at `start`: the recaps are due the moment the run begins."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.began = time.monotonic()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.began)


def seed_messages(store, user_ids: list[str], *, due_at: datetime) -> None:
    """One after-hours DM waiting for each person, all due at `due_at` (bulk insert: the outbox's row shape)."""
    received = due_at - timedelta(hours=3)
    rows = [
        {
            "team_id": TEAM,
            "recipient_id": u,
            "channel_id": f"D{u}",
            "ts": f"{received.timestamp() + i / 1e6:.6f}",
            "thread_ts": f"{received.timestamp() + i / 1e6:.6f}",
            "sender_id": f"US{i:06d}",
            "received_at": received,
            "text": None,
            "due_at": due_at + timedelta(seconds=i % 60),
        }
        for i, u in enumerate(user_ids)
    ]
    with store.engine.begin() as conn:
        for chunk in range(0, len(rows), 2000):
            conn.execute(sa.insert(db.messages), rows[chunk : chunk + 2000])


def run(
    *,
    people: int,
    rate: float,
    database: str,
    workers: int,
    time_limit: float,
    workdir: Path,
    poll: float = 0.0,
    analyze: bool = True,
) -> dict:
    url = POSTGRES_URL if database == "postgres" else f"sqlite:///{workdir / 'fanout.db'}"
    store = make_store(url)
    user_ids = [f"UP{i:06d}" for i in range(people)]
    started_setup = time.monotonic()
    seed_connected(store, user_ids, tz="UTC")
    due = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)  # all due within the minute 09:00-09:01
    seed_messages(store, user_ids, due_at=due)
    if analyze:
        bench_analyze(store)
    setup_s = time.monotonic() - started_setup
    fake = FakeSlackProcess()
    try:
        fake.reset(per_channel_per_second=1.0, workspace_per_minute=rate)
        clock = MovingClock(due + timedelta(seconds=60))
        settings = Settings(
            signing_secret=SIGNING_SECRET, client_id=CLIENT_ID, client_secret="bench", slack_api_url=fake.base_url
        )
        services = build_services(
            Config(), store, settings=settings, client=WebClient(base_url=fake.base_url, timeout=10), clock=clock
        )
        sender = RecapSender(services, workers=workers) if workers else RecapSender(services)
        began = time.monotonic()
        ticks = 0
        tick_seconds: list[float] = []
        while time.monotonic() - began < time_limit:
            t0 = time.monotonic()
            sender.tick(clock())
            tick_seconds.append(time.monotonic() - t0)
            ticks += 1
            stats = fake.stats()
            if stats["posts"] >= people:
                break
            if poll:
                # As the scheduler runs it: an interval job (max_instances=1, coalesce) at began + k * poll.
                elapsed = time.monotonic() - began
                time.sleep(min(poll - elapsed % poll, max(0.0, time_limit - elapsed)))
            elif tick_seconds[-1] < 0.2:
                time.sleep(0.2 - tick_seconds[-1])  # a tight loop would only spin on empty claims
        delivered_s = (stats["last_post"] - began) if stats["posts"] >= people else None
        # One more tick after the end: anything still claimable must not be posted a second time.
        sender.tick(clock())
        final = fake.stats(counts=True)
        with store.engine.connect() as conn:
            states = dict(conn.execute(sa.select(db.recaps.c.state, sa.func.count()).group_by(db.recaps.c.state)).all())
            pending_messages = conn.execute(
                sa.select(sa.func.count()).select_from(db.messages).where(db.messages.c.state == "pending")
            ).scalar_one()
    finally:
        fake.close()
        store.close()
    counts = Counter(final["post_counts"])
    # The floor lets the first window's posts go at once and the rest as that window's posts age out (60 s later,
    # at the pace they were made): so what the ratio costs above 1.0 is mostly how long the first burst took.
    times = sorted(final.get("post_times") or [])
    burst = min(int(rate), people)
    first_window_s = times[burst - 1] - began if len(times) >= burst else None
    # The floor is what the fake's own limiter allows at best (its first burst passes at once), not N / rate.
    floor_s = RateLimits(per_channel_per_second=1.0, workspace_per_minute=rate).earliest(user_ids)[-1]
    return {
        "benchmark": "fanout",
        "database": database,
        "people": people,
        "workspace_per_minute": rate,
        "per_channel_per_second": 1.0,
        "workers": sender.workers,
        "poll_s": poll,
        "analyzed": analyze and store.is_postgres,
        "setup_s": setup_s,
        "floor_s": floor_s,
        "steady_rate_s": people / rate * 60,
        "delivered_s": delivered_s,
        # None when the whole fan-out fits in one burst: the limiter then sets no floor to compare with.
        "ratio_to_floor": (delivered_s / floor_s) if delivered_s and floor_s > 0 else None,
        "posts": final["posts"],
        "first_window_s": first_window_s,  # when the first `rate` posts (one window's worth) had all gone out
        "http_429": final["limited"],
        "duplicates": sum(n - 1 for n in counts.values() if n > 1),
        "losses": sum(1 for u in user_ids if counts.get(u, 0) == 0),
        "recap_states": states,
        "pending_messages": pending_messages,
        "ticks": ticks,
        "tick_max_s": max(tick_seconds),
        "other_calls": {k: v for k, v in final["methods"].items() if not k.startswith(("bench.", "chat.postMessage"))},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 recaps at 1,200/min (CI smoke test)")
    parser.add_argument("--people", type=int)
    parser.add_argument("--rate", type=float, help="workspace chat.postMessage per minute (default 6,000)")
    parser.add_argument("--workers", type=int, default=0, help="RecapSender workers (default: its own default)")
    parser.add_argument("--poll", type=float, default=0.0, help="tick every POLL s like the scheduler (default: loop)")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--no-analyze", action="store_true", help="PostgreSQL: no ANALYZE after seeding (as before)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    people = args.people or (50 if args.quick else 10_000)
    rate = args.rate or (1200.0 if args.quick else 6000.0)
    time_limit = 20 if args.quick else max(300.0, people / rate * 60 * 3)
    with tempfile.TemporaryDirectory(prefix="offhours-fanout-") as tmp:
        result = run(
            people=people,
            rate=rate,
            database=args.database,
            workers=args.workers,
            time_limit=time_limit,
            workdir=Path(tmp),
            poll=args.poll,
            analyze=not args.no_analyze,
        )
    delivered, ratio = result["delivered_s"], result["ratio_to_floor"]
    print(
        f"fanout {result['database']} people={people} rate={rate:.0f}/min floor={result['floor_s']:.1f}s "
        f"delivered={f'{delivered:.1f}s' if delivered else 'NOT ALL'} "
        f"ratio={f'{ratio:.2f}' if ratio else '-'} first_window={_seconds(result['first_window_s'])} "
        f"429s={result['http_429']} "
        f"duplicates={result['duplicates']} losses={result['losses']} states={result['recap_states']}",
        flush=True,
    )
    emit(result, args.json)
    return 0


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


if __name__ == "__main__":
    sys.exit(main())
