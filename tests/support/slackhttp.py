"""Drive the app the way Slack does: real HTTP to the app's port, every request signed like Slack signs it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from itertools import count
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

SIGNING_SECRET = "test-signing-secret"
_event_ids = count(1)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body or b"{}")

    @property
    def text(self) -> str:
        return self.body.decode()


def request(
    url: str, *, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> Response:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return Response(resp.status, dict(resp.headers), resp.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, dict(e.headers), e.read())


def signed_headers(body: str, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}


class SlackHTTP:
    """Sends signed events, slash commands and interactions to one running app."""

    def __init__(self, base_url: str, *, team_id: str = "T1") -> None:
        self.base_url = base_url.rstrip("/")
        self.team_id = team_id

    def post(self, body: str, *, content_type: str, extra_headers: dict[str, str] | None = None,
             signed: bool = True) -> Response:  # fmt: skip
        headers = {"Content-Type": content_type, **(signed_headers(body) if signed else {})}
        headers.update(extra_headers or {})
        return request(f"{self.base_url}/slack/events", method="POST", body=body.encode(), headers=headers)

    def event(self, event: dict, *, authorized: str, event_id: str | None = None, retry_num: int | None = None,
              team_id: str | None = None) -> Response:  # fmt: skip
        team = team_id or self.team_id
        payload = {
            "token": "legacy-verification-token",
            "team_id": team,
            "api_app_id": "A1",
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(_event_ids):06d}",
            "event_time": int(float(event.get("ts", time.time()))),
            "event": event,
            "authorizations": [{"team_id": team, "user_id": authorized, "is_bot": False, "enterprise_id": None}],
            "is_ext_shared_channel": False,
        }
        from tests.support import logscan

        logscan.watch(event.get("text"))  # whatever the app is told, its logs must never repeat
        headers = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        return self.post(json.dumps(payload), content_type="application/json", extra_headers=headers)

    def dm(self, *, sender: str, recipient: str, ts: float, text: str = "hello", channel: str | None = None,
           authorized: str | None = None, event_id: str | None = None, retry_num: int | None = None,
           **fields) -> Response:  # fmt: skip
        """A 1:1 DM from sender to recipient, seen through `authorized`'s token (default: the recipient's)."""
        event = {
            "type": "message",
            "channel": channel or dm_channel(sender, recipient),
            "channel_type": "im",
            "user": sender,
            "text": text,
            "ts": f"{ts:.6f}",
            "event_ts": f"{ts:.6f}",
            **fields,
        }
        return self.event(event, authorized=authorized or recipient, event_id=event_id, retry_num=retry_num)

    def user_channel_message(self, *, sender: str, channel: str, ts: float, text: str = "hello",
                             channel_type: str = "channel", authorized: str, event_id: str | None = None,
                             **fields) -> Response:  # fmt: skip
        """A message in a channel, private channel ("group") or group DM ("mpim"), as a user event seen through
        `authorized`'s token (mentions, issue 20)."""
        event = {
            "type": "message", "channel": channel, "channel_type": channel_type, "user": sender, "text": text,
            "ts": f"{ts:.6f}", "event_ts": f"{ts:.6f}", **fields,
        }  # fmt: skip
        return self.event(event, authorized=authorized, event_id=event_id)

    def command(self, text: str, *, user: str, command: str = "/hours", team_id: str | None = None,
                channel: str = "C1", channel_name: str = "general") -> Response:  # fmt: skip
        form = {
            "token": "legacy",
            "team_id": team_id or self.team_id,
            "team_domain": "example",
            "channel_id": channel,
            "channel_name": channel_name,
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A1",
            "response_url": "https://hooks.slack.invalid/commands/1",
            "trigger_id": "123.456",
        }
        return self.post(urlencode(form), content_type="application/x-www-form-urlencoded")

    def channel_message(self, *, channel: str, user: str | None, ts: float, text: str = "hello",
                        bot_user: str = "UBOT", event_id: str | None = None, **fields) -> Response:  # fmt: skip
        """A message in a channel (public; `channel_type="group"` for a private one), as a bot event: the
        authorization is the app's bot user."""
        event = {"type": "message", "channel": channel, "channel_type": "channel", "text": text,
                 "ts": f"{ts:.6f}", "event_ts": f"{ts:.6f}", **({"user": user} if user else {}), **fields}  # fmt: skip
        team = self.team_id
        payload = {
            "token": "legacy-verification-token", "team_id": team, "api_app_id": "A1", "type": "event_callback",
            "event_id": event_id or f"Ev{next(_event_ids):06d}", "event_time": int(ts), "event": event,
            "authorizations": [{"team_id": team, "user_id": bot_user, "is_bot": True, "enterprise_id": None}],
            "is_ext_shared_channel": False,
        }  # fmt: skip
        from tests.support import logscan

        logscan.watch(text)
        return self.post(json.dumps(payload), content_type="application/json")

    def interaction(self, payload: dict) -> Response:
        return self.post(urlencode({"payload": json.dumps(payload)}), content_type="application/x-www-form-urlencoded")

    def message_button(self, *, user: str, action_id: str, value: str, channel: str, response_url: str | None,
                       block_id: str = "b1", message_ts: str = "1772593200.000100") -> Response:  # fmt: skip
        """A click on a button of a message (block_actions), with a response URL for ephemeral answers (None: a
        payload without one)."""
        payload = {
            "type": "block_actions",
            "team": {"id": self.team_id, "domain": "example"},
            "user": {"id": user, "username": user.lower(), "team_id": self.team_id},
            "api_app_id": "A1",
            "token": "legacy-verification-token",
            "trigger_id": f"trigger.{next(_event_ids)}",
            **({"response_url": response_url} if response_url is not None else {}),
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
            "channel": {"id": channel, "name": "directmessage"},
            "message": {"type": "message", "ts": message_ts, "text": ""},
            "actions": [{"type": "button", "action_id": action_id, "block_id": block_id, "value": value,
                         "action_ts": "1772593200.1"}],
        }  # fmt: skip
        return self.interaction(payload)

    def view_submission(self, *, user: str, callback_id: str, values: dict, private_metadata: str = "") -> Response:
        """A modal submitted (view_submission) with its input values: {block_id: {action_id: {...}}}."""
        payload = {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": "example"},
            "user": {"id": user, "username": user.lower(), "team_id": self.team_id},
            "api_app_id": "A1",
            "token": "legacy-verification-token",
            "trigger_id": f"trigger.{next(_event_ids)}",
            "view": {"id": "VMODAL", "type": "modal", "callback_id": callback_id, "private_metadata": private_metadata,
                     "state": {"values": values}, "blocks": []},
        }  # fmt: skip
        return self.interaction(payload)


def dm_channel(a: str, b: str) -> str:
    """A stable DM channel id for two people (either order)."""
    return "D" + "".join(sorted((a, b)))[:20]
