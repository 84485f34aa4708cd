"""A recap's message: its content and permalinks, built for the first post and again after a "Done" click.

The recap sender builds its recaps a batch at a time (`build_many`: one read per table for the whole batch, not per
recap); a "Done" click rebuilds one (`refresh`) the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.domain.hours.timezones import zone
from bot.domain.preferences import Preferences
from bot.domain.recap import Recap, WaitingMessage, build_recap
from bot.services import Services
from bot.slack.blocks.recap import recap_blocks, recap_fallback_text
from bot.slack.client import slack_code
from bot.slack.permalinks import Permalinks

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecapToBuild:
    """One recap of a batch: whose, for which window, and the messages it holds."""

    recap_id: int
    user_id: str
    due_at: datetime
    messages: Sequence[WaitingMessage]


@dataclass(frozen=True, slots=True)
class BuiltRecap:
    """A recap's content and what its blocks need besides: the person's zone and token, the promised reply-by
    times, the workspace's URL (None: links are asked of Slack)."""

    content: Recap
    tz: str
    promises: dict[str, datetime]
    user_token: str | None
    team_url: str | None


class RecapRenderer:
    """Builds recaps' content and links: for their first post, and again after a "Done" click."""

    def __init__(self, services: Services, client: WebClient | None = None) -> None:
        self.services = services
        self.store = services.store
        self.client = client or services.client
        self.links = Permalinks(services.store, self.client, clock=services.clock)

    def build_many(
        self, team_id: str, recaps: Sequence[RecapToBuild], *, now: datetime, bot_token: str | None
    ) -> dict[int, BuiltRecap]:
        """Recap id -> its content, for recaps of one workspace: settings, tokens, urgent notes and promises are
        read once for all of them."""
        users = {r.user_id for r in recaps}
        prefs = self.services.people.get_many(team_id, users)
        tokens = self.store.user_tokens(team_id, users)
        urgent = self.store.urgent.for_recaps(team_id, {
            r.recap_id: (r.user_id, {m.sender_id for m in r.messages}, _earliest(r)) for r in recaps
        })  # fmt: skip
        contents = {r.recap_id: self._content(r, prefs[r.user_id], urgent.get(r.recap_id, {}), now=now) for r in recaps}
        promises = self.store.nudges.promised_today_many(team_id, {
            r.recap_id: (r.user_id, [i.channel_id for i in contents[r.recap_id].items if not i.done],
                         *_local_day(prefs[r.user_id].tz, now))
            for r in recaps
        })  # fmt: skip
        team_url = self.links.team_url(team_id, bot_token) if tokens else None
        built = {}
        for r in recaps:
            built[r.recap_id] = BuiltRecap(content=contents[r.recap_id], tz=prefs[r.user_id].tz,
                                           promises=promises.get(r.recap_id, {}), user_token=tokens.get(r.user_id),
                                           team_url=team_url)  # fmt: skip
        return built

    def _content(self, recap: RecapToBuild, prefs: Preferences, urgent: dict[str, str], *, now: datetime) -> Recap:
        held = list(recap.messages)
        window = prefs.schedule.off_window(_earliest(recap))
        # After downtime one recap can hold several windows' messages: the title runs to the end of the last one.
        last = prefs.schedule.off_window(max((m.received_at for m in held), default=recap.due_at))
        window_end = last[1] if last is not None and recap.due_at < last[1] <= now else recap.due_at
        return build_recap(held, window_start=window[0] if window else None, window_end=window_end, now=now,
                           max_items=self.services.config.recap.max_items, due_at=recap.due_at,
                           urgent=urgent)  # fmt: skip

    def permalinks(self, recap_id: int, built: BuiltRecap) -> dict[str, str]:
        """Channel -> the link of each conversation not ticked off (with the person's token when Slack is asked)."""
        token = built.user_token
        links: dict[str, str] = {}
        for item in built.content.items:
            if item.done or token is None:
                continue
            # A mention's link opens the message itself (in its thread, if a reply); a DM's, the thread it started.
            ts = item.first_ts if item.source != "dm" and item.first_ts else item.thread_ts
            try:
                links[item.channel_id] = self.links.link(
                    team_url=built.team_url, token=token, channel_id=item.channel_id, ts=ts, thread_ts=item.thread_ts
                )
            except (SlackApiError, OSError) as e:
                # Still useful without the link: the item names the sender and the time.
                log.info(
                    "recap id=%s permalink failed error=%s",
                    recap_id,
                    slack_code(e) if isinstance(e, SlackApiError) else type(e).__name__,
                )
        return links

    def blocks(self, recap_id: int, built: BuiltRecap) -> list[dict]:
        return recap_blocks(built.content, recap_id=recap_id, tz=built.tz, permalinks=self.permalinks(recap_id, built),
                            promises=built.promises)  # fmt: skip

    def refresh(self, recap_id: int, *, now: datetime) -> None:
        """Re-render a sent recap after a "Done" click (chat.update with the bot token)."""
        row = self.store.recaps.get(recap_id)
        if row is None or row["state"] != "sent" or not row["message_ts"]:
            return
        team_id = row["team_id"]
        bot_token = self.store.bot_token(team_id)
        recap = RecapToBuild(recap_id=recap_id, user_id=row["user_id"], due_at=row["due_at"],
                             messages=self.store.recaps.read(recap_id))  # fmt: skip
        built = self.build_many(team_id, [recap], now=row["sent_at"] or now, bot_token=bot_token)[recap_id]
        self.client.chat_update(
            token=bot_token,
            channel=row["channel_id"],
            ts=row["message_ts"],
            text=recap_fallback_text(built.content, built.tz),
            blocks=self.blocks(recap_id, built),
        )


def _earliest(recap: RecapToBuild) -> datetime:
    return min((m.received_at for m in recap.messages), default=recap.due_at)


def _local_day(tz: str, now: datetime) -> tuple[datetime, datetime]:
    """The person's (local) day of `now`, as [start, end): the reply-by times a recap shows fall in it."""
    local = zone(tz)
    day = now.astimezone(local).date()
    start = local.localize(datetime.combine(day, time.min))  # type: ignore[attr-defined]
    end = local.localize(datetime.combine(day + timedelta(days=1), time.min))  # type: ignore[attr-defined]
    return start, end
