"""`/hours nudge 1h` / `/hours nudge off`, and the nudge line of `/hours show` (called from commands.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from bot.domain import nudge
from bot.domain.preferences import Preferences
from bot.people import PeopleService
from bot.services import Services
from bot.slack.blocks.nudge import nudge_status_block


class Subcommands(Protocol):
    """What of commands.Subcommands this module uses (not imported: commands.py imports this module)."""

    services: Services
    people: PeopleService
    team_id: str
    user_id: str

    def _done(self, text: str, prefs: Preferences) -> tuple[list[dict], str]: ...


def before(services: Services, prefs: Preferences) -> timedelta | None:
    return nudge.effective_before(prefs.nudge_before_s, services.config.nudge.before)


def status_block(services: Services, prefs: Preferences) -> dict:
    return nudge_status_block(before(services, prefs), command=services.config.command)


def run(sub: Subcommands, arg: str) -> tuple[list[dict], str]:
    """Set how early the person is nudged, or turn nudges off; with no value, say how it stands."""
    if arg:
        prefs = sub.people.set_nudge_before(sub.team_id, sub.user_id, arg)
    else:
        prefs = sub.people.get(sub.team_id, sub.user_id)
    text = f"Nudges are {nudge.describe(before(sub.services, prefs))}."
    return sub._done(text, prefs)
