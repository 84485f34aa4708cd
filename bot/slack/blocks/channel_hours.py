"""Block Kit for channel office hours: the command's answers, the threaded reply, the summary."""

from __future__ import annotations


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def answer_blocks(text: str) -> list[dict]:
    """`/hours channel ...`: one ephemeral section."""
    return [_section(text)]


_FOOTER = "Sent automatically by Offhours for this channel."


def reply_blocks(text: str) -> list[dict]:
    """The threaded reply to a message that came while the team was off."""
    return [
        _section(text),
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": "Sent automatically by Offhours for this channel."}],
        },
    ]


def summary_blocks(title: str, lines: list[str]) -> list[dict]:
    """The summary at the start of the channel's hours."""
    blocks = [_section(f"*{title}*")]
    for start in range(0, len(lines), 10):  # a section holds 3,000 characters: ten lines each
        blocks.append(_section("\n".join(lines[start : start + 10])))
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": "Messages answered in their thread meanwhile are left out."}],
        }
    )
    return blocks
