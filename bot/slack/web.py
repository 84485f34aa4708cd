"""The HTTP side: Bolt's WSGI handler for Slack's paths, plus /healthz, and the waitress server with its limits.

waitress was picked by measurement over gunicorn's gthread worker (bench/RESULTS.md): the same acks/s and ack
p99 on the event path, 25 MiB less memory, and it runs in-process beside the reply sender and the scheduler
(gunicorn forks workers). gunicorn got the auto-replies out 1.3-1.5x sooner in two runs, cause not yet found:
worth re-measuring once the reply sender is lighter.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

import waitress
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.request.internals import parse_body
from slack_sdk.signature import SignatureVerifier
from waitress.server import BaseWSGIServer
from waitress.task import ThreadedTaskDispatcher

from bot.slack import payloads
from bot.slack.app import OffhoursApp
from bot.slack.paths import EVENTS_PATH

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
    # (it used to read a declared 1 GiB, spilling it to temporary files, before the app's 413). One more than
    # MAX_BODY_BYTES, so that both draw the line at the same size; chunked bodies stop at the same count.
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
    """A WSGI callable serving /slack/events, /slack/install, /slack/oauth_redirect and /healthz."""
    slack = SlackRequestHandler(app.bolt, path=EVENTS_PATH)
    store = app.services.store
    verifier = SignatureVerifier(app.services.settings.signing_secret)

    def wsgi(environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz" and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            return _healthz(store, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            return _plain(start_response, "413 Payload Too Large" if length > 0 else "400 Bad Request", "")
        if path == EVENTS_PATH and environ.get("REQUEST_METHOD") == "POST":
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)  # Bolt reads the body again
            refusal = _refusal(verifier, environ, body)
            if refusal is not None:
                return _plain(start_response, refusal, "")
        return slack(environ, start_response)

    return wsgi


def _refusal(verifier: SignatureVerifier, environ: dict, raw: bytes) -> str | None:
    """Why a POST to /slack/events is refused before Bolt sees it, or None to let Bolt handle it.

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
        return "401 Unauthorized"
    if not _well_formed(body, environ.get("CONTENT_TYPE")):
        log.warning("request refused reason=malformed_body")
        return "400 Bad Request"
    return None


def _well_formed(body: str, content_type: str | None) -> bool:
    """Whether Bolt can parse the body into a payload of the shape it expects (bot/slack/payloads.py)."""
    try:
        payload = parse_body(body, content_type)
    except ValueError:  # json.JSONDecodeError included
        return False
    return payloads.bolt_can_read(payload)


def _healthz(store, start_response: Callable) -> Iterable[bytes]:
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
