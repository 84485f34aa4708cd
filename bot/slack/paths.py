"""The app's HTTP paths and OAuth scopes: what the Bolt app serves and the manifest declares."""

from __future__ import annotations

# Each scope is justified in the README ("Scopes").
# Channel office hours (issue 25): only channels the bot was invited to.
CHANNEL_BOT_SCOPES = ("channels:history", "groups:history", "channels:read", "groups:read")
BOT_SCOPES = ("commands", "chat:write", "im:write", "users:read", *CHANNEL_BOT_SCOPES)
USER_SCOPES = ("im:history", "chat:write")

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
EVENTS_PATH = "/slack/events"
