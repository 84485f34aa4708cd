"""The fake Slack, also keeping what it carried out: a post answered too late still happened, and is found again."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from tests.support.fakeslack import Call, Failure, FakeSlack


class RecordingSlack(FakeSlack):
    """The fake Slack, also keeping what it actually carried out (a post answered too late still happened)
    and answering conversations.replies from it, as Slack does for a DM the token can read."""

    def __init__(self) -> None:
        super().__init__()
        self.delivered: list[Call] = []
        self._inflight = 0
        # Set to a clock: conversations.replies answers once a minute of its time, else 429 (apps outside the
        # Marketplace, since 2025).
        self.lookup_clock = None
        self._last_lookup: datetime | None = None

    def answer(self, method, token, params, *, basic=None):
        with self._changed:
            self._inflight += 1
            if method == "conversations.replies" and self.lookup_clock is not None:
                now = self.lookup_clock()
                if self._last_lookup is not None and now - self._last_lookup < timedelta(minutes=1):
                    self._failures[method].appendleft(Failure(status=429, retry_after=60))
                else:
                    self._last_lookup = now
        try:
            return super().answer(method, token, params, basic=basic)
        finally:
            with self._changed:
                self._inflight -= 1
                self._changed.notify_all()

    def settle(self, timeout: float = 5.0) -> None:
        """Wait until every request the fake received has been answered (slow ones included)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._inflight:
                remaining = deadline - time.monotonic()
                assert remaining > 0, "the fake Slack is still answering"
                self._changed.wait(remaining)

    def _deliver(self, method: str, token, params, answer: dict) -> dict:
        with self._lock:
            self.delivered.append(Call(method, token, {**params, "_ts": answer.get("ts") or answer.get("message_ts")}))
        return answer

    def _chat_postMessage(self, token, params):
        return self._deliver("chat.postMessage", token, params, super()._chat_postMessage(token, params))

    def _chat_postEphemeral(self, token, params):
        return self._deliver("chat.postEphemeral", token, params, super()._chat_postEphemeral(token, params))

    def _conversations_replies(self, token, params):
        channel, ts = params.get("channel"), str(params.get("ts"))
        with self._lock:
            found = [c for c in self.delivered if c.method == "chat.postMessage" and c.params.get("channel") == channel
                     and str(c.params.get("thread_ts") or c.params["_ts"]) == ts]  # fmt: skip
        messages = [{"type": "message", "ts": ts, "thread_ts": ts}]
        for call in found:
            message = {"type": "message", "ts": call.params["_ts"], "thread_ts": ts,
                       "text": call.params.get("text") or "", "blocks": call.params.get("blocks") or []}  # fmt: skip
            if params.get("include_all_metadata") in (True, "true", "1", 1) and call.params.get("metadata"):
                message["metadata"] = call.params["metadata"]
            messages.append(message)
        return {"ok": True, "messages": messages, "has_more": False}

    def _conversations_history(self, token, params):
        # Posting to a user id lands in the app's DM with them, which conversations.open names "D" + user id.
        channel = params.get("channel")
        with self._lock:
            found = [c for c in self.delivered if c.method == "chat.postMessage"
                     and channel in (c.params.get("channel"), "D" + str(c.params.get("channel")))]  # fmt: skip
        messages = []
        for call in reversed(found):
            message = {"type": "message", "ts": call.params["_ts"]}
            if params.get("include_all_metadata") in (True, "true", "1", 1) and call.params.get("metadata"):
                message["metadata"] = call.params["metadata"]
            messages.append(message)
        return {"ok": True, "messages": messages, "has_more": False}

    def posts(self, method: str = "chat.postMessage", *, token: str | None = None) -> list[Call]:
        self.settle()
        with self._lock:
            return [c for c in self.delivered if c.method == method and (token is None or c.token == token)]
