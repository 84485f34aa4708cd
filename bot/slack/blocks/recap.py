"""The start-of-day recap message and its per-conversation "Done" buttons."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from bot.domain.hours import format_local
from bot.domain.hours.timezones import zone
from bot.domain.recap import Recap, RecapItem
from bot.domain.urgent import ME, NOT_PASSED_ON
from bot.slack.blocks.common import (
    MESSAGE_BLOCK_LIMIT,
    button,
    clip,
    clip_mrkdwn,
    context,
    divider,
    escape,
    header,
    section,
)

DONE_ACTION = "recap_done"
MENTIONS_HEADING = "*Mentions and group DMs*"
TEXT_PER_ITEM = 600  # keeps a 40-item recap readable and every section under 3,000 characters


def recap_title(recap: Recap, tz: str) -> str:
    end = format_local(recap.window_end, tz, now=recap.window_end)
    if recap.window_start is None:
        return f"While you were off — until {end}"
    return f"While you were off — {format_local(recap.window_start, tz, now=recap.window_end)} → {end}"


def recap_blocks(
    recap: Recap, *, recap_id: int, tz: str, permalinks: Mapping[str, str],
    promises: Mapping[str, datetime] | None = None,
) -> list[dict]:  # fmt: skip
    """Header, one section per conversation (link + Done), the overflow line; never more than 50 blocks."""
    total = sum(item.count for item in recap.items) + recap.more_messages
    conversations = len(recap.items) + recap.more_conversations
    summary = f"{total} message{'s' * (total != 1)} in {conversations} conversation{'s' * (conversations != 1)}"
    if recap.late:
        summary += " · delivered late: Offhours was not running when your day started"
    blocks = [header(recap_title(recap, tz)), context(summary), divider()]
    headed = any(item.source != "dm" for item in recap.items)  # one more block: the mentions heading
    room = MESSAGE_BLOCK_LIMIT - len(blocks) - 2 - headed
    # DMs first (urgent ones at their head: bot/domain/recap.py), then channel mentions and group DMs under their
    # own heading (issue 20).
    ordered = sorted(recap.items[:room], key=lambda item: item.source != "dm")
    for i, item in enumerate(ordered):
        if item.source != "dm" and (i == 0 or ordered[i - 1].source == "dm"):
            blocks.append(context(MENTIONS_HEADING))
        blocks.append(item_block(item, recap_id=recap_id, tz=tz, permalink=permalinks.get(item.channel_id),
                                 promise=(promises or {}).get(item.channel_id)))  # fmt: skip
    hidden = len(recap.items) - room if len(recap.items) > room else 0
    more = recap.more_conversations + hidden
    if more:
        blocks.append(context(f"…and {more} more conversation{'s' * (more != 1)} waiting in your DMs."))
    blocks.append(context("Already answered conversations are left out. Tick *Done* to clear one from this list."))
    return blocks


def item_block(
    item: RecapItem, *, recap_id: int, tz: str, permalink: str | None, promise: datetime | None = None
) -> dict:
    when = format_local(item.first_at, tz, now=item.last_at)
    if item.count > 1:
        when += f" – {format_local(item.last_at, tz, now=item.last_at)}"
    count = f"{item.count} message{'s' * (item.count != 1)}"
    if item.source != "dm":
        # Where: the channel (Slack shows its name to the person) or "a group DM"; the link opens the message.
        where = "a group DM" if item.source == "mpim" else f"<#{item.channel_id}>"
        link = f" · <{permalink}|Open message>" if permalink else ""
        line = f"{where} · <@{item.sender_id}> · {count} · {when}{link}"
    else:
        link = f" · <{permalink}|Open thread>" if permalink else ""
        line = f"<@{item.sender_id}> · {count} · {when}{link}"
    if item.urgent_to is not None:
        if item.urgent_to == NOT_PASSED_ON:
            to = "could not be passed on"
        else:
            to = "sent to you" if item.urgent_to == ME else f"passed on to <@{item.urgent_to}>"
        line = f":rotating_light: *Urgent* ({to}) · {line}"
    if promise is not None:  # the auto-reply promised an answer today (bot/domain/nudge.py)
        line += f" · :hourglass_flowing_sand: reply by {promise.astimezone(zone(tz)):%H:%M} today"
    if item.texts:
        quoted = "\n".join("> " + escape(clip(t, 200)).replace("\n", " ") for t in item.texts)
        line += "\n" + clip_mrkdwn(quoted, TEXT_PER_ITEM)  # never half an &amp; of the escaped text
    if item.done:
        return section(":white_check_mark: ~" + line.split("\n")[0] + "~ Done")
    return section(line, accessory=button("Done", action_id=DONE_ACTION, value=f"{recap_id}:{item.channel_id}"))


def recap_fallback_text(recap: Recap, tz: str) -> str:
    return recap_title(recap, tz)
