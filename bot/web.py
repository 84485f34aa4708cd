"""The HTTP side: Bolt's WSGI handler for Slack's paths, plus /healthz, served by waitress.

waitress was picked by measurement over gunicorn's gthread worker (see bench/RESULTS.md): similar
throughput on this workload, and it runs in-process beside the reply sender and the scheduler.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable

from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.app import EVENTS_PATH, OffhoursApp

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000  # Slack's payloads are far smaller; refuse anything bigger before reading it


def create_wsgi(app: OffhoursApp) -> Callable:
    """A WSGI callable serving /slack/events, /slack/install, /slack/oauth_redirect and /healthz."""
    slack = SlackRequestHandler(app.bolt, path=EVENTS_PATH)
    store = app.services.store

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
        return slack(environ, start_response)

    return wsgi


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
