"""The HTTP side: Bolt's WSGI handler for Slack's paths, plus /healthz, /readyz and /metrics, and the waitress server
with its limits.

/healthz is liveness (the process answers and reaches its database: cheap), /readyz readiness (the database
answers, its schema is at the newest migration, and a process running the scheduler has ticked recently),
/metrics Prometheus' scrape (behind OFFHOURS_METRICS_TOKEN when set). The scheduler process serves the last three
on METRICS_PORT (`serve_ops`).

waitress was picked by measurement over gunicorn's gthread worker (bench/RESULTS.md): the same acks/s and ack
p99 on the event path, 25 MiB less memory, and it runs in-process beside the reply sender and the scheduler
(gunicorn forks workers). gunicorn got the auto-replies out 1.3-1.5x sooner in two runs, cause not yet found:
worth re-measuring once the reply sender is lighter.
"""

from __future__ import annotations

import hmac
import io
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import waitress
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.request.internals import parse_body
from slack_sdk.signature import SignatureVerifier
from waitress.server import BaseWSGIServer
from waitress.task import ThreadedTaskDispatcher

from bot.services import Services
from bot.slack import payloads
from bot.slack.app import OffhoursApp
from bot.slack.listeners.channel_messages import ChannelMessages, concerns_no_one
from bot.slack.listeners.messages import MessageHandler, handle_dm, is_dm_event
from bot.slack.paths import EVENTS_PATH
from bot.storage import ops
from bot.storage.store import Store

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000  # Slack's payloads are far smaller; refuse anything bigger before reading it

# What anyone who can reach the port must not be able to take: waitress's defaults stop accepting at 100 open
# connections and keep an idle one for 120 s, so a hundred idle sockets stalled every request, /healthz included.
SERVER_LIMITS: dict[str, Any] = {
    "threads": 16,
    # Connections are cheap for the event loop; a thousand (with poll(), which has no 1,024-descriptor ceiling)
    # takes a thousand sockets held open, and each is closed after CHANNEL_TIMEOUT s without a byte.
    "connection_limit": 1000,
    "asyncore_use_poll": True,
    "channel_timeout": 15,  # Slack sends its request at once; a keep-alive idle this long is reopened, cheaply
    "cleanup_interval": 5,  # how often idle connections are looked for: an idle one lives at most 20 s
    # waitress answers 413 from the headers alone when Content-Length >= this, before reading a byte of the body
    # (its default, 1 GiB, would be read and spilled to temporary files first). One more than MAX_BODY_BYTES, so
    # that both draw the line at the same size; chunked bodies stop at the same count.
    "max_request_body_size": MAX_BODY_BYTES + 1,
    "max_request_header_size": 64 * 1024,  # Slack's headers are a few hundred bytes
    # inbuf_overflow/outbuf_overflow keep their defaults (512 KiB, 1 MiB in memory, then a temporary file): with
    # the body limit above, a connection buffers at most MAX_BODY_BYTES, whoever sends it.
}


def create_server(app: OffhoursApp, *, host: str, port: int, **overrides: Any) -> BaseWSGIServer:
    """The waitress server for `app`, bound and listening (a host or port it cannot use raises here)."""
    limits = {**SERVER_LIMITS, **overrides}
    # waitress starts its request threads before it binds, and leaves them running when binding fails: built
    # here, they are stopped again, with whatever the failed server had registered in its map.
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(limits.pop("threads"))
    channels: dict[int, Any] = {}
    try:
        return waitress.create_server(
            create_wsgi(app), map=channels, _dispatcher=dispatcher, host=host, port=port, **limits
        )
    except BaseException:
        for channel in list(channels.values()):
            channel.close()
        dispatcher.shutdown()
        raise


