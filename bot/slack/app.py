"""The Bolt app factory: a Bolt app wired to Offhours' services, with OAuth install/connect and every listener.

No module-level app: every test builds its own with its own database, fake Slack and clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from slack_bolt import App
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.oauth import OAuthFlow
from slack_bolt.oauth.callback_options import CallbackOptions, FailureArgs, SuccessArgs
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_bolt.response import BoltResponse
from slack_sdk import WebClient
from slack_sdk.oauth.installation_store import Installation

from bot.config import Config, Settings
from bot.services import Services, build_services, utc_now
from bot.slack.authorize import StoreAuthorize
from bot.slack.paths import BOT_SCOPES, INSTALL_PATH, REDIRECT_PATH, USER_SCOPES
from bot.storage.store import Store

log = logging.getLogger(__name__)


@dataclass
class OffhoursApp:
    """The Bolt app and the services behind it."""

    bolt: App
    services: Services


def create_app(
    config: Config,
    store: Store,
    *,
    settings: Settings,
    client: WebClient | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> OffhoursApp:
    """Build the Bolt app with OAuth install/connect, every listener, and one error handler."""
    from bot.slack.listeners import register_all

    services = build_services(config, store, settings=settings, client=client, clock=clock)
    oauth_settings = OAuthSettings(
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        scopes=list(BOT_SCOPES),
        user_scopes=list(USER_SCOPES),
        installation_store=store.installation_store,
        state_store=store.oauth_state_store,
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        redirect_uri=(settings.base_url + REDIRECT_PATH) if settings.base_url else None,
        callback_options=CallbackOptions(success=_on_installed(services), failure=_on_install_failed),
    )
    bolt = App(
        signing_secret=settings.signing_secret,
        client=services.client,
        oauth_flow=_OAuthFlow(client=services.client, logger=logging.getLogger("bot.bolt"), settings=oauth_settings),
        # An Authorize subclass (Bolt's own kind of authorizer); Bolt's annotation names only plain callables.
        authorize=cast(Callable[..., AuthorizeResult], StoreAuthorize(store)),
        # Listeners run before the HTTP 200 so that an after-hours DM is stored before Slack hears "ok";
        # the slow part (posting the reply) happens later in the reply sender.
        process_before_response=True,
        logger=logging.getLogger("bot.bolt"),
    )
    register_all(bolt, services)

    @bolt.error
    def on_error(error: Exception, body: dict, logger: logging.Logger) -> BoltResponse:
        # Never log the body: it holds message text. A 500 makes Slack redeliver the event later.
        log.error(
            "unhandled error type=%s error=%s", body.get("type") if body else None, type(error).__name__, exc_info=error
        )
        return BoltResponse(status=500, body="")

    return OffhoursApp(bolt=bolt, services=services)


class _OAuthFlow(OAuthFlow):
    """Bolt's flow, with a timed-out oauth.v2.access shown as its "try again" page rather than a bare 500."""

    def run_installation(self, code: str) -> Installation | None:
        try:
            return super().run_installation(code)
        except OSError as e:  # Bolt catches SlackApiError only; None makes it answer with the failure page
            log.warning("install: oauth.v2.access failed error=%s", type(e).__name__)
            return None


def _on_installed(services: Services) -> Callable[[SuccessArgs], BoltResponse]:
    def success(args: SuccessArgs) -> BoltResponse:
        installation = args.installation
        if installation.user_token and installation.user_id:
            team_id, user_id = installation.team_id or "", installation.user_id
            # A person connecting to an installed workspace brings only a user token (no users:read): ask with
            # the workspace's bot token. Asked only while their zone is unknown; a failure never fails the connect.
            bot_token = installation.bot_token or services.store.bot_token(team_id)
            services.people.ensure(
                team_id,
                user_id,
                profile_tz=lambda: services.profiles.timezone_or_none(
                    team_id, user_id, token=bot_token, source="install"
                ),
            )
            log.info("install: connected team=%s user=%s", installation.team_id, installation.user_id)
        return args.default.success(args)

    return success


def _on_install_failed(args: FailureArgs) -> BoltResponse:
    log.warning("install: failed reason=%s status=%s", args.reason, args.suggested_status_code)
    return args.default.failure(args)
