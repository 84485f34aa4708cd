"""Delivers due recaps: one tick claims what is due, builds each recap and posts it with the bot token.

`tick(now)` is a plain function of `now`; the scheduler only calls it every `recap.poll_seconds`.
A failed post leaves the recap pending with a later attempt time, so the next tick retries it.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from slack_sdk.errors import SlackApiError

from bot.app import Services
from bot.blocks.recap import recap_blocks, recap_fallback_text
from bot.recap import Recap, build_recap
from bot.recap_store import MAX_RECAP_ATTEMPTS, ClaimedRecap
from bot.reply_sender import backoff, retry_after, sending_client

log = logging.getLogger(__name__)


class RecapSender:
    def __init__(self, services: Services, *, workers: int = 8) -> None:
        self.services = services
        self.store = services.store
        self.recaps = services.store.recaps
        self.client = sending_client(services.client)
        self.workers = workers

    def tick(self, now: datetime | None = None) -> int:
        """Send every recap due at `now`; returns how many were posted."""
        now = now or self.services.clock()
        claimed = list(self.recaps.claim_retries(now=now))
        for team_id, user_id, due_at in self.recaps.due_people(now=now):
            recap = self.recaps.claim_new(team_id, user_id, due_at=due_at, now=now)
            if recap is not None:
                claimed.append(recap)
        if not claimed:
            return 0
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="recap") as pool:
            return sum(pool.map(lambda recap: self.deliver(recap, now=now), claimed))

    def compose(self, recap_id: int, *, team_id: str, user_id: str, due_at: datetime, now: datetime,
                messages=None) -> tuple[Recap, str]:  # fmt: skip
        prefs = self.services.people.get(team_id, user_id)
        messages = self.recaps.read(recap_id) if messages is None else messages
        window = prefs.schedule.off_window(min((m.received_at for m in messages), default=due_at))
        content = build_recap(
            messages,
            window_start=window[0] if window else None,
            window_end=due_at,
            now=now,
            max_items=self.services.config.recap.max_items,
        )
        return content, prefs.tz

    def deliver(self, recap: ClaimedRecap, *, now: datetime) -> bool:
        messages = self.recaps.attach_and_read(recap, now=now)
        if not any(not m.done for m in messages):
            self.recaps.mark_empty(recap.id)  # everything was answered: no recap at all
            log.info("recap id=%s outcome=empty", recap.id)
            return False
        content, tz = self.compose(recap.id, team_id=recap.team_id, user_id=recap.user_id, due_at=recap.due_at,
                                   now=now, messages=messages)  # fmt: skip
        permalinks = self._permalinks(recap, content)
        blocks = recap_blocks(content, recap_id=recap.id, tz=tz, permalinks=permalinks)
        token = self.store.bot_token(recap.team_id)
        try:
            response = self.client.chat_postMessage(
                token=token, channel=recap.user_id, text=recap_fallback_text(content, tz), blocks=blocks
            )
        except SlackApiError as e:
            self._failed(recap, e, now=now)
            return False
        except OSError as e:
            self.recaps.retry(recap.id, at=now + backoff(recap.attempts), error=type(e).__name__)
            return False
        self.recaps.mark_sent(recap.id, channel_id=response.get("channel") or recap.user_id,
                              message_ts=response.get("ts"), now=now, late=content.late)  # fmt: skip
        log.info("recap id=%s outcome=sent items=%d late=%s", recap.id, len(content.items), content.late)
        return True

    def _permalinks(self, recap: ClaimedRecap, content: Recap) -> dict[str, str]:
        token = self.store.user_token(recap.team_id, recap.user_id)
        links: dict[str, str] = {}
        for item in content.items:
            if item.done or token is None:
                continue
            try:
                links[item.channel_id] = self.client.chat_getPermalink(
                    token=token, channel=item.channel_id, message_ts=item.thread_ts
                )["permalink"]
            except (SlackApiError, OSError) as e:
                # Still useful without the link: the item names the sender and the time.
                log.info("recap id=%s permalink failed error=%s", recap.id, _code(e))
        return links

    def _failed(self, recap: ClaimedRecap, error: SlackApiError, *, now: datetime) -> None:
        status = error.response.status_code
        code = _code(error)
        if (status != 429 and status < 500 and code not in ("ratelimited",)) or recap.attempts >= MAX_RECAP_ATTEMPTS:
            self.recaps.give_up(recap.id, error=code)
            log.warning("recap id=%s outcome=failed error=%s", recap.id, code)
            return
        delay = timedelta(seconds=retry_after(error)) if status == 429 else backoff(recap.attempts)
        self.recaps.retry(recap.id, at=now + delay, error=code)
        log.warning("recap id=%s outcome=retry error=%s in_s=%.0f", recap.id, code, delay.total_seconds())

    def refresh(self, recap_id: int, *, now: datetime) -> None:
        """Re-render a sent recap after a "Done" click (chat.update with the bot token)."""
        row = self.recaps.get(recap_id)
        if row is None or row["state"] != "sent" or not row["message_ts"]:
            return
        content, tz = self.compose(recap_id, team_id=row["team_id"], user_id=row["user_id"], due_at=row["due_at"],
                                   now=row["sent_at"] or now)  # fmt: skip
        permalinks = self._permalinks(
            ClaimedRecap(recap_id, row["team_id"], row["user_id"], row["due_at"], row["attempts"]), content
        )
        self.client.chat_update(
            token=self.store.bot_token(row["team_id"]),
            channel=row["channel_id"],
            ts=row["message_ts"],
            text=recap_fallback_text(content, tz),
            blocks=recap_blocks(content, recap_id=recap_id, tz=tz, permalinks=permalinks),
        )


def _code(error: Exception) -> str:
    if isinstance(error, SlackApiError):
        return str(error.response.get("error") or error.response.status_code)
    return type(error).__name__
