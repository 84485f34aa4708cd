"""The Slack app manifest, built in one place: `python -m bot manifest --url https://your.host` prints it.

The top-level manifest.yaml is this output for the placeholder URL (a test keeps the two identical).
"""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import urlsplit

import yaml

from bot.config import load_config
from bot.domain.errors import ConfigError
from bot.domain.mentions import GROUP_DM_MEMBERS_SCOPE, MENTION_EVENTS, MENTION_SCOPES
from bot.slack.paths import BOT_SCOPES, DND_USER_SCOPES, EVENTS_PATH, REDIRECT_PATH, STATUS_USER_SCOPES, USER_SCOPES

PLACEHOLDER_URL = "https://your.host"
# Channel office hours (issue 25): messages in the channels the bot is in, and the bot's removal from one.
CHANNEL_BOT_EVENTS = ("message.channels", "message.groups", "channel_left", "group_left")


def build_manifest(base_url: str, *, command: str = "/hours", socket_mode: bool = False) -> dict:
    base_url = base_url.rstrip("/")
    events_url = base_url + EVENTS_PATH
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": "Offhours",
            "description": "Keep your working hours: a kind auto-reply after hours, a recap when you're back.",
            "long_description": (
                "Offhours answers direct messages that reach you outside your working hours, once per sender, with "
                "your own boundary message and when to expect a reply, in both time zones. When your next workday "
                "starts it sends you a recap of what came in, leaving out what you already answered. Set your hours "
                "with /hours or in the Home tab. Connecting your DMs is opt-in and can be undone at any time."
            ),
            "background_color": "#2c2d30",
        },
        "features": {
            "app_home": {
                "home_tab_enabled": True,
                "messages_tab_enabled": True,
                "messages_tab_read_only_enabled": True,
            },
            "bot_user": {"display_name": "Offhours", "always_online": False},
            "slash_commands": [
                {
                    "command": command,
                    **({} if socket_mode else {"url": events_url}),
                    "description": "See or set your working hours",
                    "usage_hint": "[set mon-fri 9-17:30 | tz Europe/Rome | off 2026-12-24 | pause | help]",
                    "should_escape": True,  # mentions arrive as <@U123|name> (/hours except, /hours when)
                }
            ],
        },
        "oauth_config": {
            "redirect_urls": [base_url + REDIRECT_PATH],
            # The status and mention scopes are declared, and asked only of a person who turns the feature on
            # (bot/slack/app.py).
            "scopes": {
                "bot": list(BOT_SCOPES),
                "user": [
                    *USER_SCOPES,
                    *STATUS_USER_SCOPES,
                    *DND_USER_SCOPES,
                    *MENTION_SCOPES,
                    GROUP_DM_MEMBERS_SCOPE,
                ],
            },
        },
        "settings": {
            "event_subscriptions": {
                **({} if socket_mode else {"request_url": events_url}),
                "bot_events": ["app_home_opened", "app_uninstalled", "tokens_revoked", *CHANNEL_BOT_EVENTS],
                "user_events": ["message.im", *MENTION_EVENTS],
            },
            "interactivity": {
                "is_enabled": True,
                **({} if socket_mode else {"request_url": events_url, "message_menu_options_url": events_url}),
            },
            "org_deploy_enabled": False,
            "socket_mode_enabled": socket_mode,
            "token_rotation_enabled": False,
        },
    }


def render_manifest(base_url: str, **kwargs: Any) -> str:
    header = (
        "# Offhours' Slack app manifest. Create the app at api.slack.com/apps → Create New App → From a manifest.\n"
        "# Regenerate with your URL: python -m bot manifest --url https://your.host\n"
    )
    return header + yaml.safe_dump(build_manifest(base_url, **kwargs), sort_keys=False, allow_unicode=True)


def print_manifest(url: str | None, *, socket_mode: bool = False) -> int:
    url = url or PLACEHOLDER_URL
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc or parts.path not in ("", "/") or parts.query:
        raise ConfigError(f"--url: expected the public https base URL of this app, like {PLACEHOLDER_URL}, got {url!r}")
    command = load_config().command
    sys.stdout.write(render_manifest(url, command=command, socket_mode=socket_mode))
    return 0
