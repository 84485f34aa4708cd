"""Uninstalls and revocations: forget the tokens and the data that went with them."""

from __future__ import annotations

import logging

from slack_bolt import App

from bot.services import Services
from bot.slack import payloads

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    store = services.store

    @app.event("tokens_revoked")
    def tokens_revoked(event: dict, body: dict) -> None:
        team_id = payloads.ident(body, "team_id")
        tokens = payloads.obj(event, "tokens")
        oauth = tokens.get("oauth")
        users = [u for u in oauth if payloads.is_id(u)] if isinstance(oauth, list) else []
        store.revoke_user_tokens(team_id, users)
        if tokens.get("bot"):
            store.revoke_bot_tokens(team_id)
        log.info(
            "event type=tokens_revoked outcome=forgotten team=%s users=%d bot=%s",
            team_id,
            len(users),
            bool(tokens.get("bot")),
        )
        services.metrics.event("tokens_revoked", "forgotten")

    @app.event("app_uninstalled")
    def app_uninstalled(body: dict) -> None:
        team_id = payloads.ident(body, "team_id")
        store.forget_team(team_id)
        log.info("event type=app_uninstalled outcome=forgotten team=%s", team_id)
        services.metrics.event("app_uninstalled", "forgotten")
