"""A recap's message: its content and permalinks, built for the first post and again after a "Done" click."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, time, timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.domain.hours.timezones import zone
from bot.domain.recap import Recap, WaitingMessage, build_recap
from bot.services import Services
from bot.slack.blocks.recap import recap_blocks, recap_fallback_text
from bot.slack.client import slack_code

log = logging.getLogger(__name__)


class RecapRenderer:
    """Builds a recap's content and links: for its first post, and again after a "Done" click."""

    def __init__(self, services: Services, client: WebClient | None = None) -> None:
        self.services = services
        self.store = services.store
        self.client = client or services.client

    def compose(self, recap_id: int, *, team_id: str, user_id: str, due_at: datetime, now: datetime,
                messages: Sequence[WaitingMessage] | None = None) -> tuple[Recap, str]:  # fmt: skip
        prefs = self.services.people.get(team_id, user_id)
        held = self.store.recaps.read(recap_id) if messages is None else list(messages)
        window = prefs.schedule.off_window(min((m.received_at for m in held), default=due_at))
        # After downtime one recap can hold several windows' messages: the title runs to the end of the last one.
        last = prefs.schedule.off_window(max((m.received_at for m in held), default=due_at))
        window_end = last[1] if last is not None and due_at < last[1] <= now else due_at
        content = build_recap(
            held,
            window_start=window[0] if window else None,
            window_end=window_end,
            now=now,
            max_items=self.services.config.recap.max_items,
            due_at=due_at,
            urgent=self.store.urgent.for_recap(
                team_id, user_id, {m.sender_id for m in held},
                since=min((m.received_at for m in held), default=due_at),
            ),
        )  # fmt: skip
        return content, prefs.tz

    def permalinks(self, recap_id: int, *, team_id: str, user_id: str, content: Recap) -> dict[str, str]:
        token = self.store.user_token(team_id, user_id)
        links: dict[str, str] = {}
        for item in content.items:
            if item.done or token is None:
                continue
            try:
                links[item.channel_id] = self.client.chat_getPermalink(
                    # A mention's link opens the message itself; a DM's, the thread it started.
                    token=token,
                    channel=item.channel_id,
                    message_ts=item.first_ts if item.source != "dm" and item.first_ts else item.thread_ts,
                )["permalink"]
            except (SlackApiError, OSError) as e:
                # Still useful without the link: the item names the sender and the time.
                log.info(
                    "recap id=%s permalink failed error=%s",
                    recap_id,
                    slack_code(e) if isinstance(e, SlackApiError) else type(e).__name__,
                )
        return links

    def promises(self, *, team_id: str, user_id: str, content: Recap, tz: str, now: datetime) -> dict[str, datetime]:
        """The reply-by times auto-replies promised that fall on the recap's (local) day, per conversation."""
        local = zone(tz)
        day = now.astimezone(local).date()
        start = local.localize(datetime.combine(day, time.min))  # type: ignore[attr-defined]
        end = local.localize(datetime.combine(day + timedelta(days=1), time.min))  # type: ignore[attr-defined]
        channels = [item.channel_id for item in content.items if not item.done]
        return self.store.nudges.promised_today(team_id, user_id, channels, start=start, end=end)

    def refresh(self, recap_id: int, *, now: datetime) -> None:
        """Re-render a sent recap after a "Done" click (chat.update with the bot token)."""
        row = self.store.recaps.get(recap_id)
        if row is None or row["state"] != "sent" or not row["message_ts"]:
            return
        team_id, user_id = row["team_id"], row["user_id"]
        content, tz = self.compose(recap_id, team_id=team_id, user_id=user_id, due_at=row["due_at"],
                                   now=row["sent_at"] or now)  # fmt: skip
        permalinks = self.permalinks(recap_id, team_id=team_id, user_id=user_id, content=content)
        promises = self.promises(team_id=team_id, user_id=user_id, content=content, tz=tz, now=row["sent_at"] or now)
        self.client.chat_update(
            token=self.store.bot_token(team_id),
            channel=row["channel_id"],
            ts=row["message_ts"],
            text=recap_fallback_text(content, tz),
            blocks=recap_blocks(content, recap_id=recap_id, tz=tz, permalinks=permalinks, promises=promises),
        )
