"""Status sync's settings and what it tells people, shared by /hours, the Home tab and the status worker.

A person's choice (bot/storage/status.py) merged with config.yaml's `status`; the summary `/hours show` and Home
give (on or off, what the next status will read, what stands in the way); the link that asks Slack for the status
scopes; and the clear (and end of the snooze) that `/hours forget` makes before the token is deleted.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.config import Config
from bot.domain import status as domain
from bot.domain.preferences import Preferences
from bot.domain.status import SlackStatus, StatusPlan, StatusSettings
from bot.storage.status import StatusRow, StatusStore

log = logging.getLogger(__name__)

# Refusals for good that a person must act on (shown in /hours show and Home until the next update goes through).
TOKEN_PROBLEMS = frozenset({"invalid_auth", "token_revoked", "account_inactive", "not_authed", "token_expired"})
SCOPE_PROBLEMS = frozenset({"missing_scope", "no_permission", "not_allowed_token_type"})
PROBLEMS = TOKEN_PROBLEMS | SCOPE_PROBLEMS
GRANT_QUERY = "scopes=status"  # on the install link: the connect that also asks for the status scopes


@dataclass(frozen=True, slots=True)
class Ours:
    """What Offhours last set on the person's profile (text None: nothing of Offhours' is there), and the person's
    own status it replaced, if any."""

    text: str | None = None
    emoji: str | None = None
    saved: tuple[str, str, int] | None = None


def ours(history: list[StatusRow], *, before: int | None = None) -> Ours:
    """From the person's updates (newest first): the status Offhours has on their profile, as far as it knows."""
    for row in history:
        if (before is not None and row.id >= before) or row.state != "sent":
            continue
        if row.action == "set" and row.applied:
            saved = (row.saved_text or "", row.saved_emoji or "", row.saved_expiration or 0)
            return Ours(row.text, row.emoji, saved if row.saved_text is not None else None)
        return Ours()
    return Ours()


@dataclass(frozen=True, slots=True)
class StatusSummary:
    """What /hours show and Home say about status sync."""

    settings: StatusSettings
    next_status: StatusPlan | None  # what the status will read in the current or next off window
    missing_scopes: list[str]
    problem: str | None  # the error code of the last update refused for good, if the person must act on it
    own: bool  # the person's own status was left alone in the current window
    dnd_missing_scopes: list[str] = dataclasses.field(default_factory=list)
    dnd_problem: str | None = None


def status_settings(config: Config, store: StatusStore, team_id: str, user_id: str) -> StatusSettings:
    c = config.status
    return domain.settings(store.choice(team_id, user_id), enabled=c.enabled, text=c.text, emoji=c.emoji)


def summary(config: Config, store: StatusStore, prefs: Preferences, *, now: datetime) -> StatusSummary:
    settings = status_settings(config, store, prefs.team_id, prefs.user_id)
    history = store.history(prefs.team_id, prefs.user_id)
    latest = next((r for r in history if r.state in ("sent", "failed")), None)
    problem = None
    if latest is not None and latest.state == "failed" and latest.last_error in TOKEN_PROBLEMS | SCOPE_PROBLEMS:
        problem = latest.last_error
    window = prefs.schedule.off_window(now)
    own = bool(latest and latest.result == "own" and window is not None and latest.window_end == window[1])
    granted = store.granted_scopes(prefs.team_id, prefs.user_id)
    dnd_latest = next((r for r in store.history(prefs.team_id, prefs.user_id, what="dnd")
                       if r.state in ("sent", "failed")), None)  # fmt: skip
    dnd_problem = None
    if (
        dnd_latest is not None
        and dnd_latest.state == "failed"
        and dnd_latest.last_error in TOKEN_PROBLEMS | SCOPE_PROBLEMS
    ):
        dnd_problem = dnd_latest.last_error
    return StatusSummary(
        settings=settings,
        next_status=domain.next_plan(prefs, settings, now=now),
        missing_scopes=domain.missing_scopes(granted),
        problem=problem,
        own=own,
        dnd_missing_scopes=domain.missing_scopes(granted, domain.DND_SCOPES) if settings.dnd else [],
        dnd_problem=dnd_problem if settings.dnd else None,
    )


def grant_url(install_url: str, *, team_id: str, dnd: bool = False) -> str:
    """The connect link that asks Slack for the status scopes too, and dnd:write for someone who turned DND on
    (Slack adds them to what was granted)."""
    return f"{install_url}?{GRANT_QUERY}{',dnd' if dnd else ''}&team={team_id}"


def clear_now(
    client: WebClient, store: StatusStore, *, team_id: str, user_id: str, token: str, now: datetime,
    in_time: Callable[[], bool] = lambda: True,
) -> bool:  # fmt: skip
    """Clear Offhours' status at once, if it is still the one on the profile (before `/hours forget` deletes the
    token that could clear it later); the person's own status is left, and one it replaced is put back unless it
    has expired. `in_time`: whether a further call still fits (checked before each). Whether anything was cleared."""
    mine = ours(store.history(team_id, user_id))
    if mine.text is None or not in_time():
        return False
    try:
        profile = client.users_profile_get(token=token).get("profile") or {}
        current = SlackStatus(str(profile.get("status_text") or ""), str(profile.get("status_emoji") or ""))
        if not domain.is_ours(current, text=mine.text, emoji=mine.emoji) or not in_time():
            return False
        text, emoji, expiration = mine.saved or ("", "", 0)
        if expiration != 0 and expiration <= int(now.timestamp()):
            text, emoji, expiration = "", "", 0  # the person's own status expired meanwhile: not put back
        client.users_profile_set(
            token=token, profile={"status_text": text, "status_emoji": emoji, "status_expiration": expiration}
        )
    except SlackApiError as e:
        log.warning("status: clear failed error=%s", e.response.get("error"))
        return False
    except OSError as e:
        log.warning("status: clear failed error=%s", type(e).__name__)
        return False
    return True


def end_snooze_now(
    client: WebClient, store: StatusStore, *, team_id: str, user_id: str, token: str, now: datetime,
    in_time: Callable[[], bool] = lambda: True,
) -> bool:  # fmt: skip
    """End the snooze Offhours started, if its window is still open (before `/hours forget` deletes the token
    that could end it later). Whether it was ended."""
    latest = next((r for r in store.history(team_id, user_id, what="dnd") if r.state == "sent"), None)
    if latest is None or latest.action != "snooze" or latest.window_end <= now or not in_time():
        return False
    try:
        client.dnd_endSnooze(token=token)
    except SlackApiError as e:
        log.warning("dnd: end snooze failed error=%s", e.response.get("error"))
        return False
    except OSError as e:
        log.warning("dnd: end snooze failed error=%s", type(e).__name__)
        return False
    return True
