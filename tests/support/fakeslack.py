"""A fake Slack Web API on 127.0.0.1 that records every call, in the style of bolt-python's mock_web_api_server.

Tests point `WebClient(base_url=fake.base_url)` at it, script failures with `fail(...)`, and assert on `calls`.
It is also used by the benchmarks, where `rate_limits` makes it enforce Slack's posting limits.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from typing import Any
from urllib.parse import parse_qs, urlparse

WORKSPACE_URL = "https://example.slack.com/"  # auth.test's url; chat.getPermalink's links start with it


@dataclass
class Call:
    method: str
    token: str | None
    params: dict[str, Any]
    client_id: str | None = None  # from HTTP Basic auth (oauth.v2.access authenticates the app this way)
    client_secret: str | None = None


@dataclass
class Failure:
    status: int = 200
    error: str | None = None
    retry_after: int | None = None
    delay: float = 0.0
    disconnect: bool = False  # close the connection without an answer (a network failure)
    after_acting: bool = False  # Slack carries the call out, then answers with the failure ("internal_error")
    body: bytes | None = None  # a raw answer that is not Slack's JSON (a proxy's HTML error page), with `status`


@dataclass
class User:
    id: str
    tz: str | None = "America/New_York"
    is_bot: bool = False
    name: str = ""
    is_admin: bool = False
    is_owner: bool = False
    deleted: bool = False  # deactivated, or left the workspace (users.info still answers, with deleted: true)


@dataclass
class RateLimits:
    """Slack-like posting limits for the benchmarks: per channel and per workspace, answered with 429.

    The rules live here once: `admit` is what the fake answers a post, and `earliest` is the schedule those same
    rules allow at best, which is the floor a benchmark divides by.
    """

    per_channel_per_second: float = 1.0
    workspace_per_minute: float | None = None
    _last_post: dict[str, float] = field(default_factory=dict)
    _window: deque = field(default_factory=deque)

    WINDOW_S = 60.0

    def admit(self, channel: str, now: float) -> int | None:
        """None (and the post is counted) when a post to `channel` at `now` is allowed, else its Retry-After."""
        last = self._last_post.get(channel)
        if last is not None and now - last < 1.0 / self.per_channel_per_second:
            return 1
        if self.workspace_per_minute is not None:
            while self._window and now - self._window[0] > self.WINDOW_S:
                self._window.popleft()
            if len(self._window) >= self.workspace_per_minute:
                return max(1, int(self.WINDOW_S - (now - self._window[0])) + 1)
            self._window.append(now)
        self._last_post[channel] = now
        return None

    def earliest(self, channels: list[str], *, epsilon: float = 1e-6) -> list[float]:
        """The earliest instant (seconds from 0) each post, in order, could pass `admit`: the first burst goes at
        once, and with a sliding window the k-th post beyond it waits for the (k - capacity)-th to age out."""
        times: list[float] = []
        last: dict[str, float] = {}
        gap = 1.0 / self.per_channel_per_second
        capacity = None if self.workspace_per_minute is None else int(self.workspace_per_minute)
        for k, channel in enumerate(channels):
            at = 0.0
            if channel in last:
                at = max(at, last[channel] + gap)
            if capacity is not None and k >= capacity:
                at = max(at, times[k - capacity] + self.WINDOW_S + epsilon)
            times.append(at)
            last[channel] = at
        return times


class _Server(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: a burst of concurrent connects overflows it and the kernel
    # drops SYNs, which clients retry only after a second. Slack's edge does not behave like that.
    request_queue_size = 128


class FakeSlack:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.users: dict[str, User] = {}
        self.tokens: dict[str, dict[str, Any]] = {}  # token -> auth.test answer
        self.oauth_codes: dict[str, dict[str, Any]] = {}
        self.dm_members: dict[str, tuple[str, str]] = {}  # channel -> the two members of the DM
        # Channels (public C..., private G...): conversations.info answers {creator, is_member, is_private}; the
        # messages posted there are kept for conversations.history / conversations.replies.
        self.channels: dict[str, dict[str, Any]] = {}
        self.group_dms: dict[str, list[str]] = {}  # group DM -> its members (conversations.members)
        self.channel_messages: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.rate_limits: RateLimits | None = None
        self.socket_url: str | None = None  # answered by apps.connections.open: ws://127.0.0.1:<port>/link
        self.record_calls = True
        self._failures: dict[str, deque[Failure]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._ts = count(1)
        self.post_counts: dict[str, int] = defaultdict(int)
        self.connections = 0  # TCP connections accepted (a client that keeps its connections opens few)
        # users.profile.get/set: each person's status (text, emoji, expiration), by the user id of the token.
        self.statuses: dict[str, dict[str, Any]] = {}
        self.profile_scopes_missing: set[str] = set()  # user ids whose token lacks users.profile:* (missing_scope)
        self.snoozes: dict[str, int] = {}  # dnd.setSnooze: user id -> the minutes asked for (gone once ended)
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits for it, and every test stops a fake Slack.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-slack", daemon=True
        )

    # --- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api/"

    # --- scripting --------------------------------------------------------------------------------------

    def add_user(self, user_id: str, *, tz: str | None = "America/New_York", is_bot: bool = False,
                 is_admin: bool = False, is_owner: bool = False) -> None:  # fmt: skip
        self.users[user_id] = User(id=user_id, tz=tz, is_bot=is_bot, name=user_id.lower(), is_admin=is_admin,
                                   is_owner=is_owner)  # fmt: skip

    def add_channel(self, channel_id: str, *, creator: str = "UCREATOR", is_member: bool = True) -> None:
        """A channel; a private one (is_member False and id G...) answers channel_not_found, as Slack does."""
        self.channels[channel_id] = {"creator": creator, "is_member": is_member}

    def fail(self, method: str, *, times: int = 1, **failure: Any) -> None:
        """The next `times` calls to `method` fail: status=500, error="invalid_auth", retry_after=2, delay=...,
        disconnect=True (the connection drops without an answer), after_acting=True (done, then the failure),
        body=b"<html>..." (with a status: an answer that is not Slack's JSON)."""
        scripted = Failure(**failure)
        if scripted.after_acting and scripted.status == 200 and not scripted.error:
            raise ValueError("after_acting needs a failure to answer with: a status or an error")
        with self._lock:
            for _ in range(times):
                self._failures[method].append(scripted)

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def wait_for(self, method: str, n: int = 1, timeout: float = 10.0) -> list[Call]:
        """Block (on a condition, not a sleep loop) until `method` has been called `n` times."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while sum(1 for c in self.calls if c.method == method) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{method} called fewer than {n} times within {timeout} s")
                self._changed.wait(remaining)
            return [c for c in self.calls if c.method == method]

    # --- answers ----------------------------------------------------------------------------------------

    def answer(
        self, method: str, token: str | None, params: dict[str, Any], *, basic: tuple[str, str] | None = None
    ) -> tuple[int, dict[str, str], dict | bytes]:
        with self._changed:
            if self.record_calls:
                self.calls.append(Call(method, token, params, *(basic or (None, None))))
            self._changed.notify_all()
            failure = self._failures[method].popleft() if self._failures[method] else None
        if failure is not None:
            if failure.delay:
                time.sleep(failure.delay)  # a slow Slack, for timeout tests
            if failure.disconnect:
                return 0, {}, {}
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            if failure.after_acting:
                self._carry_out(method, token, params)
            if failure.body is not None:
                return failure.status, {**headers, "Content-Type": "text/html"}, failure.body
            if failure.status == 429:
                return 429, headers, {"ok": False, "error": "ratelimited"}
            if failure.status != 200:
                return failure.status, headers, {"ok": False, "error": "internal_error"}
            if failure.error:
                return 200, headers, {"ok": False, "error": failure.error}
        if method == "chat.postMessage" and self.rate_limits is not None:
            limited = self._rate_limited(params.get("channel", ""))
            if limited is not None:
                return 429, {"Retry-After": str(limited)}, {"ok": False, "error": "ratelimited"}
        return 200, {}, self._carry_out(method, token, params)

    def _carry_out(self, method: str, token: str | None, params: dict[str, Any]) -> dict:
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        return {"ok": True} if handler is None else handler(token, params)

    def _rate_limited(self, channel: str) -> int | None:
        limits = self.rate_limits
        with self._lock:
            return limits.admit(channel, time.monotonic())

    def _new_ts(self) -> str:
        return f"{1_700_000_000 + next(self._ts)}.000100"

    def _auth_test(self, token, params):
        known = self.tokens.get(token or "")
        if known is None:
            return {"ok": False, "error": "invalid_auth"}
        return {"ok": True, "url": WORKSPACE_URL, **known}  # a test may give a token its own url

    def _oauth_v2_access(self, token, params):
        answer = self.oauth_codes.get(params.get("code", ""))
        return answer if answer is not None else {"ok": False, "error": "invalid_code"}

    def _users_info(self, token, params):
        user = self.users.get(params.get("user", ""))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        body = {"id": user.id, "name": user.name, "is_bot": user.is_bot, "real_name": user.name.title(),
                "is_admin": user.is_admin, "is_owner": user.is_owner, "deleted": user.deleted}  # fmt: skip
        if user.tz:
            body.update(tz=user.tz, tz_label=user.tz, tz_offset=0)
        return {"ok": True, "user": body}

    def _conversations_members(self, token, params):
        members = self.group_dms.get(params.get("channel", ""))
        if members is None:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "members": list(members), "response_metadata": {"next_cursor": ""}}

    def _conversations_info(self, token, params):
        channel = params.get("channel", "")
        members = self.dm_members.get(channel)
        known = self.channels.get(channel)
        if members is None and known is not None:
            if channel.startswith("G") and not known["is_member"]:
                return {"ok": False, "error": "channel_not_found"}
            return {"ok": True, "channel": {"id": channel, "is_channel": True, **known}}
        if members is None:
            return {"ok": False, "error": "channel_not_found"}
        me = (self.tokens.get(token or "") or {}).get("user_id")
        other = members[1] if me == members[0] else members[0]
        return {"ok": True, "channel": {"id": channel, "is_im": True, "user": other}}

    def _conversations_open(self, token, params):
        users = str(params.get("users", ""))
        return {"ok": True, "channel": {"id": "D" + users.replace(",", "")[:10]}}

    def _chat_postMessage(self, token, params):
        channel = params.get("channel", "")
        known = self.channels.get(channel)
        if known is not None and not known["is_member"]:
            return {"ok": False, "error": "not_in_channel"}
        ts = self._new_ts()
        with self._lock:
            self.post_counts[channel] += 1
            if known is not None:
                self.channel_messages[channel].append(
                    {"ts": ts, "thread_ts": params.get("thread_ts"), "metadata": params.get("metadata")}
                )
        return {"ok": True, "channel": params.get("channel"), "ts": ts, "message": {"text": ""}}

    def _conversations_history(self, token, params):
        channel = params.get("channel", "")
        if channel not in self.channels:
            return {"ok": True, "messages": []}
        with self._lock:
            return {"ok": True, "messages": [m for m in self.channel_messages[channel] if not m["thread_ts"]]}

    def _conversations_replies(self, token, params):
        channel, root = params.get("channel", ""), params.get("ts")
        if channel not in self.channels:
            return {"ok": True}
        with self._lock:
            return {"ok": True, "messages": [m for m in self.channel_messages[channel] if m["thread_ts"] == root]}

    def _chat_postEphemeral(self, token, params):
        return {"ok": True, "message_ts": self._new_ts()}

    def _chat_update(self, token, params):
        return {"ok": True, "channel": params.get("channel"), "ts": params.get("ts")}

    def _chat_getPermalink(self, token, params):
        channel, ts = params.get("channel", ""), str(params.get("message_ts", ""))
        return {"ok": True, "permalink": f"{WORKSPACE_URL}archives/{channel}/p{ts.replace('.', '')}"}

    def status_of(self, user_id: str) -> dict[str, Any]:
        """The person's status as Slack holds it: {"status_text", "status_emoji", "status_expiration"}."""
        return self.statuses.get(user_id, {"status_text": "", "status_emoji": "", "status_expiration": 0})

    def set_status(self, user_id: str, text: str, emoji: str = "", expiration: int = 0) -> None:
        """The person sets a status themselves."""
        self.statuses[user_id] = {"status_text": text, "status_emoji": emoji, "status_expiration": expiration}

    def _profile_user(self, token) -> tuple[str | None, dict | None]:
        known = self.tokens.get(token or "")
        if known is None:
            return None, {"ok": False, "error": "invalid_auth"}
        user_id = known.get("user_id")
        if user_id in self.profile_scopes_missing:
            return None, {"ok": False, "error": "missing_scope"}
        return user_id, None

    def _users_profile_get(self, token, params):
        user_id, refused = self._profile_user(token)
        if refused is not None:
            return refused
        return {"ok": True, "profile": {"real_name": str(user_id).lower(), **self.status_of(str(user_id))}}

    def _users_profile_set(self, token, params):
        user_id, refused = self._profile_user(token)
        if refused is not None:
            return refused
        profile = params.get("profile") or {}
        if isinstance(profile, str):
            profile = json.loads(profile)
        current = dict(self.status_of(str(user_id)))
        for key in ("status_text", "status_emoji", "status_expiration"):
            if key in profile:
                current[key] = profile[key]
        if len(str(current["status_text"])) > 100:
            return {"ok": False, "error": "invalid_profile"}
        with self._lock:
            self.statuses[str(user_id)] = current
        return {"ok": True, "profile": current}

    def _dnd_setSnooze(self, token, params):
        known = self.tokens.get(token or "")
        if known is None:
            return {"ok": False, "error": "invalid_auth"}
        minutes = int(params.get("num_minutes") or 0)
        with self._lock:
            self.snoozes[known["user_id"]] = minutes
        return {"ok": True, "snooze_enabled": True, "snooze_remaining": minutes * 60}

    def _dnd_endSnooze(self, token, params):
        known = self.tokens.get(token or "")
        if known is None:
            return {"ok": False, "error": "invalid_auth"}
        with self._lock:
            if self.snoozes.pop(known["user_id"], None) is None:
                return {"ok": False, "error": "snooze_not_active"}
        return {"ok": True, "snooze_enabled": False}

    def _views_publish(self, token, params):
        return {"ok": True, "view": {"id": "V1"}}

    def _views_open(self, token, params):
        return {"ok": True, "view": {"id": "V2"}}

    def _views_update(self, token, params):
        return {"ok": True, "view": {"id": "V2"}}

    def _auth_revoke(self, token, params):
        return {"ok": True, "revoked": True}

    def _apps_connections_open(self, token, params):
        # Socket Mode: the WebSocket URL of the fake endpoint a test started (tests/fakesocket.py).
        if not (token or "").startswith("xapp-"):
            return {"ok": False, "error": "not_allowed_token_type"}
        if self.socket_url is None:
            return {"ok": False, "error": "internal_error"}
        return {"ok": True, "url": self.socket_url}

    # --- HTTP -------------------------------------------------------------------------------------------

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes: without this, on a kept-alive connection the body waits
                # for the client's delayed ACK of the headers (Nagle's algorithm, up to 40 ms a call), which no
                # real Slack answer does.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with fake._lock:
                    fake.connections += 1  # one per TCP connection, however many requests it carries

            def do_GET(self) -> None:
                self._serve(parse_qs(urlparse(self.path).query))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                if "json" in (self.headers.get("Content-Type") or ""):
                    params = json.loads(raw or "{}")
                else:
                    params = {k: v[0] for k, v in parse_qs(raw).items()}
                for k, v in parse_qs(urlparse(self.path).query).items():
                    params.setdefault(k, v[0])
                self._serve(params)

            def _serve(self, params) -> None:
                params = {k: (v[0] if isinstance(v, list) and len(v) == 1 else v) for k, v in params.items()}
                for key in ("blocks", "metadata", "view", "profile"):
                    if isinstance(params.get(key), str):
                        with contextlib.suppress(ValueError):
                            params[key] = json.loads(params[key])
                auth = self.headers.get("Authorization") or ""
                token = auth.removeprefix("Bearer ") or params.get("token")
                basic = None
                if auth.startswith("Basic "):
                    token = None
                    user, _, password = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
                    basic = (user, password)
                method = urlparse(self.path).path.removeprefix("/api/")
                status, headers, body = fake.answer(method, token, params, basic=basic)
                if status == 0:  # a scripted network failure: hang up without answering
                    self.close_connection = True
                    return
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in {"Content-Type": "application/json", **headers}.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except ConnectionError:  # a slow answer (`delay`) the client already gave up on: nobody to tell
                    self.close_connection = True

        return Handler
