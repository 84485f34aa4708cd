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
    """Why Offhours cannot set the status (or snooze), and how to fix it, with one link: nothing fails silently."""
    status_on, dnd_on = s.settings.enabled, s.settings.dnd
    status_blocked = status_on and bool(s.missing_scopes or s.problem in SCOPE_PROBLEMS)
    dnd_blocked = dnd_on and bool(s.dnd_missing_scopes or s.dnd_problem in SCOPE_PROBLEMS)
    missing = [*((s.missing_scopes or ["users.profile:write"]) if status_blocked else []),
               *((s.dnd_missing_scopes or ["dnd:write"]) if dnd_blocked else [])]  # fmt: skip
    lines = []
    if missing:
        what = " and ".join(w for w, blocked in (("change your status", status_blocked),
                                                 ("snooze your notifications", dnd_blocked)) if blocked)  # fmt: skip
        scopes = ", ".join(f"`{scope}`" for scope in missing)
        lines.append(
            f":warning: Offhours may not {what} yet: it needs {scopes}. "
            f"<{grant_url}|Grant access> (Slack asks you once; your DMs stay connected)."
        )
    refused = [p for on, p in ((status_on, s.problem), (dnd_on, s.dnd_problem)) if on and p and p not in SCOPE_PROBLEMS]
    if refused:
        lines.append(
            f":warning: Slack refused your token when Offhours set your status (`{refused[0]}`). "
            f"<{grant_url}|Reconnect> to have it set again."
        )
    if status_on and s.own:
        lines.append("You set your own status for this off time, so Offhours leaves it alone.")
    return lines


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
