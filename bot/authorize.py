"""Bolt authorization straight from the installation store, without an auth.test call per request.

Bolt's InstallationStoreAuthorize calls auth.test on every request (its cache is off by default and
per-process): one or two Web API round trips on the event path, against a 3-second ack budget. Everything
AuthorizeResult needs is already in the installation rows.
"""

from __future__ import annotations

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.authorize import Authorize
from slack_bolt.context import BoltContext
from slack_sdk.oauth.installation_store import InstallationStore


class StoreAuthorize(Authorize):
    def __init__(self, installation_store: InstallationStore) -> None:
        super().__init__()
        self.installation_store = installation_store

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
        bot = self.installation_store.find_bot(
            enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=context.is_enterprise_install
        )
        if bot is None:
            return None  # not installed in this workspace: Bolt answers without running listeners
        user = None
        if user_id:
            user = self.installation_store.find_installation(
                enterprise_id=enterprise_id, team_id=team_id, user_id=user_id,
                is_enterprise_install=context.is_enterprise_install,
            )  # fmt: skip
        has_user = user is not None and user.user_id == user_id and user.user_token
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id,
            bot_user_id=bot.bot_user_id,
            bot_id=bot.bot_id,
            bot_token=bot.bot_token,
            bot_scopes=bot.bot_scopes,
            user_id=user_id,
            user_token=user.user_token if has_user else None,
            user_scopes=user.user_scopes if has_user else None,
        )