def create_wsgi(app: OffhoursApp) -> Callable:
    """A WSGI callable serving /slack/events, /slack/install, /slack/oauth_redirect, /healthz, /readyz, /metrics."""
    slack = SlackRequestHandler(app.bolt, path=EVENTS_PATH)
    services = app.services
    verifier = SignatureVerifier(services.settings.signing_secret)
    probes = create_ops_wsgi(services)
    metrics = services.metrics
    channels = ChannelMessages(services)
    dms = DirectMessages(services)
    hint = "" if services.settings.base_url else " (set OFFHOURS_BASE_URL to the public URL this app is reached at)"
    log.info("install: open %s to install Offhours or connect your DMs%s", services.install_url(), hint)

    def wsgi(environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in OPS_PATHS and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            return probes(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            return _plain(start_response, "413 Payload Too Large" if length > 0 else "400 Bad Request", "")
        if path == EVENTS_PATH and environ.get("REQUEST_METHOD") == "POST":
            started = time.perf_counter()
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)  # Bolt reads the body again
            refusal, payload = _refusal(verifier, environ, body)
            if refusal is not None:
                return _plain(start_response, refusal, "")
            if concerns_no_one(channels, payload):
                # A channel message that concerns no one (issue 20's fast path): acked without Bolt.
                metrics.ack(time.perf_counter() - started)
                return _plain(start_response, "200 OK", "")
            if is_dm_event(payload) and dms.installed(payload):
                try:
                    return _plain(start_response, dms.handle(payload, environ, started=started), "")
                finally:
                    metrics.ack(time.perf_counter() - started)
            try:
                return slack(environ, start_response)  # Bolt answers after the listener ran (process_before_response)
            finally:
                metrics.ack(time.perf_counter() - started)
        return slack(environ, start_response)

    return wsgi


class DirectMessages:
    """1:1 DMs straight from the HTTP server to the message listener's handler, without Bolt's request, context
    and middleware (bench/RESULTS.md, eighth session: that was a fifth of the event path's CPU). The signature is
    checked and the body parsed before this; a workspace Offhours is not installed in goes to Bolt, which answers
    as for any other event. Socket Mode still goes through Bolt's listener, to the same `handle_dm`."""

    def __init__(self, services: Services) -> None:
        self.store = services.store
        self.handler = MessageHandler(services)

    def installed(self, payload: dict) -> bool:
        team, enterprise = payloads.ident(payload, "team_id"), payloads.ident(payload, "enterprise_id")
        return bool(team) and self.store.bot(team, enterprise_id=enterprise or None) is not None

    def handle(self, payload: dict, environ: dict, *, started: float) -> str:
        """The HTTP status line: 200 once the DM is handled; 500 (Slack redelivers) on an unexpected failure."""
        retry = environ.get("HTTP_X_SLACK_RETRY_NUM") or "0"
        if self._from_this_app(payload):
            return "200 OK"  # as Bolt's IgnoringSelfEvents: the app's own posts in its DMs, their edits, deletions
        try:
            handle_dm(self.handler, payload["event"], payload, retry=retry, started=started)
        except Exception as e:
            # As Bolt's error handler (bot/slack/app.py): never the body, which holds message text.
            log.error("unhandled error type=event_callback error=%s", type(e).__name__, exc_info=e)
            return "500 Internal Server Error"
        return "200 OK"

    def _from_this_app(self, payload: dict) -> bool:
        team, enterprise = payloads.ident(payload, "team_id"), payloads.ident(payload, "enterprise_id")
        bot = self.store.bot(team, enterprise_id=enterprise or None)
        event = payload["event"]
        # Bolt's extract_user_id: an edit's user is the edited message's, a deletion's the deleted message's.
        inner = payloads.obj(event, "message") or payloads.obj(event, "previous_message")
        user = payloads.ident(event, "user") or payloads.ident(inner, "user")
        bot_id = payloads.ident(event, "bot_id") or payloads.ident(inner, "bot_id")
        return bot is not None and ((bool(bot_id) and bot_id == bot.bot_id) or (bool(user) and user == bot.bot_user_id))


OPS_PATHS = ("/healthz", "/readyz", "/metrics")


def create_ops_wsgi(services: Services) -> Callable:
    """The probes and the scrape alone: the web app serves them beside Slack's paths, the scheduler on METRICS_PORT."""
    store = services.store
    token = services.settings.metrics_token

    def wsgi(environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD") or path not in OPS_PATHS:
            return _plain(start_response, "404 Not Found", "")
        if path == "/healthz":
            return _healthz(store, start_response)
        if path == "/readyz":
            return _readyz(services, start_response)
        if token is not None and not _bearer_is(environ.get("HTTP_AUTHORIZATION") or "", token):
            data = b"unauthorized\n"
            start_response("401 Unauthorized", [("Content-Type", "text/plain; charset=utf-8"),
                                                ("WWW-Authenticate", 'Bearer realm="metrics"'),
                                                ("Content-Length", str(len(data)))])  # fmt: skip
            return [data]
        data, content_type = services.metrics.render()
        start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(data)))])
        return [data]

    return wsgi


