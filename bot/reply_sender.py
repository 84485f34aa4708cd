"""Posts queued auto-replies after the ack: claimed from the outbox, retried with backoff, sent once.

A background thread wakes when a reply is queued (or every `poll_seconds`, which also picks up replies left
pending by a crash); `drain(now)` is the same work as a plain call, which is what the tests drive.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import partial

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import autoreply
from bot.app import Services
from bot.blocks.status import auto_reply_blocks
from bot.outbox import MAX_REPLY_ATTEMPTS, PendingReply

log = logging.getLogger(__name__)

# Slack's answers that mean the person's token is gone: they are disconnected, and nothing is retried.
REVOKED = frozenset({"invalid_auth", "token_revoked", "account_inactive", "not_authed", "token_expired"})


def backoff(attempts: int) -> timedelta:
    """10 s, 20 s, 40 s ... capped at 10 minutes."""
    return timedelta(seconds=min(10 * 2 ** max(attempts - 1, 0), 600))


def retry_after(error: SlackApiError, default: float = 1.0) -> float:
    headers = getattr(error.response, "headers", None) or {}
    for key, value in headers.items():
        if key.lower() == "retry-after":
            value = value[0] if isinstance(value, list) else value
            try:
                return max(float(value), 0.0)
            except ValueError:
                return default
    return default


def sending_client(client: WebClient) -> WebClient:
    """A client without sleeping retries: a 429 or a 5xx is rescheduled in the outbox, not waited out in-thread."""
    return WebClient(base_url=client.base_url, timeout=client.timeout, retry_handlers=[])


class ReplySender:
    def __init__(self, services: Services, *, poll_seconds: float = 5.0, workers: int = 8) -> None:
        self.services = services
        self.store = services.store
        self.client = sending_client(services.client)
        self.poll_seconds = poll_seconds
        self.workers = workers
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reply")

    def drain(self, *, now: datetime | None = None) -> int:
        """Send every reply due at `now` (default: the clock); returns how many were posted."""
        sent = 0
        while True:
            at = now or self.services.clock()
            batch = self.store.outbox.claim_due_replies(now=at, limit=self.workers * 4)
            if not batch:
                return sent
            sent += sum(self._pool.map(partial(self.send, now=at), batch))

    def send(self, reply: PendingReply, *, now: datetime) -> bool:
        """Post one claimed reply; record the outcome. Returns True when posted."""
        outbox = self.store.outbox
        token = self.store.user_token(reply.team_id, reply.recipient_id)
        if token is None:
            outbox.give_up_reply(reply.id, state="failed", error="not_connected")
            return False
        prefs = self.services.people.get(reply.team_id, reply.recipient_id)
        window = prefs.schedule.off_window(reply.received_at)
        if window is None or now >= window[1]:
            # Hours changed or the person is already back: "I'm offline" would now be untrue.
            outbox.give_up_reply(reply.id, state="expired", error="recipient_back")
            return False
        if prefs.paused:
            outbox.give_up_reply(reply.id, state="expired", error="paused")
            return False
        state = outbox.message_state(reply.team_id, reply.recipient_id, reply.channel_id, reply.message_ts)
        if state in ("answered", "deleted"):
            # The person already answered (or the sender took the message back) while the reply waited.
            outbox.give_up_reply(reply.id, state="expired", error=f"message_{state}")
            return False
        text = autoreply.compose(prefs, now=max(now, reply.received_at), sender_id=reply.sender_id)
        ephemeral = self.services.config.reply.mode == "ephemeral"
        try:
            # A retry may follow a post that Slack carried out but answered too late (a timeout, a crash): look
            # for it in the thread first, so the sender never gets the auto-reply twice. Only then: the lookup
            # (conversations.replies) is rate-limited hard for apps outside the Marketplace.
            ts = self._already_posted(reply, token=token) if reply.outcome_unknown and not ephemeral else None
            if ts is None:
                ts = self._post(reply, token=token, text=text)
        except SlackApiError as e:
            self._failed(reply, e, now=now)
            return False
        except TimeoutError:
            if ephemeral:
                # An ephemeral post cannot be looked up afterwards: it may have been shown, so never repeat it.
                outbox.give_up_reply(reply.id, state="failed", error="timeout")
                log.warning("reply id=%s outcome=failed error=timeout", reply.id)
                return False
            outbox.retry_reply(reply.id, at=now + backoff(reply.attempts), error="timeout")
            log.warning("reply id=%s outcome=retry error=timeout", reply.id)
            return False
        except OSError as e:  # connection refused, reset, timed out
            outbox.retry_reply(reply.id, at=now + backoff(reply.attempts), error=type(e).__name__)
            log.warning("reply id=%s outcome=retry error=%s", reply.id, type(e).__name__)
            return False
        outbox.mark_reply_sent(reply.id, reply_ts=ts)
        log.info("reply id=%s outcome=sent attempts=%d", reply.id, reply.attempts)
        return True

    def _already_posted(self, reply: PendingReply, *, token: str) -> str | None:
        """The ts of this reply if an earlier attempt did post it (found by its metadata in the thread), else None."""
        response = self.client.conversations_replies(
            token=token, channel=reply.channel_id, ts=reply.thread_ts, oldest=reply.message_ts,
            include_all_metadata=True, limit=200,
        )  # fmt: skip
        for message in response.get("messages") or []:
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == autoreply.METADATA_EVENT_TYPE and payload.get("reply_id") == str(reply.id):
                return message.get("ts")
        return None

    def _post(self, reply: PendingReply, *, token: str, text: str) -> str | None:
        blocks = auto_reply_blocks(text)
        fallback = ":crescent_moon: Auto-reply: " + text
        if self.services.config.reply.mode == "ephemeral":
            response = self.client.chat_postEphemeral(
                token=token, channel=reply.channel_id, user=reply.sender_id, text=fallback, blocks=blocks
            )
            return response.get("message_ts")
        response = self.client.chat_postMessage(
            token=token,
            channel=reply.channel_id,
            thread_ts=reply.thread_ts,
            text=fallback,
            blocks=blocks,
            metadata={"event_type": autoreply.METADATA_EVENT_TYPE, "event_payload": {"reply_id": str(reply.id)}},
        )
        return response.get("ts")

    def _failed(self, reply: PendingReply, error: SlackApiError, *, now: datetime) -> None:
        outbox = self.store.outbox
        status = error.response.status_code
        code = str(error.response.get("error") or status)
        if code in REVOKED:
            self.store.revoke_user_tokens(reply.team_id, [reply.recipient_id])
            log.warning("reply id=%s outcome=disconnected error=%s", reply.id, code)
            return  # forget_person removed the reply row with the rest of their data
        retryable = status == 429 or status >= 500
        if not retryable or reply.attempts >= MAX_REPLY_ATTEMPTS:
            outbox.give_up_reply(reply.id, state="failed", error=code)
            log.warning("reply id=%s outcome=failed error=%s attempts=%d", reply.id, code, reply.attempts)
            return
        delay = timedelta(seconds=retry_after(error)) if status == 429 else backoff(reply.attempts)
        outbox.retry_reply(reply.id, at=now + delay, error=code)
        log.warning("reply id=%s outcome=retry error=%s in_s=%.0f", reply.id, code, delay.total_seconds())

    # --- the background thread --------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="reply-sender", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.services.replies_queued.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        wake = self.services.replies_queued
        while not self._stop.is_set():
            # Cleared before draining, so a reply queued during the drain wakes the next round at once.
            wake.clear()
            try:
                self.drain()
            except Exception:  # the database is down, say: log it and try again at the next wake-up
                log.exception("reply sender: drain failed; retrying in %.0f s", self.poll_seconds)
            wake.wait(self.poll_seconds)
