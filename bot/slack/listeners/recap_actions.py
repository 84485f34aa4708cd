"""The recap's "Done" buttons: tick one conversation off and update the recap message."""

from __future__ import annotations

import logging

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bot.services import Services
from bot.slack import payloads
from bot.slack.blocks.recap import DONE_ACTION
from bot.slack.recap_message import RecapRenderer

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    renderer = RecapRenderer(services)

    @app.action(DONE_ACTION)
    def recap_done(ack: Ack, body: dict, action: dict) -> None:
        ack()
        team_id = payloads.ident(payloads.obj(body, "team"), "id")
        user_id = payloads.ident(payloads.obj(body, "user"), "id")
        recap_id, _, channel_id = payloads.text(action, "value").partition(":")
        # Recap ids are the recaps table's integer key: a longer number than a BIGINT holds is no recap of ours.
        if not (recap_id.isascii() and recap_id.isdigit() and len(recap_id) <= 18) or not payloads.is_id(channel_id):
            log.info("action type=recap_done outcome=invalid")
            return
        if not services.store.recaps.mark_done(int(recap_id), channel_id, team_id=team_id, user_id=user_id):
            log.info("action type=recap_done outcome=refused")  # someone else's recap
            return
        try:
            renderer.refresh(int(recap_id), now=services.clock())
        except SlackApiError as e:
            log.warning("action type=recap_done outcome=update_failed error=%s", e.response.get("error"))
            return
        except OSError as e:  # a timeout: the tick is saved; the next click re-renders the recap
            log.warning("action type=recap_done outcome=update_failed error=%s", type(e).__name__)
            return
        log.info("action type=recap_done outcome=done")