def serve_ops(services: Services, *, host: str, port: int) -> Callable[[], None]:
    """Serve /healthz, /readyz and /metrics on host:port in a thread (the scheduler process); returns its stop."""
    import waitress

    limits = {**SERVER_LIMITS, "threads": 2}  # the same limits as the web port: anyone may reach this one too
    server = waitress.create_server(create_ops_wsgi(services), host=host, port=port, **limits)
    thread = threading.Thread(target=server.run, name="ops-http", daemon=True)
    thread.start()
    log.info("serving probes and metrics host=%s port=%d", host, server.effective_port)

    def stop() -> None:
        server.close()
        server.task_dispatcher.shutdown()
        thread.join(5)

    return stop


def _bearer_is(header: str, token: str) -> bool:
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _readyz(services: Services, start_response: Callable) -> Iterable[bytes]:
    """200 only when this process can do its work; otherwise 503 and the first reason it cannot."""
    unavailable = "503 Service Unavailable"
    try:
        revision = ops.schema_revision(services.store.engine)
    except Exception as e:  # any database failure means "not ready"; the type is enough for the log
        log.warning("readyz: database unreachable error=%s", type(e).__name__)
        return _json(start_response, unavailable, {"ok": False, "reason": "database_unreachable"})
    head = ops.head_revision()
    if revision != head:
        log.warning("readyz: schema behind revision=%s newest=%s", revision, head)
        body = {"ok": False, "reason": "schema_outdated", "revision": revision, "newest": head}
        return _json(start_response, unavailable, body)
    stale = services.metrics.scheduler_stale(services.clock())
    if stale is not None:
        log.warning("readyz: scheduler stale last_tick_s=%.0f", stale)
        return _json(
            start_response, unavailable, {"ok": False, "reason": "scheduler_stale", "last_tick_s": round(stale)}
        )
    return _json(start_response, "200 OK", {"ok": True})


def _refusal(verifier: SignatureVerifier, environ: dict, raw: bytes) -> tuple[str | None, object]:
    """Why a POST to /slack/events is refused before Bolt sees it, or None to let Bolt handle it; and the parsed
    payload of one that is not refused.

    Bolt parses the body before it checks the signature, and some malformed bodies (broken JSON, a list, an event
    that is not an object, a non-numeric timestamp) crash it into a 500, which Slack would retry. Bolt still
    verifies the signature itself; this check only comes first.
    """
    timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP")
    signature = environ.get("HTTP_X_SLACK_SIGNATURE")
    try:
        body = raw.decode("utf-8")
        signed = bool(timestamp and timestamp.isdigit()) and verifier.is_valid(body, timestamp, signature)
    except (UnicodeDecodeError, ValueError):
        signed = False
    if not signed:
        log.warning("request refused reason=bad_signature")
        return "401 Unauthorized", None
    payload = _well_formed(body, environ.get("CONTENT_TYPE"))
    if payload is None:
        log.warning("request refused reason=malformed_body")
        return "400 Bad Request", None
    return None, payload


def _well_formed(body: str, content_type: str | None) -> object:
    """The payload, when Bolt can parse the body into one of the shape it expects (bot/slack/payloads.py)."""
    try:
        payload = parse_body(body, content_type)
    except ValueError:  # json.JSONDecodeError included
        return None
    return payload if payloads.bolt_can_read(payload) else None


def _healthz(store: Store, start_response: Callable) -> Iterable[bytes]:
    try:
        store.ping()
    except Exception as e:  # any database failure means "not healthy"; the type is enough for the log
        log.warning("healthz: database unreachable error=%s", type(e).__name__)
        return _json(start_response, "503 Service Unavailable", {"ok": False, "database": "unreachable"})
    return _json(start_response, "200 OK", {"ok": True, "database": "ok"})


def _json(start_response: Callable, status: str, body: dict) -> Iterable[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def _plain(start_response: Callable, status: str, body: str) -> Iterable[bytes]:
    data = body.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data)))])
    return [data]
