"""The Services bundle that listeners and workers share, and the clock: imported by both, importing neither."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from slack_sdk import WebClient

from bot.channel_hours import ChannelHoursService
from bot.config import Config
from bot.metrics import Metrics
from bot.people import PeopleService
from bot.settings import Settings
from bot.slack.paths import INSTALL_PATH
from bot.slack.profiles import ProfileCache
from bot.storage import ops
from bot.storage.store import Store

if TYPE_CHECKING:  # built in build_services: this module imports no worker at run time
    from bot.mentions import MentionsService
    from bot.slack.home_refresh import HomeRefresher

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock; the only place Offhours reads the time (tests hand in their own)."""
    return datetime.now(UTC)


@dataclass
class Services:
    """What listeners and workers share: passed in, never imported as globals."""

    config: Config
    settings: Settings
    store: Store
    client: WebClient
    clock: Clock
    people: PeopleService
    profiles: ProfileCache
    # Republishes a person's Home after a change made elsewhere; its thread is started and stopped by the runtime.
    home_refresh: HomeRefresher
    # Set when a reply is queued, so the reply sender wakes at once instead of at its next poll.
    replies_queued: threading.Event = field(default_factory=threading.Event)
    # Set when an urgent note is recorded, so the urgent sender wakes at once (bot/workers/urgent.py).
    urgent_queued: threading.Event = field(default_factory=threading.Event)
    metrics: Metrics = field(default_factory=Metrics)  # this app's own registry (bot/metrics.py)
    # Whose channel mentions and group DMs are answered: the in-memory view the message listener reads
    mentions: MentionsService = field(default=None)  # type: ignore[assignment]  # always set by build_services
    channel_hours: ChannelHoursService | None = None  # channel office hours (issue 25), built in build_services

    def install_url(self, headers: dict | None = None) -> str:
        """The public /slack/install URL: OFFHOURS_BASE_URL, else what the request says our host is."""
        if self.settings.base_url:
            return self.settings.base_url + INSTALL_PATH
        headers = headers or {}

        def header(name: str) -> str | None:
            value = headers.get(name) or headers.get(name.lower())
            return value[0] if isinstance(value, list) else value

        host = header("x-forwarded-host") or header("host") or f"localhost:{self.settings.port}"
        proto = header("x-forwarded-proto") or ("http" if host.startswith(("localhost", "127.")) else "https")
        return f"{proto}://{host}{INSTALL_PATH}"


def build_services(
    config: Config,
    store: Store,
    *,
    settings: Settings,
    client: WebClient | None = None,
    clock: Clock = utc_now,
) -> Services:
    """Build the services once per process (the runtime does; tests hand in their fake Slack's client)."""
    from bot.mentions import MentionsService
    from bot.slack.client import count_errors, make_client
    from bot.slack.home_refresh import HomeRefresher

    metrics = Metrics()
    metrics.watch_pending(lambda now: ops.pending(store.engine, now=now), clock)
    client = count_errors(client or make_client(settings), metrics)
    people = PeopleService(store, config, clock=clock)

    def reschedule_recap(team_id: str, user_id: str) -> None:
        # Hours or days off changed: the waiting messages' recap moves to the new first working interval.
        schedule = people.get(team_id, user_id).schedule
        store.inbox.reschedule(team_id, user_id, schedule.next_start)

    people.on_change.append(reschedule_recap)
    return Services(
        config=config,
        settings=settings,
        store=store,
        client=client,
        clock=clock,
        people=people,
        profiles=ProfileCache(store, client, clock=clock),
        home_refresh=HomeRefresher(),
        metrics=metrics,
        mentions=MentionsService(store, config, people, clock=clock),
        channel_hours=ChannelHoursService(store, clock=clock),
    )
