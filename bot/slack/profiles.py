"""A cache of people's Slack profile zones (users.info), kept in the database so every process shares it.

Asked only while a person's zone is not known yet (PeopleService.ensure decides): at connect time, on /hours and
on a Home visit, so one failed lookup is made up for at the next contact.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.client import ack_client, slack_code
from bot.storage.store import Store

log = logging.getLogger(__name__)

MAX_AGE = timedelta(days=1)
# After users.info failed, a person's later contacts do not ask again for this long: inside a 3-second ack, every
# /hours or Home visit would otherwise wait out the lookup's timeout again while Slack is in trouble.
RETRY_FAILED_AFTER = timedelta(minutes=15)


class ProfileCache:
    def __init__(self, store: Store, client: WebClient, *, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.client = client
        self.clock = clock
        self._failed_at: dict[tuple[str, str], datetime] = {}  # per process: a hint, not a record
        self._failed_lock = threading.Lock()

    def timezone_within_ack(self, team_id: str, user_id: str, *, token: str | None, source: str) -> str | None:
        """timezone_or_none() for a lookup inside Slack's 3-second ack (/hours, app_home_opened): a short timeout
        and no retries (never longer than the app's own client timeout, which the tests set short)."""
        quick = ack_client(self.client)
        return self.timezone_or_none(team_id, user_id, token=token, source=source, client=quick)

    def timezone(self, team_id: str, user_id: str, *, token: str | None, client: WebClient | None = None) -> str | None:
        """The person's profile zone, from the cache while fresh, else from users.info (raises SlackApiError).

        `client`: another client for this call, e.g. one with a short timeout inside a 3-second ack.
        """
        now = self.clock()
        cached = self.store.profiles.cached(team_id, user_id)
        if cached is not None and now - cached.fetched_at < MAX_AGE:
            return cached.tz
        user = (client or self.client).users_info(token=token, user=user_id)["user"]
        tz = user.get("tz")
        # Not kept when they were forgotten while Slack was being asked: nothing is kept about them then.
        self.store.profiles.remember(team_id, user_id, tz=tz, is_bot=bool(user.get("is_bot")), now=now)
        return tz

    def timezone_or_none(
        self, team_id: str, user_id: str, *, token: str | None, source: str, client: WebClient | None = None
    ) -> str | None:
        """timezone(), or None when Slack cannot answer now (logged under `source`): the config's fallback zone
        applies meanwhile, and a contact after RETRY_FAILED_AFTER asks again."""
        key = (team_id, user_id)
        with self._failed_lock:
            failed_at = self._failed_at.get(key)
        if failed_at is not None and self.clock() - failed_at < RETRY_FAILED_AFTER:
            return None
        try:
            tz = self.timezone(team_id, user_id, token=token, client=client)
        except SlackApiError as e:
            log.warning("%s: users.info failed error=%s", source, slack_code(e))
        except OSError as e:  # a timeout or a dropped connection
            log.warning("%s: users.info failed error=%s", source, type(e).__name__)
        else:
            with self._failed_lock:
                self._failed_at.pop(key, None)
            return tz
        self._remember_failure(key, now=self.clock())
        return None

    def _remember_failure(self, key: tuple[str, str], *, now: datetime) -> None:
        with self._failed_lock:
            for old_key, at in list(self._failed_at.items()):  # kept short: only failures still remembered
                if now - at >= RETRY_FAILED_AFTER:
                    del self._failed_at[old_key]
            self._failed_at[key] = now
