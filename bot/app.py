"""The application factory: a Bolt app wired to Offhours' store, config, clock and Web API client.

No module-level app: every test builds its own with its own database, fake Slack and clock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from slack_bolt import App
from slack_bolt.oauth import OAuthFlow
from slack_bolt.oauth.callback_options import CallbackOptions, FailureArgs, SuccessArgs
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_bolt.response import BoltResponse
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.oauth.installation_store import Installation

from bot.authorize import StoreAuthorize
from bot.config import Config, Settings
from bot.people import PeopleService
from bot.profiles import ProfileCache
from bot.store import Store

log = logging.getLogger(__name__)

# Each scope is justified in the README ("Scopes").
BOT_SCOPES = ("commands", "chat:write", "im:write", "users:read")
USER_SCOPES = ("im:history", "chat:write")

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
EVENTS_PATH = "/slack/events"


def utc_now() -> datetime:
    """The real clock; the only place Offhours reads the time (tests hand in their own)."""
    return datetime.now(UTC)


def make_client(settings: Settings, *, timeout: int = 10) -> WebClient:
    """A Web API client for SLACK_API_URL that honours 429 Retry-After and retries dropped connections."""
    return WebClient(
        base_url=settings.slack_api_url,
        timeout=timeout,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2), RateLimitErrorRetryHandler(max_retry_count=2)],
    )


@dataclass
class Services:
    """What listeners and workers share: passed in, never imported as globals."""

    config: Config
    settings: Settings
    store: Store
    client: WebClient
    clock: Callable[[], datetime]
    people: PeopleService
    profiles: ProfileCache
    # Set when a reply is queued, so the reply sender wakes at once instead of at its next poll.
    replies_queued: threading.Event = field(default_factory=threading.Event)

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


@dataclass
class OffhoursApp:
    """The Bolt app and the services behind it."""

    bolt: App
    services: Services


def build_services(
    config: Config,
    store: Store,
    *,
    settings: Settings,
    client: WebClient | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Services:
    client = client or make_client(settings)
    people = PeopleService(store, config, clock=clock)

    def reschedule_recap(team_id: str, user_id: str) -> None:
        # Hours or days off changed: the waiting messages' recap moves to the new first working interval.
        schedule = people.get(team_id, user_id).schedule
        store.recaps.reschedule(team_id, user_id, schedule.next_start)

    people.on_change.append(reschedule_recap)
    return Services(
        config=config,
        settings=settings,
        store=store,
        client=client,
        clock=clock,
        people=people,
        profiles=ProfileCache(store, client, clock=clock),
    )


def create_app(
    config: Config,
    store: Store,
    *,
    settings: Settings,
    client: WebClient | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> OffhoursApp:
    """Build the Bolt app with OAuth install/connect, every listener, and one error handler."""
    from bot.listeners import register_all

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
        authorize=StoreAuthorize(store),
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
