"""The app's HTTP paths and OAuth scopes: what the Bolt app serves and the manifest declares."""

from __future__ import annotations

# Each scope is justified in the README ("Scopes").
BOT_SCOPES = ("commands", "chat:write", "im:write", "users:read")
USER_SCOPES = ("im:history", "chat:write")

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
EVENTS_PATH = "/slack/events"
