"""Recording a DM to a connected person who is off hours, and queueing its one auto-reply: the one path shared by
the message listener (before the ack) and the deferred-DM worker (bot/workers/deferred.py, after a refused lookup).

Recording twice is harmless (inbox.record is idempotent by its unique key), so either may run it for the same DM.
The channel listener (bot/slack/listeners/channel_messages.py) records mentions and group DMs through it too, and
reads events with the same `parse_message` and `authorized_user`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bot.domain import autoreply
from bot.domain.autoreply import DirectMessage
from bot.domain.preferences import preferences
from bot.services import Services
from bot.slack import payloads
from bot.storage.inbox import IncomingRecord
from bot.storage.store import DmView


def parse_message(event: dict, body: dict) -> DirectMessage:
    """The event as the rules see it; every field read type-safely (bot/slack/payloads.py)."""
    metadata = payloads.obj(event, "metadata")
    return DirectMessage(
        team_id=payloads.ident(body, "team_id") or payloads.ident(event, "team"),
        channel_id=payloads.ident(event, "channel"),
        channel_type=payloads.text(event, "channel_type"),
        ts=payloads.ts(event, "ts"),
        thread_ts=payloads.ts(event, "thread_ts") or None,
        sender_id=payloads.ident(event, "user") or None,
        subtype=_subtype(event),
        is_bot=bool(event.get("bot_id") or event.get("bot_profile")),
        metadata_event_type=payloads.optional_text(metadata, "event_type"),
        text=payloads.text(event, "text"),
        from_this_app=bool(payloads.text(event, "app_id")) and event.get("app_id") == body.get("api_app_id"),
    )


def _subtype(event: dict) -> str | None:
    """The subtype when it is a string; present but of another type it is no plain message (never a reply)."""
    value = event.get("subtype")
    if value is None:
        return None
    return payloads.clean(value) if isinstance(value, str) else "malformed"


def authorized_user(body: dict) -> str | None:
    """The connected person whose token saw this event."""
    for authorization in payloads.objects(body, "authorizations"):
        user_id = payloads.ident(authorization, "user_id")
        if user_id:
            return user_id
    return None


def message_time(ts: str, fallback: datetime) -> datetime:
    """When a message was sent, by its ts; `fallback` for a ts that is no time (a number past the year 9999, too)."""
    try:
        return datetime.fromtimestamp(float(ts), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return fallback


def stored_text(services: Services, message: DirectMessage) -> str | None:
    """The text as kept for the recap: only when recaps include it. PostgreSQL text cannot hold NUL; Slack's never
    needs it."""
    return message.text.replace("\x00", "") if services.config.recap.include_text else None


def record_for_other_member(services: Services, message: DirectMessage, recipient: str) -> str:
    """The connected person wrote `message` (the rules let it through for `recipient`, the DM's other member):
    record it if they are off hours."""
    view = services.store.dm_view(
        message.team_id, message.channel_id, recipient_id=recipient, sender_id=None, excepted_sender=message.sender_id
    )
    return record_after_hours(services, message, recipient, view)


def record_after_hours(
    services: Services,
    message: DirectMessage,
    recipient: str,
    view: DmView,
    *,
    external: bool = False,
    source: str = "dm",
) -> str:
    """Record `message` for `recipient`'s recap when it came outside their hours, and queue its auto-reply unless
    withheld. Returns the outcome for the log line."""
    if view.recipient_token is None:
        return "ignored:not_connected"
    prefs = preferences(view.recipient, services.config.defaults, team_id=message.team_id, user_id=recipient)
    at = message_time(message.ts, services.clock())
    window = prefs.schedule.off_window(at)
    if window is None:
        return "ignored:working"
    # Recorded for the recap either way; no auto-reply while paused, to someone on the exception list, while the
    # person is present in this DM, or to another organisation unless the person or the config answers them.
    withheld = autoreply.reply_withheld(
        paused=prefs.paused, sender_excepted=view.sender_excepted,
        present=autoreply.is_present(view.recipient_wrote_at, at=at),
        external_silenced=external and prefs.external_message is None and services.config.reply.external == "none",
    )  # fmt: skip
    reply_window = autoreply.reply_window(window, at=at, tz=prefs.tz, once_per=services.config.reply.once_per)
    if reply_window is None:
        return "ignored:working"
    record = IncomingRecord(
        team_id=message.team_id,
        recipient_id=recipient,
        sender_id=message.sender_id or "",
        channel_id=message.channel_id,
        ts=message.ts,
        thread_ts=message.thread_root,
        received_at=at,
        due_at=window[1],
        text=stored_text(services, message),
        window_key=reply_window.key,
        window_start=reply_window.start,
        window_end=reply_window.end,
        reply=withheld is None,
        external=external,
        source=source,
    )
    outcome = services.store.inbox.record(record, now=services.clock())
    if outcome == "replied":
        services.replies_queued.set()
    if outcome == "not_connected":
        return "ignored:not_connected"  # forgotten since the read above: nothing was written
    if withheld and outcome != "duplicate":
        return f"ignored:{withheld}"
    return outcome
