"""Bolt authorization straight from the installation store, without an auth.test call per request.

Bolt's InstallationStoreAuthorize calls auth.test on every request (its cache is off by default and
per-process): one or two Web API round trips on the event path, against a 3-second ack budget. Everything
AuthorizeResult needs is already in the installation rows.
"""

from __future__ import annotations

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.authorize import Authorize
from slack_bolt.context import BoltContext

from bot.storage.store import Store


class StoreAuthorize(Authorize):
    """One read per request, usually from the token store's cache: the workspace's bot. Listeners look up the
    person tokens they need themselves (a message event's sender is not whose token saw it), so Bolt's
    `context.user_token` is left empty."""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store

    def __call__(
        self,
        *,
        context: BoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        actor_enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        actor_user_id: str | None = None,
    ) -> AuthorizeResult | None:
        bot = self.store.bot(team_id or "", enterprise_id=enterprise_id)
        if bot is None:
            return None  # not installed in this workspace: Bolt answers without running listeners
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id,
            bot_user_id=bot.bot_user_id,
            bot_id=bot.bot_id,
            bot_token=bot.bot_token,
            bot_scopes=bot.bot_scopes,
            user_id=user_id,
        )
