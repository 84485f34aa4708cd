"""The server under test, in its own process: Offhours as `python -m bot web` runs it, a bare Bolt app, or bare Bolt
that also records each DM before the ack (a reference); waitress or gunicorn.

    python bench/server.py --app offhours|bare|recording --server waitress|gunicorn --port N

Environment as in production: SLACK_SIGNING_SECRET, SLACK_CLIENT_ID, SLACK_CLIENT_SECRET, DATABASE_URL, SLACK_API_URL.
Bound to 127.0.0.1 (the runtime binds OFFHOURS_HOST, 0.0.0.0 by default). Stops on SIGTERM.

Offhours under waitress is the runtime's own server (`bot.slack.web.create_server`: 16 threads and its connection
and body limits); the bare apps get a plain `waitress.create_server` with the same thread count.

Experiments (not production; RESULTS.md records what they measured), chosen by environment variables:
    BENCH_THREADS=N                       waitress threads (default 16, as the runtime's server)
    BENCH_REPLY_WORKERS=N                 the reply sender's posting threads (default 8, as the runtime's)
    BENCH_EXPERIMENT=no-reply-sender      acks only: no auto-reply is posted
    BENCH_EXPERIMENT=separate-sender      the reply sender in a process of its own, polling every 0.1 s
    BENCH_EXPERIMENT=plain-waitress       Offhours on a plain waitress.create_server (no limits), as the bare apps
    BENCH_SWITCH_INTERVAL=S               sys.setswitchinterval(S) (CPython's default 0.005): how long a thread back
                                          from the database waits for the GIL
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.__main__ import configure_logging

THREADS = int(os.environ.get("BENCH_THREADS", "16"))  # the runtime's waitress threads; gunicorn: 1 worker x THREADS
REPLY_WORKERS = int(os.environ.get("BENCH_REPLY_WORKERS", "8"))  # the runtime's ReplySender default
EXPERIMENT = os.environ.get("BENCH_EXPERIMENT")

MakeServer = Callable[[int], Any]  # port -> a bound waitress server


@dataclass
class Built:
    wsgi: Callable
    stop: Callable[[], None]
    make_server: MakeServer  # waitress only; gunicorn serves `wsgi`


def _plain_waitress(wsgi: Callable) -> MakeServer:
    import waitress

    return lambda port: waitress.create_server(wsgi, host="127.0.0.1", port=port, threads=THREADS)


def offhours_wsgi() -> Built:
    """What the runtime's `web` parts build: the app from the environment, its HTTP server, the reply sender and the
    Home refresher (Socket Mode is off: no SLACK_APP_TOKEN)."""
    from bot.runtime import configured_store, load_environment
    from bot.slack.app import create_app
    from bot.slack.web import create_server, create_wsgi
    from bot.workers.replies import ReplySender

    settings, config = load_environment()
    store = configured_store(settings, config)
    app = create_app(config, store, settings=settings)
    wsgi = create_wsgi(app)
    if EXPERIMENT == "plain-waitress":
        make_server = _plain_waitress(wsgi)
    else:
        make_server = lambda port: create_server(app, host="127.0.0.1", port=port, threads=THREADS)  # noqa: E731
    if EXPERIMENT == "separate-sender":
        import subprocess

        child = subprocess.Popen([sys.executable, "-c", "from bench.server import separate_sender; separate_sender()"])
        return Built(wsgi, child.terminate, make_server)
    sender = ReplySender(app.services, workers=REPLY_WORKERS)
    home_refresh = app.services.home_refresh
    if EXPERIMENT != "no-reply-sender":
        sender.start()
    home_refresh.start()

    def stop() -> None:
        sender.stop()
        home_refresh.stop()
        store.close()

    return Built(wsgi, stop, make_server)


def separate_sender():
    """EXPERIMENT: the reply sender in a process of its own, polling every 0.1 s."""
    from bot.runtime import configured_store, load_environment
    from bot.slack.app import create_app
    from bot.workers.replies import ReplySender

    settings, config = load_environment()
    app = create_app(config, configured_store(settings, config), settings=settings)
    sender = ReplySender(app.services, poll_seconds=0.1, workers=REPLY_WORKERS)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # before the threads start: they inherit the mask
    sender.start()
    signal.sigwait({signal.SIGTERM})
    sender.stop()


def _bare_authorize(enterprise_id, team_id, user_id, **_kwargs):
    from slack_bolt.authorization import AuthorizeResult

    # No auth.test: like Offhours' StoreAuthorize, the token is known locally.
    return AuthorizeResult(
        enterprise_id=enterprise_id,
        team_id=team_id,
        bot_token=f"xoxb-{team_id}",
        bot_user_id="UBOT",
        bot_id="B1",
        user_id=user_id,
        user_token=f"xoxp-{team_id}-{user_id}",
    )


def _bare_client():
    from slack_sdk import WebClient

    return WebClient(base_url=os.environ["SLACK_API_URL"], timeout=10)


def _bare_ignores(event: dict) -> bool:
    return event.get("channel_type") != "im" or bool(event.get("bot_id") or event.get("subtype"))


def _bare_post(client, context, event: dict) -> None:
    client.chat_postMessage(
        token=context.user_token,
        channel=event["channel"],
        thread_ts=event["ts"],
        text=":crescent_moon: Auto-reply: I'm offline.",
    )


def bare_wsgi() -> Built:
    """The ceiling: a Bolt app with one `message` listener that posts one threaded reply per DM, acking first."""
    from slack_bolt import App
    from slack_bolt.adapter.wsgi import SlackRequestHandler

    app = App(
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        client=_bare_client(),
        authorize=_bare_authorize,
        logger=logging.getLogger("bot.bolt"),
    )

    @app.event("message")
    def on_message(event: dict, context, client) -> None:
        if not _bare_ignores(event):
            _bare_post(client, context, event)

    wsgi = SlackRequestHandler(app, path="/slack/events")
    return Built(wsgi, lambda: None, _plain_waitress(wsgi))


def recording_wsgi() -> Built:
    """A reference between the two (not the goal's ceiling): bare Bolt that also records each DM durably before
    the ack, as Offhours must for "nothing is lost" and for Slack's redeliveries: one INSERT ... ON CONFLICT DO
    NOTHING in a transaction of its own (bot/storage/db.py's engine and write queue), then the ack, then one threaded
    `chat.postMessage` from a lazy listener. No rules, settings, outbox or retries."""
    import sqlalchemy as sa
    from slack_bolt import App
    from slack_bolt.adapter.wsgi import SlackRequestHandler

    from bot.storage import db

    engine = db.make_engine(os.environ["DATABASE_URL"])
    metadata = sa.MetaData()
    table = sa.Table(
        "bench_recorded_dms",
        metadata,
        sa.Column("team_id", db.ID, primary_key=True),
        sa.Column("channel_id", db.ID, primary_key=True),
        sa.Column("ts", sa.String(32), primary_key=True),
        sa.Column("sender_id", db.ID, nullable=False),
    )
    metadata.drop_all(engine)
    metadata.create_all(engine)
    insert = db.insert_ignore(engine, table, ["team_id", "channel_id", "ts"])
    app = App(
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        client=_bare_client(),
        authorize=_bare_authorize,
        logger=logging.getLogger("bot.bolt"),
        process_before_response=True,
    )

    def record(event: dict, body: dict) -> None:
        if _bare_ignores(event):
            return
        with db.writing(engine) as conn:
            row = {"team_id": body["team_id"], "channel_id": event["channel"], "ts": event["ts"]}
            conn.execute(insert, {**row, "sender_id": event["user"]})

    def post(event: dict, context, client) -> None:
        if not _bare_ignores(event):
            _bare_post(client, context, event)

    app.event("message")(ack=record, lazy=[post])
    wsgi = SlackRequestHandler(app, path="/slack/events")
    return Built(wsgi, engine.dispose, _plain_waitress(wsgi))


def noop_wsgi() -> Built:
    """bench/channel_path.py's ceiling: a Bolt app whose one `message` listener does nothing (it acks, before the
    response as Offhours does), served like Offhours: waitress with the runtime's threads and limits."""
    import waitress
    from slack_bolt import App
    from slack_bolt.adapter.wsgi import SlackRequestHandler

    from bot.slack.web import SERVER_LIMITS

    app = App(
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        client=_bare_client(),
        authorize=_bare_authorize,
        logger=logging.getLogger("bot.bolt"),
        process_before_response=True,
    )

    @app.event("message")
    def on_message(event: dict) -> None:
        return None

    wsgi = SlackRequestHandler(app, path="/slack/events")
    limits = {**SERVER_LIMITS, "threads": THREADS}
    return Built(wsgi, lambda: None, lambda port: waitress.create_server(wsgi, host="127.0.0.1", port=port, **limits))


def build(kind: str) -> Built:
    return {"offhours": offhours_wsgi, "bare": bare_wsgi, "recording": recording_wsgi, "noop": noop_wsgi}[kind]()


def run_waitress(kind: str, port: int) -> None:
    built = build(kind)
    server = built.make_server(port)
    signal.signal(signal.SIGTERM, lambda *_: server.close())
    print("ready", flush=True)
    try:
        server.run()
    except (KeyboardInterrupt, OSError):
        pass
    finally:
        built.stop()


def run_gunicorn(kind: str, port: int) -> None:
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in {
                "bind": f"127.0.0.1:{port}",
                "worker_class": "gthread",
                "workers": 1,
                "threads": THREADS,
                "loglevel": "warning",
                "accesslog": None,
            }.items():
                self.cfg.set(key, value)

        def load(self):
            # Runs in the worker (no preload), so the reply sender's thread lives beside the request threads.
            return build(kind).wsgi

    print("ready", flush=True)
    Server().run()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", choices=["offhours", "bare", "recording", "noop"], required=True)
    parser.add_argument("--server", choices=["waitress", "gunicorn"], default="waitress")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    configure_logging()
    if "BENCH_SWITCH_INTERVAL" in os.environ:
        sys.setswitchinterval(float(os.environ["BENCH_SWITCH_INTERVAL"]))
    if args.server == "waitress":
        run_waitress(args.app, args.port)
    else:
        run_gunicorn(args.app, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
