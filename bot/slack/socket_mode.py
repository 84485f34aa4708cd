"""Socket Mode, for deployments without a public URL: events, commands and interactivity arrive over a WebSocket.

With SLACK_APP_TOKEN set, `python -m bot run|web` connects here beside the HTTP server, which still serves the OAuth
install pages on $PORT. The same Bolt app handles both transports, so every listener works unchanged.
"""

from __future__ import annotations

import logging

from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.errors import SlackApiError

from bot.domain.errors import ConfigError
from bot.slack.app import OffhoursApp

log = logging.getLogger(__name__)


def start_socket_mode(app: OffhoursApp, *, app_token: str, ping_interval: float = 10) -> SocketModeHandler:
    """Open the Socket Mode connection; a token Slack refuses is a ConfigError, not a retry loop."""
    # The app's own Web API client, so apps.connections.open goes to SLACK_API_URL like every other call.
    handler = SocketModeHandler(
        app.bolt, app_token=app_token, web_client=app.services.client, ping_interval=ping_interval
    )
    try:
        handler.connect()
    except SlackApiError as e:
        handler.close()
        code = e.response.get("error")
        raise ConfigError(
            f"SLACK_APP_TOKEN: Slack refused it for Socket Mode ({code}); create an app-level token with the "
            "connections:write scope (Basic Information → App-Level Tokens) and enable Socket Mode"
        ) from None
    if not handler.client.is_connected():
        # apps.connections.open worked but the WebSocket did not open: the client retries on its own.
        log.warning("socket_mode connected=false; retrying every %.0f s", ping_interval)
    else:
        log.info("socket_mode connected=true")
    return handler
