"""Kept-alive HTTP connections for the Web API client (bot/slack/client.py PooledWebClient): http.client's own
connections, reused between calls, one caller at a time each.

Why not urllib3's pool, which this replaced: every Slack call goes to one host, and urllib3's layers above
http.client (URL parsing and pool lookup per call, its header dict, its response wrapper) cost 0.18 ms of CPU per
call of 0.48 (bench/RESULTS.md, tenth session): a third of posting an auto-reply. What the app needs of a pool is
this much: keep connections open, never reuse one the server has closed, and say whether a failure came before the
request was sent (urllib's URLError, as before: Slack did nothing) or after (Slack may have acted).
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
import urllib.error
from dataclasses import dataclass
from urllib.parse import urlsplit

# Connections kept open per host: the posting threads of every sender together (more are opened when needed, and
# closed after use beyond this many).
POOL_CONNECTIONS = 32


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    headers: http.client.HTTPMessage
    data: bytes


class ConnectionPool:
    """Idle connections per (scheme, host, port), the most recently used first: a burst reuses the warm ones."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None, *, maxsize: int = POOL_CONNECTIONS) -> None:
        self.ssl_context = ssl_context
        self.maxsize = maxsize
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    def post(self, url: str, body: bytes | None, headers: dict[str, str], *, timeout: float) -> Answer:
        """POST `body` to `url` over a kept connection (a new one if none is idle).

        Raises URLError when the request was not sent whole (connecting failed, or sending did), TimeoutError
        when the answer did not come in time, another OSError when the connection failed after the request went
        out (ConnectionResetError for a malformed or cut answer): the last two may have been acted on."""
        parts = urlsplit(url)
        key = (parts.scheme.lower(), parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn = self._take(key, timeout)
        try:
            try:
                conn.request("POST", path, body=body, headers=headers)
            except OSError as e:  # refused, DNS, a connect timeout, a reset while sending: never whole at Slack
                raise urllib.error.URLError(e) from e
            try:
                response = conn.getresponse()
                data = response.read()
            except OSError:  # a timeout, a drop (RemoteDisconnected), a TLS error: after the request went out
                raise
            except http.client.HTTPException as e:  # a malformed or cut answer, after the request went out
                raise ConnectionResetError(type(e).__name__) from e
        except BaseException:
            conn.close()
            raise
        if response.will_close:
            conn.close()
        else:
            self._give_back(key, conn)
        return Answer(response.status, response.reason, response.headers, data)

    def clear(self) -> None:
        """Close every idle connection (at shutdown; a later call opens new ones)."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def _take(self, key: tuple[str, str, int], timeout: float) -> http.client.HTTPConnection:
        while True:
            with self._lock:
                conns = self._idle.get(key)
                conn = conns.pop() if conns else None
            if conn is None:
                return self._new(key, timeout)
            if conn.sock is not None and not _dropped(conn.sock):
                conn.timeout = timeout
                conn.sock.settimeout(timeout)
                return conn
            conn.close()  # the server closed it while idle (keep-alive timeout, restart): not for reuse

    def _new(self, key: tuple[str, str, int], timeout: float) -> http.client.HTTPConnection:
        scheme, host, port = key
        if scheme == "https":
            context = self.ssl_context or ssl.create_default_context()
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def _give_back(self, key: tuple[str, str, int], conn: http.client.HTTPConnection) -> None:
        with self._lock:
            conns = self._idle.setdefault(key, [])
            if len(conns) < self.maxsize:
                conns.append(conn)
                return
        conn.close()


def _dropped(sock: socket.socket) -> bool:
    """Whether an idle connection has something to read: the server closed it (or sent what no request asked for),
    either way not a connection to send on. One poll, no waiting."""
    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))
