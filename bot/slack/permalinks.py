"""Links to Slack messages, built from the workspace's URL instead of one chat.getPermalink call per message.

Slack documents the shape (chat.getPermalink's examples): `<workspace URL>archives/<channel>/p<ts without the dot>`,
and for a reply in a thread `...?thread_ts=<the thread's ts>&cid=<channel>`. The workspace URL is auth.test's `url`
("https://example.slack.com/"), learnt once per workspace and kept in the database (bot/storage/workspaces.py).
While it is not known (auth.test failed), the link is asked of Slack as before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.client import slack_code
from bot.storage.store import Store

log = logging.getLogger(__name__)

RETRY_AUTH_TEST_S = 600.0  # after a failed auth.test, links are asked of Slack for this long before trying again


def message_permalink(team_url: str, channel_id: str, ts: str, *, thread_ts: str | None = None) -> str:
    """The permalink of message `ts` in `channel_id`; `thread_ts`: the thread it replies in, if it is a reply."""
    link = f"{team_url.rstrip('/')}/archives/{channel_id}/p{ts.replace('.', '')}"
    if thread_ts and thread_ts != ts:
        link += f"?thread_ts={thread_ts}&cid={channel_id}"
    return link


class Permalinks:
    """A message's link: built from its workspace's URL when known, else from chat.getPermalink."""

    def __init__(
        self, store: Store, client: WebClient, *, clock: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.store = store
        self.client = client
        self.clock = clock
        self.monotonic = monotonic
        self._urls: dict[str, str] = {}  # a workspace's URL does not change often: read once per process
        self._failed: dict[str, float] = {}  # workspace -> monotonic time of its failed auth.test

    def team_url(self, team_id: str, bot_token: str | None) -> str | None:
        """The workspace's URL: from memory, the database, or (once) auth.test with its bot token; None: unknown."""
        url = self._urls.get(team_id)
        if url is not None:
            return url
        url = self.store.workspaces.get_many([team_id]).get(team_id)
        if url is None:
            url = self._learn(team_id, bot_token)
        if url is not None:
            self._urls[team_id] = url
        return url

    def _learn(self, team_id: str, bot_token: str | None) -> str | None:
        failed = self._failed.get(team_id)
        if bot_token is None or (failed is not None and self.monotonic() - failed < RETRY_AUTH_TEST_S):
            return None
        try:
            url = self.client.auth_test(token=bot_token).get("url")
        except (SlackApiError, OSError) as e:
            log.info("auth.test for permalinks failed team=%s error=%s", team_id,
                     slack_code(e) if isinstance(e, SlackApiError) else type(e).__name__)  # fmt: skip
            url = None
        if not isinstance(url, str) or not url.startswith("https://"):
            self._failed[team_id] = self.monotonic()
            return None
        self.store.workspaces.remember(team_id, url, now=self.clock())
        return url

    def link(self, *, team_url: str | None, token: str, channel_id: str, ts: str, thread_ts: str | None) -> str:
        """The link to one message (raises what the Web API client raises when it has to ask Slack)."""
        if team_url is not None and ts:
            return message_permalink(team_url, channel_id, ts, thread_ts=thread_ts)
        return self.client.chat_getPermalink(token=token, channel=channel_id, message_ts=ts)["permalink"]
