"""Channel path (issue 20): channel messages that concern no one, into the production server, against a bare Bolt
app that acks and does nothing, served the same way, in the same run; and the database statements per such event.

    python bench/channel_path.py [--quick] [--events N] [--watched N] [--rounds R]

With the mention scopes Slack sends every channel message of a connected person's channels. For each round, for
each app (`noop`: bare Bolt whose one `message` listener does nothing, on waitress with the runtime's threads and
limits; `offhours`: what `python -m bot web` builds, bench/server.py): a fresh database with `--watched` people
connected with the mention scopes, mentions on and off hours (so the in-memory view is not empty), the server in a
subprocess, N signed `message.channels` events at concurrency 16 that concern none of them (plain text, mentions
of people nobody watches, @here, a code span naming a watched person, group DMs of others). Rounds alternate the
apps, so a loaded machine weighs on both alike. Then, in this process, the same events straight into Offhours'
WSGI callable with SQLAlchemy's `before_cursor_execute` counting every statement, and the fake Slack counting
every Web API call. Prints a JSON summary on the last line.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    CLIENT_ID,
    PYTHON,
    ROOT,
    SIGNING_SECRET,
    TEAM,
    FakeSlackProcess,
    cpu_seconds,
    emit,
    make_store,
    percentile,
    process_tree,
    seed_connected,
)
from bench.event_path import CONCURRENCY, free_port, night_zone, send_load, wait_ready

MENTION_SCOPES = "im:history,chat:write,channels:history,groups:history,mpim:history"


def seed_watched(url: str, watched: list[str]) -> None:
    """Connected with the mention scopes, mentions on, off hours now."""
    import sqlalchemy as sa

    from bot.storage import schema

    store = make_store(url)
    seed_connected(store, watched, tz=night_zone(datetime.now(UTC)))
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        conn.execute(schema.installations.update().values(user_scopes=MENTION_SCOPES))
        rows = [{"team_id": TEAM, "user_id": u, "enabled": True, "updated_at": now} for u in watched]
        conn.execute(sa.insert(schema.mention_settings), rows)
    store.close()


def channel_body(n: int, *, watched: list[str], ts: float) -> str:
    """A channel message that concerns no one watched; the mix: mostly plain, some mentions of others."""
    import json

    kind = n % 8
    channel_type, text = "channel", f"status update {n}: the build is green"
    if kind == 1:
        text = f"<@UO{n:06d}> can you review?"  # someone nobody watches
    elif kind == 2:
        text = "<!here> standup in 5"
    elif kind == 3:
        text = f"the syntax is `<@{watched[n % len(watched)]}>`"  # a watched person, in code: no mention
    elif kind == 4:
        channel_type, text = "group", f"private channel {n}"
    elif kind == 5:
        channel_type, text = "mpim", f"group DM of others {n}"  # seen through an unwatched member's token
    event = {"type": "message", "channel": f"C{n % 97:05d}", "channel_type": channel_type, "user": f"US{n:06d}",
             "text": text, "ts": f"{ts:.6f}", "event_ts": f"{ts:.6f}"}  # fmt: skip
    return json.dumps({
        "token": "legacy", "team_id": TEAM, "api_app_id": "A1", "type": "event_callback", "event_id": f"Ev{n:08d}",
        "event_time": int(ts), "event": event,
        "authorizations": [{"team_id": TEAM, "user_id": f"UA{n % 13:04d}", "is_bot": False, "enterprise_id": None}],
        "is_ext_shared_channel": False,
    })  # fmt: skip


def environment(url: str, fake: FakeSlackProcess) -> dict[str, str]:
    return {
        **os.environ,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_CLIENT_ID": CLIENT_ID,
        "SLACK_CLIENT_SECRET": "bench-secret",
        "DATABASE_URL": url,
        "SLACK_API_URL": fake.base_url,
        "PYTHONPATH": str(ROOT),
    }


def run_one(*, app: str, events: int, watched: list[str], fake: FakeSlackProcess, workdir: Path, timeout: float,
            round_no: int) -> dict:  # fmt: skip
    url = f"sqlite:///{workdir / f'{app}-{round_no}.db'}"
    seed_watched(url, watched)
    fake.reset()
    port = free_port()
    log = open(workdir / f"{app}-{round_no}.log", "w")  # noqa: SIM115 - closed below
    command = [PYTHON, str(ROOT / "bench" / "server.py"), "--app", app, "--server", "waitress", "--port", str(port)]
    proc = subprocess.Popen(command, cwd=ROOT, env=environment(url, fake), stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_ready(proc, port)
        time.sleep(0.1)
        base = time.time()
        bodies = [channel_body(n, watched=watched, ts=base + n / 1e6) for n in range(events)]
        # One warm-up request (Bolt's authorize cache, the view's first read), not measured.
        send_load(port, [channel_body(events, watched=watched, ts=base)], concurrency=1, deadline=time.monotonic() + 10)
        pids = process_tree(proc.pid)
        cpu_before = cpu_seconds(pids)
        started = time.monotonic()
        latencies, statuses = send_load(port, bodies, concurrency=CONCURRENCY, deadline=started + timeout)
        acked = time.monotonic()
        cpu = cpu_seconds(process_tree(proc.pid)) - cpu_before
        calls = fake.stats()["methods"]
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
    return {
        "app": app,
        "round": round_no,
        "events": events,
        "sent": len(latencies),
        "non_200": sum(count for code, count in statuses.items() if code != 200),
        "acks_per_s": len(latencies) / (acked - started),
        "ack_p50_ms": percentile(latencies, 50) * 1000,
        "ack_p99_ms": percentile(latencies, 99) * 1000,
        "cpu_s_per_1000": cpu / max(len(latencies), 1) * 1000,
        "web_api_calls": calls,
    }


def count_statements(*, events: int, watched: list[str], fake: FakeSlackProcess, workdir: Path) -> dict:
    """The same events into Offhours' WSGI callable in this process, every SQL statement and Web API call counted."""
    import sqlalchemy as sa
    from slack_sdk import WebClient

    from bench.inprocess import call
    from bot.config import Config
    from bot.settings import Settings
    from bot.slack.app import create_app
    from bot.slack.web import create_wsgi
    from bot.storage.store import Store

    url = f"sqlite:///{workdir / 'statements.db'}"
    seed_watched(url, watched)
    fake.reset()
    store = Store(url, client_id=CLIENT_ID)
    settings = Settings(signing_secret=SIGNING_SECRET, client_id=CLIENT_ID, client_secret="bench-secret",
                        slack_api_url=fake.base_url)  # fmt: skip
    app = create_app(Config(), store, settings=settings, client=WebClient(base_url=fake.base_url, timeout=10))
    wsgi = create_wsgi(app)
    base = time.time()
    call(wsgi, channel_body(events, watched=watched, ts=base))  # warm-up: the view's first read, Bolt's bot cache
    statements: list[str] = []

    def on_execute(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    bodies = [channel_body(n, watched=watched, ts=base + n / 1e6) for n in range(events)]
    sa.event.listen(store.engine, "before_cursor_execute", on_execute)
    try:
        for body in bodies:
            call(wsgi, body)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", on_execute)
    # CPU of this process per event, no sockets: the app's own work. Alternated, best of 3 (the machine is shared).
    os.environ.update({"SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": fake.base_url})
    from bench.server import noop_wsgi

    apps = {"noop": noop_wsgi().wsgi, "offhours": wsgi}
    cpu_ms: dict[str, list[float]] = {"noop": [], "offhours": []}
    for _ in range(3):
        for name, app_wsgi in apps.items():
            started = time.process_time()
            for body in bodies:
                call(app_wsgi, body)
            cpu_ms[name].append((time.process_time() - started) / len(bodies) * 1000)
    store.close()
    best = {name: min(values) for name, values in cpu_ms.items()}
    return {
        "cpu_ms_per_event": best,
        "cpu_ratio_noop_over_offhours": best["noop"] / best["offhours"],
        "events": events,
        "statements": len(statements),
        "statements_per_event": len(statements) / events,
        "web_api_calls": fake.stats()["methods"],
        "watched_in_view": sum(len(people) for people in app.services.mentions.view().values()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 events, one round (CI smoke test)")
    parser.add_argument("--events", type=int)
    parser.add_argument("--watched", type=int, default=None, help="people connected with mentions on (default 500)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds of both apps (default 3)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    events = args.events or (50 if args.quick else 3000)
    watched = [f"UW{i:06d}" for i in range(args.watched or (20 if args.quick else 500))]
    rounds = args.rounds or (1 if args.quick else 3)
    timeout = 30 if args.quick else 300
    results = []
    fake = FakeSlackProcess()
    try:
        with tempfile.TemporaryDirectory(prefix="offhours-bench-") as tmp:
            for round_no in range(rounds):
                order = ("noop", "offhours") if round_no % 2 == 0 else ("offhours", "noop")
                for app in order:
                    result = run_one(app=app, events=events, watched=watched, fake=fake, workdir=Path(tmp),
                                     timeout=timeout, round_no=round_no)  # fmt: skip
                    results.append(result)
                    print(
                        f"round {round_no} {app:<9} acks/s={result['acks_per_s']:7.1f} "
                        f"p50={result['ack_p50_ms']:6.1f}ms p99={result['ack_p99_ms']:6.1f}ms "
                        f"cpu/1000={result['cpu_s_per_1000']:.2f}s non200={result['non_200']} "
                        f"calls={result['web_api_calls']}",
                        flush=True,
                    )
            counted = count_statements(events=min(events, 1000), watched=watched, fake=fake, workdir=Path(tmp))
    finally:
        fake.close()
    by_round = {}
    for result in results:
        by_round.setdefault(result["round"], {})[result["app"]] = result["acks_per_s"]
    ratios = [r["offhours"] / r["noop"] for r in by_round.values() if r.get("noop")]
    summary = {
        "benchmark": "channel_path",
        "concurrency": CONCURRENCY,
        "watched": len(watched),
        "results": results,
        "ratios": ratios,
        "ratio_median": statistics.median(ratios) if ratios else None,
        "statements": counted,
    }
    cpu = counted["cpu_ms_per_event"]
    print(f"offhours/noop acks/s per round: {', '.join(f'{r:.2f}' for r in ratios)}; statements/event="
          f"{counted['statements_per_event']:.3f}; Web API calls={counted['web_api_calls']}; in-process CPU/event "
          f"noop={cpu['noop']:.3f}ms offhours={cpu['offhours']:.3f}ms", flush=True)  # fmt: skip
    emit(summary, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
