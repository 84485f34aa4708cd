"""What `/hours mentions` and the Home toggle answer: on, off, or on with a link to grant the channel scopes."""

from __future__ import annotations

from bot.slack.blocks.common import context, section

GRANT_TEXT = "Allow Offhours to see your channels"


def mentions_blocks(*, enabled: bool, scopes_missing: tuple[str, ...], grant_url: str, command: str) -> list[dict]:
    if not enabled:
        return [
            section(":white_check_mark: Mentions are *off*: channel mentions and group DMs get no auto-reply and stay "
                    "out of your recap. Your DMs are answered as before."),
            context(f"`{command} mentions on` turns them back on."),
        ]  # fmt: skip
    if scopes_missing:
        scopes = ", ".join(f"`{s}`" for s in scopes_missing)
        return [
            section(":warning: Mentions are *on*, but one step is left: Offhours cannot see your channels yet. "
                    f"<{grant_url}|{GRANT_TEXT}> (Slack asks you for {scopes}); until you do, nothing changes."),
            context("Only messages that mention you, or group DMs you are in, while you are off are kept, for your "
                    f"recap. `{command} mentions off` undoes this."),
        ]  # fmt: skip
    return [
        section(":white_check_mark: Mentions are *on*: outside your hours, someone who @-mentions you in a channel or "
                "thread, or writes in a group DM with you, gets one auto-reply only they can see, and it goes in your "
                "recap."),
        context(f"`{command} mentions off` turns this off. @here, @channel and user groups never count."),
    ]  # fmt: skip


def mentions_text(*, enabled: bool, scopes_missing: tuple[str, ...]) -> str:
    if not enabled:
        return "Mentions are off"
    return "Mentions are on — grant Offhours access to your channels" if scopes_missing else "Mentions are on"
