"""The event path without an HTTP server: the app's own CPU per event, one request at a time or from N threads.

    python bench/inprocess.py [--quick] [--events N] [--threads T] [--apps bare,offhours] [--database sqlite|postgres]

Signed after-hours DMs go straight into the WSGI callable that the server would call (no sockets, no waitress);
the auto-replies go to the fake Slack in its own process. With `--threads 0` the requests run one after another
in this thread and then the reply sender drains; with `--threads T` they come from T threads while the reply
sender runs beside them, as in the server. The difference between the two is what threads cost (GIL hand-overs,
context switches) rather than work: bench/RESULTS.md, third session. CPU is this process's (all its threads).
"""

from __future__ import annotations

import argparse
import glob
import io
import logging
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import CLIENT_ID, SIGNING_SECRET, FakeSlackProcess, analyze, emit, make_store, seed_connected
from bench.event_path import POSTGRES_URL, event_body, night_zone
from tests.support.slackhttp import signed_headers


def context_switches() -> int:
    total = 0
    for path in glob.glob("/proc/self/task/*/status"):
        try:
            with open(path) as f:
                total += sum(int(line.split()[1]) for line in f if "ctxt_switches" in line)
        except OSError:
            pass  # a thread that ended meanwhile
    return total


def environ_for(body: str) -> dict:
    raw = body.encode()
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/slack/events", "QUERY_STRING": "", "SERVER_NAME": "bench",
        "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(raw),
        "CONTENT_LENGTH": str(len(raw)), "CONTENT_TYPE": "application/json",
    }  # fmt: skip
    for key, value in signed_headers(body, secret=SIGNING_SECRET).items():
        environ["HTTP_" + key.upper().replace("-", "_")] = value
    return environ


def call(wsgi, body: str) -> None:
    statuses: list[str] = []
    b"".join(wsgi(environ_for(body), lambda status, headers, *_: statuses.append(status)))
    if not statuses[0].startswith("200"):
        raise RuntimeError(f"the app answered {statuses[0]}")


def run_one(app: str, *, events: int, threads: int, url: str, fake: FakeSlackProcess, people: int = 0) -> dict:
    from bench.server import bare_wsgi, recording_wsgi
    from bot.runtime import configured_store as _store
    from bot.runtime import load_environment as _load
    from bot.slack.app import create_app
    from bot.slack.web import create_wsgi
    from bot.workers.replies import ReplySender

    # The DMs go to events/4 people; `people` connected in all (the workspace's size: every token read must find a
    # person's rows without reading everyone's).
    recipients = [f"UR{i:06d}" for i in range(max(events // 4, 1))]
    everyone = recipients + [f"UO{i:06d}" for i in range(max(people - len(recipients), 0))]
    store = make_store(url)
    seed_connected(store, everyone, tz=night_zone(datetime.now(UTC)))
    analyze(store)
    store.close()
    fake.reset()
    settings, config = _load()
    offhours = create_app(config, _store(settings, config), settings=settings)
    sender = ReplySender(offhours.services)
    wsgi = {"offhours": lambda: create_wsgi(offhours), "bare": lambda: bare_wsgi().wsgi,
            "recording": lambda: recording_wsgi().wsgi}[app]()  # fmt: skip
    base = time.time()
    bodies = [
        event_body(n, sender=f"US{n:06d}", recipient=recipients[n % len(recipients)], ts=base + n / 1e6)
        for n in range(events)
    ]
    switches, cpu, wall = context_switches(), time.process_time(), time.monotonic()
    if threads == 0:
        for body in bodies:
            call(wsgi, body)
        if app == "offhours":
            sender.drain()
    else:
        if app == "offhours":
            sender.start()
        pending = iter(bodies)
        lock = threading.Lock()

        def work() -> None:
            while True:
                with lock:
                    body = next(pending, None)
                if body is None:
                    return
                call(wsgi, body)

        workers = [threading.Thread(target=work) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    posts = fake.wait_posts(events, timeout=60)["posts"]
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    switches = context_switches() - switches
    sender.stop()
    offhours.services.store.close()
    return {
        "app": app, "threads": threads, "events": events, "replies": posts, "cpu_ms_per_event": 1000 * cpu / events,
        "wall_s": wall, "context_switches_per_event": switches / events,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 events (CI smoke test)")
    parser.add_argument("--events", type=int)
    parser.add_argument("--threads", default="0,16", help="comma-separated request thread counts; 0: one by one")
    parser.add_argument("--apps", default="bare,offhours")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--people", type=int, default=0, help="people connected in all (default: the recipients)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    events = args.events or (50 if args.quick else 2000)
    logging.basicConfig(level=logging.WARNING)  # the app's info lines would cost as much as in production: off
    fake = FakeSlackProcess()
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="offhours-inprocess-") as tmp:
            for threads in [int(t) for t in args.threads.split(",")]:
                for run, app in enumerate(args.apps.split(",")):
                    # a file per run, so one invocation can measure an app twice (interleaved A/B)
                    url = POSTGRES_URL if args.database == "postgres" else f"sqlite:///{tmp}/{app}-{threads}-{run}.db"
                    os.environ.update(
                        SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_CLIENT_ID=CLIENT_ID, SLACK_CLIENT_SECRET="bench",
                        DATABASE_URL=url, SLACK_API_URL=fake.base_url,
                    )  # fmt: skip
                    result = run_one(app, events=events, threads=threads, url=url, fake=fake, people=args.people)
                    results.append({**result, "database": args.database, "people": max(args.people, events // 4)})
                    print(
                        f"{app:9} threads={threads:<3} cpu/event={result['cpu_ms_per_event']:.3f} ms "
                        f"switches/event={result['context_switches_per_event']:.1f} replies={result['replies']}",
                        flush=True,
                    )
    finally:
        fake.close()
    summary = {"benchmark": "inprocess", "results": results}
    emit(summary, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
