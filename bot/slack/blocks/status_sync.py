"""What /hours and Home say about status sync: on or off, the next status, and what stands in the way."""

from __future__ import annotations

from slack_sdk.models.blocks import ButtonElement

from bot.slack.blocks.common import context, divider, escape, section
from bot.status_sync import SCOPE_PROBLEMS, StatusSummary


def summary_line(s: StatusSummary, *, command: str) -> str:
    """ "*Slack status:* on — next: :crescent_moon: Off the clock — back Mon 09:00" (or off, and how to turn it on)."""
    if not s.settings.enabled:
        return f"*Slack status:* off — `{command} status on` shows you as off while you are"
    line = "*Slack status:* on"
    if s.next_status is not None:
        line += f" — next: {s.next_status.emoji} {escape(s.next_status.text)}"
    if s.settings.replace:
        line += " _(replaces your own status, and puts it back after)_"
    return line


def dnd_line(s: StatusSummary, *, command: str) -> str:
    if s.settings.dnd:
        return "*Notifications:* snoozed while you are off (ended early if your off time does)"
    return f"*Notifications:* not snoozed by Offhours — `{command} dnd on` snoozes them while you are off"


def problem_lines(s: StatusSummary, *, grant_url: str) -> list[str]:
    """Why Offhours cannot set the status (or snooze), and how to fix it: nothing fails silently."""
    lines = _dnd_problems(s, grant_url=grant_url)
    if not s.settings.enabled:
        return lines
    if s.missing_scopes or (s.problem in SCOPE_PROBLEMS):
        scopes = ", ".join(f"`{scope}`" for scope in s.missing_scopes) or "`users.profile:write`"
        lines.append(
            f":warning: Offhours may not change your status yet: it needs {scopes}. "
            f"<{grant_url}|Grant access> (Slack asks you once; your DMs stay connected)."
        )
    elif s.problem is not None:
        lines.append(
            f":warning: Slack refused your token when Offhours set your status (`{s.problem}`). "
            f"<{grant_url}|Reconnect> to have it set again."
        )
    if s.own:
        lines.append("You set your own status for this off time, so Offhours leaves it alone.")
    return lines


def _dnd_problems(s: StatusSummary, *, grant_url: str) -> list[str]:
    if s.dnd_missing_scopes or s.dnd_problem in SCOPE_PROBLEMS:
        return [f":warning: Offhours may not snooze your notifications yet: it needs `dnd:write`. "
                f"<{grant_url}|Grant access>."]  # fmt: skip
    if s.dnd_problem is not None:
        return [f":warning: Slack refused your token when Offhours snoozed your notifications (`{s.dnd_problem}`). "
                f"<{grant_url}|Reconnect>."]  # fmt: skip
    return []


def status_sync_blocks(s: StatusSummary, *, command: str, grant_url: str, done: str | None = None) -> list[dict]:
    blocks = []
    if done:
        blocks.append(section(":white_check_mark: " + done))
    lines = [summary_line(s, command=command), dnd_line(s, command=command), *problem_lines(s, grant_url=grant_url)]
    blocks.append(section("\n".join(lines)))
    blocks.append(
        context(
            f"`{command} status on|off` · `{command} status text <text>` (placeholders as in your message, "
            f"at most 100 characters) · `{command} status emoji :palm_tree:` · `{command} status replace on|off` · "
            f"`{command} dnd on|off`"
        )
    )
    return blocks


STATUS_ON_ACTION = "status_sync_on"
STATUS_OFF_ACTION = "status_sync_off"


def home_status_blocks(s: StatusSummary, *, command: str, grant_url: str) -> list[dict]:
    """The Home tab's status sync section: on or off with a toggle, the next status, what stands in the way."""
    on = s.settings.enabled
    button = ButtonElement(
        text="Turn off" if on else "Turn on",
        action_id=STATUS_OFF_ACTION if on else STATUS_ON_ACTION,
        value="off" if on else "on",
        style=None if on else "primary",
    )
    text = "\n".join([summary_line(s, command=command), dnd_line(s, command=command),
                      *problem_lines(s, grant_url=grant_url)])  # fmt: skip
    return [
        section(text, accessory=button, block_id="home_status_sync"),
        context(
            f"Text, emoji and replacing your own status: `{command} status text …`, `{command} status emoji …`, "
            f"`{command} status replace on`"
        ),
        divider(),
    ]
