"""The app's HTTP paths and OAuth scopes: what the Bolt app serves and the manifest declares."""

from __future__ import annotations

# Each scope is justified in the README ("Scopes").
# Channel office hours (issue 25): only channels the bot was invited to.
CHANNEL_BOT_SCOPES = ("channels:history", "groups:history", "channels:read", "groups:read")
# im:history (bot): an urgent notice of unknown outcome is looked for in the app's own DM with its recipient.
BOT_SCOPES = ("commands", "chat:write", "im:write", "im:history", "users:read", *CHANNEL_BOT_SCOPES)
USER_SCOPES = ("im:history", "chat:write")
# Asked for only by the connect link of people who turn status sync on (`?scopes=status`); declared in the manifest.
STATUS_USER_SCOPES = ("users.profile:read", "users.profile:write")
DND_USER_SCOPES = ("dnd:write",)  # likewise, for those who turn on snoozing notifications (`?scopes=status,dnd`)

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
EVENTS_PATH = "/slack/events"
