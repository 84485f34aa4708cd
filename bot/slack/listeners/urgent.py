""" "It's urgent" (issue 19): `/hours urgent`, the auto-reply's button, the sender's modal.

The button opens a modal for the original sender only; its submission is checked again (the person may have
disconnected, changed their route, or the sender already passed a note on) and the note is recorded as a due
urgent notice before the ack, for the delivery engine to send (bot/workers/urgent.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bot.domain.errors import OffhoursError
from bot.domain.urgent import ME, UrgentRoute, note_problem
from bot.services import Services
from bot.slack import payloads
from bot.slack.blocks import urgent as ui
from bot.slack.blocks.common import section
from bot.slack.client import ack_client
from bot.storage.urgent import RepliedMessage

log = logging.getLogger(__name__)


class RouteError(OffhoursError):
    """An urgent route that cannot be set: nothing was changed."""


# --- /hours urgent ---------------------------------------------------------------------------------------------


def urgent_command(services: Services, *, team_id: str, user_id: str, arg: str,
                   mentioned: Callable[[str], list[str]]) -> tuple[list[dict], str]:  # fmt: skip
    """`urgent` shows the route; `urgent @dana` / `urgent me` / `urgent off` sets it (nothing changes on a refusal)."""
    command = services.config.command
    store = services.store.urgent
    word = arg.strip().lower()
    if not word:
        route = store.route(team_id, user_id)
        text = route_line(route, command=command)
    elif word == "off":
        store.set_route(team_id, user_id, None, now=services.clock())
        text = 'Urgent notes are off: your auto-reply has no "It\'s urgent" button.'
    elif word == ME:
        store.set_route(team_id, user_id, ME, now=services.clock())
        text = (
            "Urgent notes now come to you, as a DM from Offhours. While your Slack notifications are paused "
            f"(Do Not Disturb) they arrive silently: a backup (`{command} urgent @someone`) is safer."
        )
    else:
        ids = mentioned(arg)
        if len(ids) != 1:
            raise RouteError(f"`{command} urgent` takes one person, as a mention, or `me` or `off`.")
        target = ids[0]
        set_backup(services, team_id=team_id, user_id=user_id, target=target)
        text = f'Urgent notes now go to <@{target}>: your auto-reply carries an "It\'s urgent" button.'
    return [section(":rotating_light: " + text)], text


def route_line(route: str | None, *, command: str) -> str:
    if route is None:
        return f"Urgent notes are off. Set a backup with `{command} urgent @someone`, or `{command} urgent me`."
    if route == ME:
        return "Urgent notes come to you, as a DM from Offhours."
    return f"Urgent notes go to <@{route}>."


def set_backup(services: Services, *, team_id: str, user_id: str, target: str) -> None:
    """Make `target` the backup of `user_id`, or raise RouteError (nothing changed)."""
    if target == user_id:
        command = services.config.command
        raise RouteError(f"You can't be your own backup. To get urgent notes yourself, use `{command} urgent me`.")
    _check_backup(services, team_id=team_id, target=target)
    services.store.urgent.set_route(team_id, user_id, target, now=services.clock())


def _check_backup(services: Services, *, team_id: str, target: str) -> None:
    """Refuse bots, deactivated people and unknown ids (users.info, before the ack: no retries, a short timeout)."""
    token = services.store.bot_token(team_id)
    try:
        user = ack_client(services.client).users_info(token=token, user=target)["user"]
    except SlackApiError as e:
        if e.response.get("error") in ("user_not_found", "user_not_visible"):
            raise RouteError(f"<@{target}> is not someone in this workspace: nothing was changed.") from e
        log.warning("urgent route: users.info failed error=%s", e.response.get("error"))
        raise RouteError("Slack could not tell who that is just now: nothing was changed. Try again.") from e
    except OSError as e:
        log.warning("urgent route: users.info failed error=%s", type(e).__name__)
        raise RouteError("Slack could not tell who that is just now: nothing was changed. Try again.") from e
    if user.get("is_bot") or user.get("is_app_user") or target == "USLACKBOT":
        raise RouteError(f"<@{target}> is a bot: a backup must be a person. Nothing was changed.")
    if user.get("deleted"):
        raise RouteError(f"<@{target}> is deactivated: choose someone active. Nothing was changed.")


# --- the button and the modal ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Usable:
    """A click or submission that may go ahead: the reply it belongs to and where its note goes."""

    reply: RepliedMessage
    route: UrgentRoute


def _usable(services: Services, *, team_id: str, user_id: str, reply_id: str) -> Usable | str:
    """The reply and route for this sender's click, or the answer that explains why not (nothing is sent)."""
    # The auto-replies' key is an INTEGER: a larger number is no reply of ours (and PostgreSQL would refuse it).
    if not (reply_id.isascii() and reply_id.isdigit() and len(reply_id) <= 10 and int(reply_id) < 2**31):
        return "This button doesn't work any more."
    reply = services.store.urgent.replied_message(team_id, int(reply_id))
    if reply is None:
        return "This button doesn't work any more."
    person = f"<@{reply.recipient_id}>"
    if reply.sender_id != user_id:
        return f"Only <@{reply.sender_id}>, who wrote to {person}, can use this button."
    if services.store.user_token(team_id, reply.recipient_id) is None:
        return f"{person} no longer uses Offhours, so nothing can be passed on. Your message is still in the DM."
    target = services.store.urgent.route(team_id, reply.recipient_id)
    if target is None:
        return f"{person} no longer takes urgent notes. Your message is safe and will be seen when they are back."
    if target == user_id:
        return f"You are {person}'s backup, so there is no one else to pass this on to."
    now = services.clock()
    if reply.window_end is not None and now >= reply.window_end:
        return f"{person} is back now: your message will be seen."
    existing = services.store.urgent.existing(reply)
    if existing is not None:
        return f"Already passed on to <@{existing.target_id}> — one urgent note per absence."
    return Usable(reply=reply, route=UrgentRoute(person=reply.recipient_id, target=target))


