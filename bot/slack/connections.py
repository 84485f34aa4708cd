"""Kept-alive HTTP connections for the Web API client (bot/slack/client.py PooledWebClient): http.client's own
connections, reused between calls, one caller at a time each.

Why not urllib3's pool, which this replaced: every Slack call goes to one host, and urllib3's layers above
http.client (URL parsing and pool lookup per call, its header dict, its response wrapper) cost 0.18 ms of CPU per
call of 0.48 (bench/RESULTS.md, tenth session): a third of posting an auto-reply. What the app needs of a pool is
this much: keep connections open, reuse none the server may be closing, and say whether a failure came before the
request was sent (urllib's URLError, as before: Slack did nothing) or after (Slack may have acted).
"""

from __future__ import annotations

import http.client
import re
import select
import socket
import ssl
import threading
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

# Connections kept open per host: the posting threads of every sender together (more are opened when needed, and
# closed after use beyond this many).
POOL_CONNECTIONS = 32
# How long a connection may sit idle and still be reused, when the server does not say (Keep-Alive: timeout=N).
# A server closes an idle connection at its keep-alive timeout; a request sent as its close is on the way is lost
# in a way that cannot be told from a drop after Slack acted (so it is "maybe posted"). Staying well below the
# usual unannounced timeouts (nginx 75 s, load balancers 60 s) keeps reuse away from that moment; a quiet spell
# costs a new connection.
IDLE_LIMIT_S = 10.0
# Margin kept below a timeout the server announces (whole seconds, and our clock is not its clock).
_ANNOUNCED_MARGIN_S = 1.0
_KEEP_ALIVE_TIMEOUT = re.compile(r"(?:^|[,\s])timeout\s*=\s*(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    headers: http.client.HTTPMessage
    data: bytes


@dataclass
class _Kept:
    conn: http.client.HTTPConnection
    generation: int  # the pool's at opening: a connection from before a clear() is not kept after it
    reuse_until: float = 0.0  # on the pool's clock


class ConnectionPool:
    """Idle connections per (scheme, host, port), the most recently used first: a burst reuses the warm ones.

    `clock` is monotonic seconds (tests hand in their own)."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext | None = None,
        *,
        maxsize: int = POOL_CONNECTIONS,
        idle_limit: float = IDLE_LIMIT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.maxsize = maxsize
        self.idle_limit = idle_limit
        self.clock = clock
        self._ssl_context = ssl_context
        self._idle: dict[tuple[str, str, int], list[_Kept]] = {}
        self._generation = 0
        self._lock = threading.Lock()

    def post(self, url: str, body: bytes | None, headers: dict[str, str], *, timeout: float) -> Answer:
        """POST `body` to `url` over a kept connection (a new one if none is idle).

        Raises URLError when the request was not sent whole (connecting failed, or sending did), TimeoutError
        when the answer did not come in time, another OSError when the connection failed after the request went
        out (ConnectionResetError for a malformed or cut answer): the last two may have been acted on."""
        parts = urlsplit(url)
        key = (parts.scheme.lower(), parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        kept = self._take(key, timeout)
        conn = kept.conn
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
            if response.status < 200:  # http.client skips only 100 Continue: 103 Early Hints is not the answer
                raise ConnectionResetError(f"informational answer {response.status} where the answer was due")
        except BaseException:
            conn.close()
            raise
        if response.will_close:
            conn.close()
        else:
            self._give_back(key, kept, self._reusable_for(response.headers))
        return Answer(response.status, response.reason, response.headers, data)

    def clear(self) -> None:
        """Close every idle connection, and those in use as they come back (at shutdown; a later call opens new
        ones)."""
        with self._lock:
            idle, self._idle = self._idle, {}
            self._generation += 1
        for kept_ones in idle.values():
            for kept in kept_ones:
                kept.conn.close()

    def _reusable_for(self, headers: http.client.HTTPMessage) -> float:
        announced = _KEEP_ALIVE_TIMEOUT.search(headers.get("Keep-Alive", ""))
        if announced is None:
            return self.idle_limit
        return max(0.0, min(self.idle_limit, int(announced.group(1)) - _ANNOUNCED_MARGIN_S))

    def _take(self, key: tuple[str, str, int], timeout: float) -> _Kept:
        while True:
            with self._lock:
                kept_ones = self._idle.get(key)
                kept = kept_ones.pop() if kept_ones else None
                generation = self._generation
            if kept is None:
                return _Kept(self._new(key, timeout), generation)
            sock = kept.conn.sock
            if sock is not None and self.clock() < kept.reuse_until and not _dropped(sock):
                kept.conn.timeout = timeout
                sock.settimeout(timeout)
                return kept
            # Idle too long (the server may be closing it), or closed while idle (keep-alive timeout, restart)
            kept.conn.close()

    def _new(self, key: tuple[str, str, int], timeout: float) -> http.client.HTTPConnection:
        scheme, host, port = key
        if scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=self._tls())
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def _tls(self) -> ssl.SSLContext:
        # Made once: loading the system's certificates takes tens of milliseconds.
        with self._lock:
            if self._ssl_context is None:
                self._ssl_context = ssl.create_default_context()
            return self._ssl_context

    def _give_back(self, key: tuple[str, str, int], kept: _Kept, reusable_for: float) -> None:
        now = self.clock()
        kept.reuse_until = now + reusable_for
        with self._lock:
            kept_ones = self._idle.setdefault(key, [])
            # The least recently used come first. Under light traffic the latest serves every call, and those past
            # their time would stay open (in CLOSE_WAIT once the server has closed them) until a burst reached them.
            expired = 0
            while expired < len(kept_ones) and kept_ones[expired].reuse_until <= now:
                expired += 1
            closing, kept_ones[:expired] = kept_ones[:expired], []
            keep = reusable_for > 0 and kept.generation == self._generation and len(kept_ones) < self.maxsize
            if keep:
                kept_ones.append(kept)
        for old in closing if keep else [*closing, kept]:
            old.conn.close()


def _dropped(sock: socket.socket) -> bool:
    """Whether an idle connection has something to read: the server closed it (or sent what no request asked for),
    either way not a connection to send on. One poll, no waiting."""
    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))
