"""`/hours mentions on|off|(nothing)` and the Home tab's toggle: a person's choice for channel mentions and group DMs
(bot/mentions.py)."""

from __future__ import annotations

from collections.abc import Callable

from slack_bolt import Ack, App

from bot.domain.errors import OffhoursError
from bot.services import Services
from bot.slack.blocks.mentions import (
    MENTIONS_GRANT_ACTION,
    MENTIONS_OFF_ACTION,
    MENTIONS_ON_ACTION,
    home_mentions_block,
    mentions_blocks,
    mentions_text,
)

EXAMPLE = "mentions on"


def grant_url(services: Services, team_id: str) -> str:
    """The connect link that asks for the mention scopes too (bot/slack/app.py adds them for ?mentions=1)."""
    return f"{services.install_url()}?mentions=1&team={team_id}"


def mentions_subcommand(services: Services, *, team_id: str, user_id: str, arg: str) -> tuple[list[dict], str]:
    word = arg.strip().lower()
    command = services.config.command
    if word in ("on", "off"):
        choice = services.mentions.choose(team_id, user_id, enabled=word == "on")
        enabled, missing = choice.enabled, choice.scopes_missing
    elif word == "":
        enabled = services.mentions.enabled(team_id, user_id)
        missing = services.mentions.missing_scopes(team_id, user_id) if enabled else ()
    else:
        raise OffhoursError(f"`{command} mentions` takes `on` or `off`.")
    blocks = mentions_blocks(enabled=enabled, scopes_missing=missing, grant_url=grant_url(services, team_id),
                             command=command)  # fmt: skip
    return blocks, mentions_text(enabled=enabled, scopes_missing=missing)


def home_mentions(services: Services, team_id: str, user_id: str, *, headers: dict | None = None) -> list[dict]:
    """The Home tab's mentions row for a connected person."""
    enabled = services.mentions.enabled(team_id, user_id)
    missing = services.mentions.missing_scopes(team_id, user_id) if enabled else ()
    url = f"{services.install_url(headers)}?mentions=1&team={team_id}"
    return home_mentions_block(enabled=enabled, scopes_missing=missing, grant_url=url)


def register_mentions_toggle(
    app: App, services: Services, change: Callable[[str, Callable[[str, str], object]], Callable[..., None]]
) -> None:
    """The Home tab's Turn on / Turn off (through the Home listener's `change`, which acks and republishes)."""
    mentions = services.mentions
    app.action(MENTIONS_ON_ACTION)(change("mentions_on", lambda t, u: mentions.choose(t, u, enabled=True)))
    app.action(MENTIONS_OFF_ACTION)(change("mentions_off", lambda t, u: mentions.choose(t, u, enabled=False)))

    @app.action(MENTIONS_GRANT_ACTION)
    def grant_clicked(ack: Ack) -> None:
        ack()  # a link button: Slack opens the URL; without an ack it shows the person an error
