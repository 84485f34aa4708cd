"""What one DM costs the database, statement by statement: the census pg_stat_statements would give, in-process.

    python bench/dm_statements.py [--quick] [--events N]

On a PostgreSQL database of its own (bench/scale_out.py's helpers), the app `python -m bot web` builds gets N signed
after-hours DMs from distinct senders straight into its WSGI callable, one after another, then its reply sender
drains (`ReplySender.drain`: claims in batches, posts to the fake Slack, settles). SQLAlchemy's events on the one
engine count every statement (by verb and first table) and every transaction (commit or rollback). One at a time
is not how the server batches under load (there the sender wakes per DM and claims what is due then): the census
says which statements a DM needs; bench/scale_out.py's pg_stat_database figures say how many commits the real
processes made per DM. Prints a JSON summary on the last line.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa

from bench.common import CLIENT_ID, SIGNING_SECRET, FakeSlackProcess, emit, make_store, seed_connected
from bench.event_path import event_body, night_zone
from bench.inprocess import call
from bench.pg_stats import create_database, drop_database, settle_stats, transactions

_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)", re.IGNORECASE)


def kind(statement: str) -> str:
    """'SELECT slack_installations', 'INSERT auto_replies', ...: the verb and the first table named."""
    verb = statement.lstrip().split(None, 1)[0].upper()
    table = _TABLE.search(statement)
    return f"{verb} {table.group(1) if table else '-'}"


def census(url: str, *, events: int, fake: FakeSlackProcess) -> dict:
    from bot.runtime import configured_store, load_environment
    from bot.slack.app import create_app
    from bot.slack.web import create_wsgi
    from bot.workers.replies import ReplySender

    recipients = [f"UR{i:06d}" for i in range(max(events // 4, 1))]
    store = make_store(url)
    seed_connected(store, recipients, tz=night_zone(datetime.now(UTC)))
    store.close()
    fake.reset()
    os.environ.update(SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_CLIENT_ID=CLIENT_ID, SLACK_CLIENT_SECRET="bench",
                      DATABASE_URL=url, SLACK_API_URL=fake.base_url)  # fmt: skip
    settings, config = load_environment()
    app = create_app(config, configured_store(settings, config), settings=settings)
    engine = app.services.store.engine
    wsgi = create_wsgi(app)
    sender = ReplySender(app.services)
    base = datetime.now(UTC).timestamp()
    bodies = [event_body(n, sender=f"US{n:06d}", recipient=recipients[n % len(recipients)], ts=base + n / 1e6)
              for n in range(events)]  # fmt: skip
    call(wsgi, bodies[0])  # warm-up: caches filled once per process are not per DM
    sender.drain()
    listening, ack, reply = Counter[str](), Counter[str](), Counter[str]()

    def on_execute(_conn, _cursor, statement, _params, _context, _many) -> None:
        listening[kind(statement)] += 1

    def on_commit(_conn) -> None:
        listening["(commit)"] += 1

    def on_rollback(_conn) -> None:
        listening["(rollback)"] += 1

    def on_checkout(*_args) -> None:
        listening["(checkout)"] += 1  # pool_pre_ping: each checkout pings the server first (";" in autocommit)

    hooks = (("before_cursor_execute", on_execute), ("commit", on_commit), ("rollback", on_rollback),
             ("checkout", on_checkout))  # fmt: skip
    for name, fn in hooks:
        sa.event.listen(engine, name, fn)
    before = transactions(url)
    try:
        for body in bodies[1:]:
            call(wsgi, body)
        ack.update(listening)
        listening.clear()
        sender.drain()
        reply.update(listening)
    finally:
        for name, fn in hooks:
            sa.event.remove(engine, name, fn)
        sender.stop()
        app.services.store.close()
    server = settle_stats(url, before)
    n = events - 1
    posts = fake.stats()["posts"]
    return {
        "dms": n,
        "posts": posts,
        "before_the_ack": {k: round(v / n, 3) for k, v in sorted(ack.items())},
        "reply_sender": {k: round(v / n, 3) for k, v in sorted(reply.items())},
        "statements_per_dm": sum(v for k, v in (ack + reply).items() if not k.startswith("(")) / n,
        "transactions_per_dm": sum(v for k, v in (ack + reply).items() if k in ("(commit)", "(rollback)")) / n,
        "checkouts_per_dm": (ack + reply)["(checkout)"] / n,
        # What the server counted meanwhile (pg_stat_database): reads in autocommit and pings are transactions too
        "server_commits_per_dm": server["commits"] / n,
        "server_rollbacks_per_dm": server["rollbacks"] / n,
    }


def measure(*, events: int) -> dict:
    fake = FakeSlackProcess()
    url = create_database()
    try:
        return census(url, events=events, fake=fake)
    finally:
        drop_database(url)
        fake.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="21 DMs (CI smoke test)")
    parser.add_argument("--events", type=int)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    result = measure(events=args.events or (21 if args.quick else 201))
    for part in ("before_the_ack", "reply_sender"):
        print(part + ": " + ", ".join(f"{k} {v:g}" for k, v in result[part].items()), flush=True)
    emit({"benchmark": "dm_statements", **result}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
