"""`/hours mentions on|off|(nothing)`: a person's choice for channel mentions and group DMs (bot/mentions.py)."""

from __future__ import annotations

from bot.domain.errors import OffhoursError
from bot.services import Services
from bot.slack.blocks.mentions import mentions_blocks, mentions_text

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
