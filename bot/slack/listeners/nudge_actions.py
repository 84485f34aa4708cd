"""The nudge's buttons: Done (the conversation ticked off, as in the recap) and Snooze 1 h (once)."""

from __future__ import annotations

import logging
from datetime import datetime

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bot.domain import nudge
from bot.domain.hours import format_local
from bot.services import Services
from bot.slack import payloads
from bot.slack.blocks.nudge import NUDGE_DONE_ACTION, NUDGE_SNOOZE_ACTION, nudge_settled_blocks, nudge_text
from bot.slack.recap_message import RecapRenderer

log = logging.getLogger(__name__)


def _nudge_id(action: dict) -> int | None:
    value = payloads.text(action, "value")
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else None


def register(app: App, services: Services) -> None:
    renderer = RecapRenderer(services)

    def update(body: dict, nudge_id: int, *, note: str, now: datetime) -> None:
        """Replace the nudge's buttons by what the click did (chat.update with the bot token)."""
        row = services.store.nudges.get(nudge_id)
        container = payloads.obj(body, "container")
        channel, ts = payloads.ident(container, "channel_id"), payloads.ts(container, "message_ts")
        if row is None or not channel or not ts:
            return
        tz = services.people.get(row["team_id"], row["user_id"]).tz
        text = nudge_text(sender_id=row["sender_id"], received_at=row["received_at"],
                          promised_at=row["promised_at"], tz=tz, now=now)  # fmt: skip
        try:
            services.client.chat_update(token=services.store.bot_token(row["team_id"]), channel=channel, ts=ts,
                                        text=text, blocks=nudge_settled_blocks(text, note))  # fmt: skip
        except (SlackApiError, OSError) as e:  # what the click did is saved either way
            log.warning("action type=nudge outcome=update_failed error=%s",
                        e.response.get("error") if isinstance(e, SlackApiError) else type(e).__name__)  # fmt: skip

    @app.action(NUDGE_DONE_ACTION)
    def nudge_done(ack: Ack, body: dict, action: dict) -> None:
        ack()
        team_id = payloads.ident(payloads.obj(body, "team"), "id")
        user_id = payloads.ident(payloads.obj(body, "user"), "id")
        nudge_id = _nudge_id(action)
        done = None if nudge_id is None else services.store.nudges.done(nudge_id, team_id=team_id, user_id=user_id)
        if nudge_id is None or done is None:
            log.info("action type=nudge_done outcome=refused")  # malformed, or someone else's
            return
        now = services.clock()
        for recap_id in done[1]:  # the recap that lists the conversation shows it done too
            try:
                renderer.refresh(recap_id, now=now)
            except (SlackApiError, OSError) as e:
                log.warning("action type=nudge_done recap_update_failed error=%s",
                            e.response.get("error") if isinstance(e, SlackApiError) else type(e).__name__)  # fmt: skip
        update(body, nudge_id, note=":white_check_mark: Done", now=now)
        log.info("action type=nudge_done outcome=done")

    @app.action(NUDGE_SNOOZE_ACTION)
    def nudge_snooze(ack: Ack, body: dict, action: dict) -> None:
        ack()
        team_id = payloads.ident(payloads.obj(body, "team"), "id")
        user_id = payloads.ident(payloads.obj(body, "user"), "id")
        nudge_id = _nudge_id(action)
        row = None if nudge_id is None else services.store.nudges.get(nudge_id)
        if nudge_id is None or row is None or (row["team_id"], row["user_id"]) != (team_id, user_id):
            log.info("action type=nudge_snooze outcome=refused")
            return
        now = services.clock()
        until = nudge.snooze_until(now=now, promised=row["promised_at"])
        if until is None:
            update(body, nudge_id, note="Too close to the promised time to snooze.", now=now)
            log.info("action type=nudge_snooze outcome=too_late")
            return
        if not services.store.nudges.snooze(nudge_id, team_id=team_id, user_id=user_id, until=until, now=now):
            log.info("action type=nudge_snooze outcome=refused")  # done, or snoozed once already
            return
        tz = services.people.get(team_id, user_id).tz
        update(body, nudge_id, note=f":zzz: Snoozed until {format_local(until, tz, now=now)}", now=now)
        log.info("action type=nudge_snooze outcome=snoozed")
