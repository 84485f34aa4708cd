"""The Bolt app factory: a Bolt app wired to Offhours' services, with OAuth install/connect and every listener.

No module-level app: every test builds its own with its own database, fake Slack and clock. The install and
connect pages are Offhours' own (bot/slack/pages.py), through Bolt's documented hooks: the OAuthSettings page
renderer, the install page of the OAuth flow, and the callback options.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from slack_bolt import App, BoltRequest
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.oauth import OAuthFlow
from slack_bolt.oauth.callback_options import CallbackOptions, FailureArgs, SuccessArgs
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_bolt.response import BoltResponse
from slack_sdk import WebClient
from slack_sdk.oauth import AuthorizeUrlGenerator
from slack_sdk.oauth.installation_store import Installation

from bot.config import Config
from bot.domain.mentions import GROUP_DM_MEMBERS_SCOPE
from bot.metrics import label
from bot.services import Services, build_services, utc_now
from bot.settings import Settings
from bot.slack.authorize import StoreAuthorize
from bot.slack.pages import OffhoursPages
from bot.slack.paths import (
    BOT_SCOPES,
    DND_USER_SCOPES,
    INSTALL_PATH,
    REDIRECT_PATH,
    STATUS_USER_SCOPES,
    USER_SCOPES,
)
from bot.storage import ops
from bot.storage.mentions import MENTION_SCOPES
from bot.storage.store import Store

log = logging.getLogger(__name__)


class _RedactOAuthCode(logging.Filter):
    """Bolt logs a refused oauth.v2.access with the code it tried: a code is a credential for a few minutes."""

    _CODE = re.compile(r"(with code: )\S+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "code: " in message:
            record.msg, record.args = self._CODE.sub(r"\1(redacted)", message), None
        return True


_BOLT_LOG = logging.getLogger("bot.bolt")
_BOLT_LOG.addFilter(_RedactOAuthCode())

# ?team= on the install link, passed on to Slack only when it is a team id: slack_sdk copies it into the authorize
# URL unencoded, so "T1&scope=..." would add parameters of the link's choosing to what a person approves.
_TEAM_ID = re.compile(r"T[A-Z0-9]{1,31}")


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
    pages = OffhoursPages(install_path=INSTALL_PATH, redirect_uri_path=REDIRECT_PATH, command=config.command)
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
        install_page_rendering_enabled=True,  # our page, not a bare redirect: it says what Offhours will do
        callback_options=CallbackOptions(success=_on_installed(services, pages), failure=_on_install_failed(pages)),
    )
    oauth_settings.redirect_uri_page_renderer = pages  # Bolt's default callback paths render Offhours' pages too
    flow = _OAuthFlow(client=services.client, logger=_BOLT_LOG, settings=oauth_settings, pages=pages, store=store)
    bolt = App(
        signing_secret=settings.signing_secret,
        client=services.client,
        oauth_flow=flow,
        # An Authorize subclass (Bolt's own kind of authorizer); Bolt's annotation names only plain callables.
        authorize=cast(Callable[..., AuthorizeResult], StoreAuthorize(store)),
        # Listeners run before the HTTP 200 so that an after-hours DM is stored before Slack hears "ok";
        # the slow part (posting the reply) happens later in the reply sender.
        process_before_response=True,
        logger=_BOLT_LOG,
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
    """Bolt's flow, with Offhours' install page, and a timed-out oauth.v2.access shown as its "try again" page
    rather than a bare 500."""

    def __init__(self, *, pages: OffhoursPages, store: Store, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pages = pages
        self.store = store

    def build_authorize_url(self, state: str, request: BoltRequest) -> str:
        generator = self.settings.authorize_url_generator
        asked = set((next(iter(request.query.get("scopes") or []), None) or "").split(","))
        extra: list[str] = []
        if "status" in asked:
            # Status sync's connect link: users.profile:read/write, and dnd:write with `dnd` (Slack adds what is
            # granted to what the person granted before, and answers with the whole set, which Bolt stores).
            extra += [*STATUS_USER_SCOPES, *(DND_USER_SCOPES if "dnd" in asked else ())]
        if (request.query.get("mentions") or [""])[0] == "1":
            # `/hours mentions on`'s link: this person alone is asked for the channel scopes too (issue 20).
            extra += [*MENTION_SCOPES, GROUP_DM_MEMBERS_SCOPE]
        if extra:
            generator = AuthorizeUrlGenerator(
                client_id=generator.client_id, redirect_uri=generator.redirect_uri, scopes=generator.scopes,
                user_scopes=[*(generator.user_scopes or USER_SCOPES), *extra],
                authorization_url=generator.authorization_url,
            )  # fmt: skip
        return generator.generate(state=state, team=_team(request))

    def build_install_page_html(self, url: str, request: BoltRequest) -> str:
        # The first install of a workspace, or someone connecting to one Offhours is already in.
        team = _team(request)
        if team:
            first = self.store.bot_token(team) is None
        else:
            first = ops.installed_workspaces(self.store.engine, client_id=self.store.client_id) == 0
        return self.pages.install(url, first=first)

    def run_installation(self, code: str) -> Installation | None:
        try:
            return super().run_installation(code)
        except OSError as e:  # Bolt catches SlackApiError only; None makes it answer with the failure page
            log.warning("install: oauth.v2.access failed error=%s", type(e).__name__)
            return None


def _team(request: BoltRequest) -> str | None:
    team = next(iter(request.query.get("team") or []), None)
    return team if team is not None and _TEAM_ID.fullmatch(team) else None


def _on_installed(services: Services, pages: OffhoursPages) -> Callable[[SuccessArgs], BoltResponse]:
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
            services.mentions.changed(team_id, user_id)  # maybe with the mention scopes now
            log.info("install: connected team=%s user=%s", installation.team_id, installation.user_id)
        html = pages.success(
            team_id=installation.team_id, app_id=installation.app_id, team_name=installation.team_name,
            installed=bool(installation.bot_token),
        )  # fmt: skip
        return _page(args.settings, 200, html)

    return success


def _on_install_failed(pages: OffhoursPages) -> Callable[[FailureArgs], BoltResponse]:
    def failure(args: FailureArgs) -> BoltResponse:
        # The reason may be the redirect's ?error=, whatever a link put there: logged only as a code.
        log.warning("install: failed reason=%s status=%s", label(args.reason), args.suggested_status_code)
        html = pages.cancel() if args.reason == "access_denied" else pages.failure(args.reason)
        return _page(args.settings, args.suggested_status_code, html)

    return failure


def _page(settings: OAuthSettings, status: int, html: str) -> BoltResponse:
    """An HTML answer to the OAuth redirect; the state cookie has done its job either way."""
    headers: dict[str, str | Sequence[str]] = {
        "Content-Type": "text/html; charset=utf-8",
        "Set-Cookie": settings.state_utils.build_set_cookie_for_deletion(),
        "Cache-Control": "no-store",
    }
    return BoltResponse(status=status, body=html, headers=headers)