def _backup_gone(services: Services, team_id: str, route: UrgentRoute) -> str | None:
    """Why the backup cannot take the note (deactivated, gone); None when they can, or Slack could not say."""
    if route.to_self:
        return None
    try:
        user = ack_client(services.client).users_info(token=services.store.bot_token(team_id), user=route.target)
    except SlackApiError as e:
        if e.response.get("error") in ("user_not_found", "user_not_visible"):
            return _gone_text(route)
        return None  # Slack could not tell: the notice goes out, and its delivery reports what Slack says
    except OSError:
        return None
    if user["user"].get("deleted"):
        return _gone_text(route)
    return None


def _gone_text(route: UrgentRoute) -> str:
    return (f"<@{route.person}>'s backup is no longer in the workspace, so nothing was passed on. Your message is "
            "safe and will be seen when they are back.")  # fmt: skip


def register(app: App, services: Services) -> None:
    @app.action(ui.URGENT_ACTION)
    def urgent_clicked(ack: Ack, body: dict, action: dict, respond: Any) -> None:
        ack()
        team_id = payloads.ident(payloads.obj(body, "team"), "id")
        user_id = payloads.ident(payloads.obj(body, "user"), "id")
        # Only database reads before views.open: the trigger expires 3 s after the click, and with
        # process_before_response the ack waits for this listener. Whether the backup is still here is asked on submit.
        usable = _usable(services, team_id=team_id, user_id=user_id, reply_id=payloads.text(action, "value"))
        if isinstance(usable, str):
            _tell(respond, usable)
            log.info("action type=urgent_open outcome=refused")
            return
        view = ui.note_modal(usable.reply.id, target_id=usable.route.recipient, person_id=usable.route.person,
                             to_self=usable.route.to_self)  # fmt: skip
        try:
            ack_client(services.client).views_open(
                token=services.store.bot_token(team_id), trigger_id=payloads.text(body, "trigger_id"), view=view
            )
        except (SlackApiError, OSError) as e:
            code = e.response.get("error") if isinstance(e, SlackApiError) else type(e).__name__
            log.warning("action type=urgent_open outcome=open_failed error=%s", code)
            _tell(respond, "Slack could not open the form just now. Try the button again.")
            return
        log.info("action type=urgent_open outcome=opened")

    def home_change(body: dict, change: Callable[[str, str], None], name: str) -> None:
        """A change from the Home tab, then the Home published again (with what was refused, if it was)."""
        from bot.slack.listeners.home import HomeTab  # the Home tab's own builder

        team_id = payloads.ident(payloads.obj(body, "team"), "id")
        user_id = payloads.ident(payloads.obj(body, "user"), "id")
        if services.store.user_token(team_id, user_id) is None:
            log.info("action type=%s outcome=not_connected", name)
            return
        problem = None
        try:
            change(team_id, user_id)
            outcome = "changed"
        except RouteError as e:
            problem, outcome = str(e), "invalid"
        view = HomeTab(services).view(team_id, user_id)
        if problem is not None:
            route = services.store.urgent.route(team_id, user_id)
            [section_block, *_] = ui.home_blocks(route, command=services.config.command, problem=problem)
            view["blocks"] = [section_block if b.get("block_id") == ui.HOME_BLOCK else b for b in view["blocks"]]
        try:
            services.client.views_publish(token=services.store.bot_token(team_id), user_id=user_id, view=view)
        except (SlackApiError, OSError) as e:
            code = e.response.get("error") if isinstance(e, SlackApiError) else type(e).__name__
            log.warning("home: views.publish failed team=%s error=%s", team_id, code)
        log.info("action type=%s outcome=%s", name, outcome)

    @app.action(ui.PICK_ACTION)
    def backup_picked(ack: Ack, body: dict, action: dict) -> None:
        ack()
        picked = payloads.ident(action, "selected_user")

        def change(team_id: str, user_id: str) -> None:
            if not picked:
                raise RouteError("Pick one person as your backup.")
            set_backup(services, team_id=team_id, user_id=user_id, target=picked)

        home_change(body, change, "urgent_pick")

    @app.action(ui.ME_ACTION)
    def route_to_me(ack: Ack, body: dict) -> None:
        ack()
        home_change(body, lambda t, u: services.store.urgent.set_route(t, u, ME, now=services.clock()), "urgent_me")

    @app.action(ui.OFF_ACTION)
    def route_off(ack: Ack, body: dict) -> None:
        ack()
        home_change(body, lambda t, u: services.store.urgent.set_route(t, u, None, now=services.clock()), "urgent_off")

    @app.action("urgent_dm_sender")
    def dm_sender_clicked(ack: Ack) -> None:
        ack()  # a link button: Slack opens the DM

    @app.view(ui.URGENT_VIEW)
    def urgent_submitted(ack: Ack, body: dict, view: dict) -> None:
        team_id = payloads.ident(payloads.obj(body, "team"), "id")
        user_id = payloads.ident(payloads.obj(body, "user"), "id")
        note = _note(view)
        problem = note_problem(note)
        if problem is not None:
            ack(response_action="errors", errors={ui.NOTE_BLOCK: problem})
            log.info("view type=urgent_note outcome=invalid")
            return
        usable = _usable(services, team_id=team_id, user_id=user_id, reply_id=payloads.text(view, "private_metadata"))
        if isinstance(usable, str):
            ack(response_action="update", view=ui.done_modal(usable))
            log.info("view type=urgent_note outcome=refused")
            return
        gone = _backup_gone(services, team_id, usable.route)
        if gone is not None:
            ack(response_action="update", view=ui.done_modal(gone))
            log.info("view type=urgent_note outcome=backup_gone")
            return
        target = usable.route.recipient
        # Recorded before the ack: once Slack has shown "sent", the note is in the database, due now.
        notice_id = services.store.urgent.record(usable.reply, target_id=target, note=note.strip(),
                                                 now=services.clock())  # fmt: skip
        if notice_id is None:
            existing = services.store.urgent.existing(usable.reply)
            already = existing.target_id if existing is not None else target
            ack(response_action="update", view=ui.done_modal(f"Already passed on to <@{already}>."))
            log.info("view type=urgent_note outcome=duplicate")
            return
        services.urgent_queued.set()
        whom = "them" if usable.route.to_self else f"<@{target}>"
        ack(response_action="update", view=ui.done_modal(f":white_check_mark: Passed on to <@{target}>. Offhours "
                                                         f"is sending {whom} your note now."))  # fmt: skip
        log.info("view type=urgent_note outcome=recorded id=%s", notice_id)


def _note(view: dict) -> str:
    values = payloads.obj(payloads.obj(view, "state"), "values")
    return payloads.text(payloads.obj(payloads.obj(values, ui.NOTE_BLOCK), ui.NOTE_INPUT), "value")


def _tell(respond: Any, text: str) -> None:
    if getattr(respond, "response_url", None) is None:  # Bolt's respond raises without one: the click is acked
        log.info("action type=urgent_open outcome=no_response_url")
        return
    try:
        respond(text=text, response_type="ephemeral", replace_original=False)
    except OSError as e:  # the response URL is Slack's; a failure there leaves nothing to undo
        log.warning("action type=urgent_open outcome=respond_failed error=%s", type(e).__name__)
