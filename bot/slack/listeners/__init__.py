"""Listeners grouped by Slack surface; each module exposes `register(app, services)`."""

from __future__ import annotations

from slack_bolt import App

from bot.services import Services


def register_all(app: App, services: Services) -> None:
    from bot.slack.listeners import channel_hours, commands, home, lifecycle, messages, recap_actions

    for module in (commands, messages, lifecycle, recap_actions, home, channel_hours):
        module.register(app, services)
