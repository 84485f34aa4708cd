"""Delivers due recaps: one tick claims what is due, builds each recap and posts it with the bot token.

`tick(now)` is a plain function of `now`; the scheduler only calls it every `recap.poll_seconds`.
A failed post leaves the recap pending with a later attempt time, so the next tick retries it.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import datetime, timedelta

from slack_sdk.errors import SlackApiError

from bot.domain.delivery import IN_FLIGHT, LOOKUP_FAILED, backoff
from bot.domain.recap import Recap, WaitingMessage, build_recap
from bot.services import Services
from bot.slack.blocks.recap import recap_blocks, recap_fallback_text
from bot.slack.client import request_error, retry_after, sending_client, slack_code, slack_retryable
from bot.storage.recaps import ClaimedRecap

log = logging.getLogger(__name__)

RECAP_EVENT_TYPE = "offhours_recap"  # message metadata on every recap, to find it again after a timeout
MAX_ROUNDS_PER_TICK = 100  # of up to 1,000 people each: a bound, not a target


class RecapSender:
    def __init__(self, services: Services, *, workers: int = 8) -> None:
        self.services = services
        self.store = services.store
        self.recaps = services.store.recaps
        self.client = sending_client(services.client)
        self.workers = workers
        self.due_page = 1000  # people per due query
        # Workspace -> until when Slack asked us to stop posting (429 Retry-After). Every recap tried meanwhile
        # would only be refused too, each after a full build, its permalinks and a post; held back instead,
        # it waits for that moment at the cost of one write (bench/RESULTS.md, morning fan-out).
        self._held_until: dict[str, datetime] = {}
        self._held_lock = threading.Lock()

    def tick(self, now: datetime | None = None) -> int:
        """Send every recap due at `now`; returns how many were posted."""
        now = now or self.services.clock()
        bot_tokens: dict[str, str | None] = {}  # one lookup per workspace per tick, not one per recap

        def deliver(recap: ClaimedRecap, messages: list[WaitingMessage] | None = None) -> bool:
            return self.deliver(recap, now=now, bot_tokens=bot_tokens, messages=messages)

        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="recap") as pool:
            # Each recap is posted as soon as it is claimed, so the (serial) claims overlap the posting
            # instead of all claims of the tick finishing first (bench/RESULTS.md, morning fan-out).
            futures = [pool.submit(deliver, recap) for recap in self.recaps.claim_retries(now=now)]
            # due_people answers at most `due_page` (1,000) people: keep claiming until a round finds no one new, so a
            # morning with more than that is sent in one tick instead of 1,000 per poll interval. A person claimed by
            # another process (or leased) is not claimed again, which ends the loop.
            for _round in range(MAX_ROUNDS_PER_TICK):
                claimed = 0
                # Held workspaces are left out of the query, so that they cannot fill its page and starve others.
                for team_id, user_id, due_at in self.recaps.due_people(
                    now=now, limit=self.due_page, skip_teams=self._held_teams(now)
                ):
                    if self.held_until(team_id, now=now) is not None:
                        continue  # claimed once Slack lets us post there again (a later tick)
                    claim = self.recaps.claim_new(team_id, user_id, due_at=due_at, now=now)
                    if claim is not None:
                        futures.append(pool.submit(deliver, *claim))
                        claimed += 1
                if claimed == 0:
                    break
                # Let this round's deliveries move their messages out of "pending" before asking again.
                wait(futures)
            return sum(future.result() for future in futures)

    def compose(self, recap_id: int, *, team_id: str, user_id: str, due_at: datetime, now: datetime,
                messages=None) -> tuple[Recap, str]:  # fmt: skip
        prefs = self.services.people.get(team_id, user_id)
        messages = self.recaps.read(recap_id) if messages is None else messages
        window = prefs.schedule.off_window(min((m.received_at for m in messages), default=due_at))
        # After downtime one recap can hold several windows' messages: the title runs to the end of the last one.
        last = prefs.schedule.off_window(max((m.received_at for m in messages), default=due_at))
        window_end = last[1] if last is not None and due_at < last[1] <= now else due_at
        content = build_recap(
            messages,
            window_start=window[0] if window else None,
            window_end=window_end,
            now=now,
            max_items=self.services.config.recap.max_items,
            due_at=due_at,
        )
        return content, prefs.tz

    def deliver(
        self,
        recap: ClaimedRecap,
        *,
        now: datetime,
        bot_tokens: dict[str, str | None] | None = None,
        messages: list[WaitingMessage] | None = None,
    ) -> bool:
        """Post one claimed recap. `messages`: what the claim already attached (else they are attached here)."""
        held = self.held_until(recap.team_id, now=now)
        if held is not None:
            # Not tried: if the attempt before was of unknown outcome, the next one must still look first.
            error = (recap.last_error or IN_FLIGHT) if recap.outcome_unknown else "ratelimited"
            self.recaps.retry(recap.id, at=held, error=error)
            return False
        if messages is None:
            messages = self.recaps.attach_and_read(recap, now=now)
        if not any(not m.done for m in messages):
            self.recaps.mark_empty(recap.id)  # everything was answered: no recap at all
            log.info("recap id=%s outcome=empty", recap.id)
            return False
        content, tz = self.compose(recap.id, team_id=recap.team_id, user_id=recap.user_id, due_at=recap.due_at,
                                   now=now, messages=messages)  # fmt: skip
        permalinks = self._permalinks(recap, content)
        blocks = recap_blocks(content, recap_id=recap.id, tz=tz, permalinks=permalinks)
        if bot_tokens is None:
            token = self.store.bot_token(recap.team_id)
        else:
            if recap.team_id not in bot_tokens:
                bot_tokens[recap.team_id] = self.store.bot_token(recap.team_id)
            token = bot_tokens[recap.team_id]
        if recap.outcome_unknown:
            # The last attempt may have posted before it timed out (or its process died): look first.
            try:
                found = self._already_posted(recap, bot_token=token)
            except (SlackApiError, OSError) as e:
                self._lookup_failed(recap, e, now=now)
                return False
            if found is not None:
                self.recaps.mark_sent(recap.id, channel_id=found[0], message_ts=found[1], now=now,
                                      late=content.late)  # fmt: skip
                log.info("recap id=%s outcome=found_posted", recap.id)
                self.services.metrics.settled("recap", "sent", due_at=recap.due_at, now=self.services.clock(),
                                              looked_up=True)  # metrics: found, not posted again  # fmt: skip
                return True
        return self._post(recap, content, tz=tz, blocks=blocks, token=token, now=now)

    def _post(self, recap: ClaimedRecap, content: Recap, *, tz: str, blocks: list[dict], token: str | None,
              now: datetime) -> bool:  # fmt: skip
        try:
            response = self.client.chat_postMessage(
                token=token,
                channel=recap.user_id,
                text=recap_fallback_text(content, tz),
                blocks=blocks,
                metadata={"event_type": RECAP_EVENT_TYPE, "event_payload": {"recap_id": str(recap.id)}},
            )
        except SlackApiError as e:
            self._failed(recap, e, now=now, hold_on_429=True)
            return False
        except OSError as e:
            self.recaps.retry(recap.id, at=self._later(now) + backoff(recap.attempts), error=request_error(e))
            self.services.metrics.settled("recap", "pending")  # metrics: retried
            return False
        self.recaps.mark_sent(recap.id, channel_id=response.get("channel") or recap.user_id,
                              message_ts=response.get("ts"), now=now, late=content.late)  # fmt: skip
        log.info("recap id=%s outcome=sent items=%d late=%s", recap.id, len(content.items), content.late)
        self.services.metrics.settled("recap", "sent", due_at=recap.due_at, now=self.services.clock())  # metrics
        return True

    def _already_posted(self, recap: ClaimedRecap, *, bot_token: str | None) -> tuple[str, str] | None:
        """(channel, ts) of this recap if an earlier attempt posted it, found by its metadata in the app's DM.

        The bot has no history scope; the person's own token (im:history) reads their DM with the app. Only
        called after an unknown outcome: conversations.history is rate-limited hard outside the Marketplace.
        """
        user_token = self.store.user_token(recap.team_id, recap.user_id)
        if user_token is None:
            return None
        channel = self.client.conversations_open(token=bot_token, users=recap.user_id)["channel"]["id"]
        history = self.client.conversations_history(
            token=user_token, channel=channel, oldest=f"{recap.due_at.timestamp():.6f}", include_all_metadata=True,
            limit=100,
        )  # fmt: skip
        for message in history.get("messages") or []:
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == RECAP_EVENT_TYPE and payload.get("recap_id") == str(recap.id):
                return channel, message.get("ts")
        return None

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

    def held_until(self, team_id: str, *, now: datetime) -> datetime | None:
        """When posting to this workspace may resume, if Slack has rate-limited it until after `now`."""
        until = self._held_until.get(team_id)
        return until if until is not None and now < until else None

    def _held_teams(self, now: datetime) -> list[str]:
        return [team_id for team_id, until in list(self._held_until.items()) if now < until]

    def _later(self, now: datetime) -> datetime:
        """The tick's `now`, or the clock if the tick has run for a while: a retry counts from the failure."""
        return max(now, self.services.clock())

    def _lookup_failed(self, recap: ClaimedRecap, error: Exception, *, now: datetime) -> None:
        """The lookup for an earlier post failed: retried, and the next attempt looks again first. A lookup's 429
        (conversations.history) says nothing about posting, so the workspace is not held."""
        if isinstance(error, SlackApiError) and not _retryable(error):
            self._failed(recap, error, now=now)  # refused for good: the messages wait for the next recap
            return
        status = error.response.status_code if isinstance(error, SlackApiError) else None
        delay = timedelta(seconds=retry_after(error)) if status == 429 else backoff(recap.attempts)
        self.recaps.retry(recap.id, at=self._later(now) + delay, error=LOOKUP_FAILED)
        log.warning("recap id=%s outcome=retry error=%s in_s=%.0f", recap.id, LOOKUP_FAILED, delay.total_seconds())
        self.services.metrics.settled("recap", "pending")  # metrics: retried

    def hold(self, team_id: str, until: datetime) -> None:
        """Post nothing to this workspace before `until` (what a 429 on a post does)."""
        with self._held_lock:
            self._held_until[team_id] = max(until, self._held_until.get(team_id, until))

    def _failed(self, recap: ClaimedRecap, error: SlackApiError, *, now: datetime, hold_on_429: bool = False) -> None:
        status = error.response.status_code
        code = _code(error)
        if not _retryable(error):
            # Slack refused for good (the bot's DM is gone, say). The messages are not lost: they go back to
            # waiting, due at the person's next working start, and come in the next recap.
            prefs = self.services.people.get(recap.team_id, recap.user_id)
            self.recaps.give_up(recap.id, error=code, release_until=prefs.schedule.next_start(now))
            log.warning("recap id=%s outcome=failed error=%s messages=released", recap.id, code)
            self.services.metrics.settled("recap", "failed")  # metrics
            return
        # Retryable failures are retried for as long as they last, backing off to once every 10 minutes.
        delay = timedelta(seconds=retry_after(error)) if status == 429 else backoff(recap.attempts)
        at = self._later(now) + delay
        if status == 429 and hold_on_429:
            # Slack's answer to a post holds for the workspace's other recaps too (a per-channel limit holds it
            # only for the Retry-After it names, a second or so).
            self.hold(recap.team_id, at)
        # Recorded as known, although after a 5xx or an internal_error Slack may have posted it: the retry posts
        # without looking first. Looking (conversations.history) is allowed about once a minute per workspace, so
        # after an incident that failed 1,000 recaps the last would go out some 16 hours late; a person may rather
        # get a recap twice. Timeouts and crashes, which fail one post at a time, are still looked up.
        self.recaps.retry(recap.id, at=at, error=code)
        log.warning("recap id=%s outcome=retry error=%s in_s=%.0f", recap.id, code, delay.total_seconds())
        self.services.metrics.settled("recap", "pending")  # metrics: retried

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


def _retryable(error: SlackApiError) -> bool:
    return slack_retryable(error.response.status_code, _code(error))


def _code(error: Exception) -> str:
    if isinstance(error, SlackApiError):
        return slack_code(error)
    return type(error).__name__
