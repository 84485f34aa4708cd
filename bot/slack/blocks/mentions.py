"""What `/hours mentions` and the Home toggle answer: on, off, or on with a link to grant the channel scopes."""

from __future__ import annotations

from slack_sdk.models.blocks import ButtonElement, LinkButtonElement

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


MENTIONS_ON_ACTION = "home_mentions_on"
MENTIONS_OFF_ACTION = "home_mentions_off"
MENTIONS_GRANT_ACTION = "home_mentions_grant"  # a link button: Slack opens the URL and still sends the click


def home_mentions_block(*, enabled: bool, scopes_missing: tuple[str, ...], grant_url: str) -> list[dict]:
    """The Home tab's row for channel mentions and group DMs: its state, and the button that changes it."""
    if not enabled:
        text = "*Mentions and group DMs:* off — only your DMs get an auto-reply"
        button = ButtonElement(text="Turn on", action_id=MENTIONS_ON_ACTION, value="on")
    elif scopes_missing:
        text = ("*Mentions and group DMs:* on, waiting for access to your channels — "
                f"<{grant_url}|{GRANT_TEXT}>")  # fmt: skip
        button = ButtonElement(text="Turn off", action_id=MENTIONS_OFF_ACTION, value="off")
    else:
        text = "*Mentions and group DMs:* on — @-mentions and group DMs outside your hours get one private auto-reply"
        button = ButtonElement(text="Turn off", action_id=MENTIONS_OFF_ACTION, value="off")
    blocks = [section(text, accessory=button, block_id="home_mentions")]
    if enabled and scopes_missing:
        grant = LinkButtonElement(text=GRANT_TEXT, url=grant_url, action_id=MENTIONS_GRANT_ACTION)
        blocks.append({"type": "actions", "block_id": "home_mentions_grant", "elements": [grant.to_dict()]})
    return blocks
