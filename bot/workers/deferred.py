"""Deferred DMs: the connected person wrote a DM whose other member Slack would not name before the ack (a 429,
a 5xx, the network). The listener kept it in deferred_dms and answered 200; this job looks the member up later,
honouring Retry-After, and records the DM through the listener's own path (bot/slack/inbound.py).

A row goes once resolved, or once nothing can come of it (the writer is disconnected, the channel is no 1:1 DM).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from slack_sdk.errors import SlackApiError

from bot.domain import autoreply
from bot.domain.autoreply import DirectMessage
from bot.services import Services
from bot.slack.client import REVOKED, retry_after, sending_client, slack_code, slack_retryable
from bot.slack.inbound import record_for_other_member
from bot.storage.deferred_dms import DeferredDm

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=1)


class _Later:
    """The lookup was refused again: the row was rescheduled."""


LATER = _Later()


class DeferredDmResolver:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store
        self.client = sending_client(services.client)  # never sleeps: a 429 reschedules the row

    def tick(self, *, now: datetime) -> int:
        """Resolve the deferred DMs due at `now`; returns how many were settled."""
        settled = 0
        for dm in self.store.deferred_dms.due(now=now):
            try:
                settled += self._resolve(dm, now=now)
            except Exception as e:  # one row that keeps failing must not hold back every other deferred DM
                log.exception("deferred dm failed team=%s attempts=%d error=%s", dm.team_id, dm.attempts + 1,
                              type(e).__name__)  # fmt: skip
                backoff = min(timedelta(seconds=10 * 2**dm.attempts), MAX_BACKOFF)
                self.store.deferred_dms.reschedule(dm, at=now + backoff)  # kept: tried again later, never dropped
        return settled

    def _resolve(self, dm: DeferredDm, *, now: datetime) -> int:
        """Look the DM's other member up and record the DM for them: 1 when the row is settled, 0 when it waits."""
        other = self._other_member(dm, now)
        if isinstance(other, _Later):
            return 0
        outcome = "ignored:no_member"
        if other is not None:
            message = DirectMessage(
                team_id=dm.team_id, channel_id=dm.channel_id, channel_type="im", ts=dm.ts,
                thread_ts=dm.thread_ts, sender_id=dm.writer_id, subtype=None, is_bot=False,
                metadata_event_type=None, text=dm.text or "",
            )  # fmt: skip
            reason = autoreply.ignore_reason(message, recipient_id=other)
            outcome = f"ignored:{reason}" if reason else record_for_other_member(self.services, message, other)
        self.store.deferred_dms.resolved(dm)
        log.info("deferred dm resolved outcome=%s team=%s attempts=%d", outcome, dm.team_id, dm.attempts + 1)
        return 1

    def _other_member(self, dm: DeferredDm, now: datetime) -> str | _Later | None:
        members = self.store.dm_channels.members(dm.team_id, dm.channel_id)
        if members is not None:  # learned meanwhile (another event of this DM)
            return members[1] if members[0] == dm.writer_id else members[0]
        token = self.store.user_token(dm.team_id, dm.writer_id)
        if token is None:
            return None  # disconnected since: nothing is recorded through them
        backoff = min(timedelta(seconds=10 * 2**dm.attempts), MAX_BACKOFF)
        try:
            other = self.client.conversations_info(token=token, channel=dm.channel_id)["channel"].get("user")
        except SlackApiError as e:
            code = slack_code(e)
            log.warning("deferred dm: conversations.info failed error=%s attempts=%d", code, dm.attempts + 1)
            if code in REVOKED:
                self.store.revoke_user_tokens(dm.team_id, [dm.writer_id])
                return None
            if slack_retryable(e.response.status_code, code):
                wait = timedelta(seconds=retry_after(e, default=backoff.total_seconds()))
                self.store.deferred_dms.reschedule(dm, at=now + max(wait, timedelta(seconds=1)))
                return LATER
            return None
        except OSError as e:
            log.warning("deferred dm: conversations.info failed error=%s attempts=%d", type(e).__name__, dm.attempts)
            self.store.deferred_dms.reschedule(dm, at=now + backoff)
            return LATER
        if not isinstance(other, str) or not other:
            return None  # no 1:1 DM: no one to record it for
        self.store.dm_channels.remember(dm.team_id, dm.channel_id, dm.writer_id, other)
        return other
