"""The App Home tab: publish it on open, its buttons, its three modals, and a refresh after any settings change.

Every change goes through PeopleService, exactly as `/hours` does, so both validate the same way and write the
same data. The person is always the payload's `user.id` (Slack sets it; nothing in the view can choose it).

Refreshing: PeopleService calls `on_change` after every change. A button on the Home tab publishes the new Home
itself, once, right after the ack (the on_change refresh is switched off for that thread meanwhile so the tab is
not published twice). A modal's submission queues one refresh instead, so its answer never waits on
views.publish (Slack shows an error on a modal not answered within 3 s). A change made anywhere else (`/hours`,
the OAuth callback) queues a refresh for the Home refresher (bot/slack/home_refresh.py, reached through
Services), which publishes it later.

Payload fields are read through bot/slack/payloads.py: a field of the wrong type reads as absent.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime

import pytz
from slack_bolt import Ack, App, BoltContext, BoltRequest
from slack_sdk.errors import SlackApiError

from bot.domain import autoreply
from bot.domain.errors import OffhoursError
from bot.domain.hours import parse_duration, parse_hours, resolve_timezone
from bot.domain.hours.model import DAY_NAMES
from bot.domain.hours.timezones import local_date, zone
from bot.domain.preferences import Preferences
from bot.people import MAX_REPLY_EXCEPTIONS
from bot.services import Services
from bot.slack import payloads
from bot.slack.blocks import home as ui
from bot.slack.blocks import status_sync as status_ui
from bot.slack.blocks.nudge import HOME_NUDGE_ACTION, HOME_NUDGE_CHOICES, home_nudge_blocks
from bot.slack.blocks.urgent import home_blocks as urgent_home_blocks
from bot.slack.listeners import nudge_command
from bot.slack.listeners.mentions_command import home_mentions, register_mentions_toggle
from bot.status_sync import grant_url, summary

log = logging.getLogger(__name__)

_OFF_WORDS = ("off", "closed", "none")
# A user id as Slack sends one in a multi_users_select (the same shape `/hours except` accepts in a mention).
_USER_ID = re.compile(r"[UW][A-Z0-9]{1,31}")


def register(app: App, services: Services) -> None:
    home = HomeTab(services)
    refresher = services.home_refresh
    refresher.attach(home.publish_in_background)
    services.people.on_change.append(refresher)

    @app.event("app_home_opened")
    def home_opened(event: dict, body: dict, context: BoltContext, request: BoltRequest) -> None:
        if payloads.text(event, "tab") != "home":
            return
        team_id = payloads.ident(body, "team_id") or context.team_id or ""
        user_id = payloads.ident(event, "user")
        if not user_id:
            log.info("event type=app_home_opened outcome=invalid")
            return
        with refresher.quiet():
            home.ensure_person(team_id, user_id, token=context.bot_token)
        home.publish(team_id, user_id, token=context.bot_token, headers=request.headers)
        log.info("event type=app_home_opened outcome=published team=%s", team_id)
        services.metrics.event("app_home_opened", "published")

    @app.action(ui.CONNECT_ACTION)
    def connect_clicked(ack: Ack) -> None:
        ack()  # a link button: Slack opens the URL, the app only has to acknowledge the click

    def person(body: dict) -> tuple[str, str]:
        user = payloads.obj(body, "user")
        return payloads.ident(payloads.obj(body, "team"), "id") or payloads.ident(user, "team_id"), payloads.ident(
            user, "id"
        )

    def open_modal(build: Callable[[Preferences], dict], name: str) -> Callable[..., None]:
        def handler(ack: Ack, body: dict, context: BoltContext, request: BoltRequest) -> None:
            ack()
            team_id, user_id = person(body)
            if not home.connected(team_id, user_id):
                home.publish(team_id, user_id, token=context.bot_token, headers=request.headers)
                log.info("action type=%s outcome=not_connected", name)
                return
            view = build(services.people.get(team_id, user_id))
            try:
                services.client.views_open(
                    token=context.bot_token, trigger_id=payloads.text(body, "trigger_id"), view=view
                )
            except SlackApiError as e:
                log.warning("action type=%s outcome=open_failed error=%s", name, e.response.get("error"))
                return
            except OSError as e:  # a timeout: the trigger_id has expired by now, so the click is simply dropped
                log.warning("action type=%s outcome=open_failed error=%s", name, type(e).__name__)
                return
            log.info("action type=%s outcome=opened", name)

        return handler

    app.action(ui.EDIT_HOURS_ACTION)(
        open_modal(lambda prefs: ui.hours_modal(prefs, tz_label=zone_label(prefs.tz, now=services.clock())), "hours")
    )
    app.action(ui.EDIT_MESSAGE_ACTION)(open_modal(ui.message_modal, "message"))
    app.action(ui.ADD_DAYS_OFF_ACTION)(
        open_modal(
            lambda prefs: ui.days_off_modal(
                prefs, today=local_date(services.clock(), prefs.tz), command=services.config.command
            ),
            "days_off",
        )
    )

    def change(name: str, apply: Callable[[str, str], object]) -> Callable[..., None]:
        """A button that changes a setting at once, then shows the new Home."""

        def handler(ack: Ack, body: dict, context: BoltContext, request: BoltRequest) -> None:
            ack()
            team_id, user_id = person(body)
            outcome = "not_connected"
            if home.connected(team_id, user_id):
                with refresher.quiet():
                    apply(team_id, user_id)
                outcome = "changed"
            home.publish(team_id, user_id, token=context.bot_token, headers=request.headers)
            log.info("action type=%s outcome=%s", name, outcome)

        return handler

    people = services.people

    @app.action(HOME_NUDGE_ACTION)
    def nudge_lead(ack: Ack, body: dict, action: dict, context: BoltContext, request: BoltRequest) -> None:
        value = payloads.text(payloads.obj(action, "selected_option"), "value")
        if value not in {choice for choice, _ in HOME_NUDGE_CHOICES}:
            ack()
            log.info("action type=nudge outcome=invalid")
            return
        change("nudge", lambda t, u: people.set_nudge_before(t, u, value))(ack, body, context, request)

    app.action(ui.PAUSE_ACTION)(change("pause", lambda t, u: people.set_paused(t, u, True)))
    register_mentions_toggle(app, services, change)
    app.action(ui.RESUME_ACTION)(change("resume", lambda t, u: people.set_paused(t, u, False)))
    status_prefs = services.store.status
    app.action(status_ui.STATUS_ON_ACTION)(change("status_on", lambda t, u: status_prefs.choose(t, u, enabled=True)))
    app.action(status_ui.STATUS_OFF_ACTION)(change("status_off", lambda t, u: status_prefs.choose(t, u, enabled=False)))
    app.action(ui.CLEAR_DAYS_OFF_ACTION)(change("clear_days_off", people.clear_days_off))
    app.action(ui.HOLIDAYS_OFF_ACTION)(change("holidays_off", lambda t, u: people.set_holidays(t, u, "off")))
    app.action(ui.EDIT_HOLIDAYS_ACTION)(
        open_modal(lambda prefs: ui.holidays_modal(prefs, command=services.config.command), "holidays")
    )

    @app.action(ui.EXCEPTIONS_ACTION)
    def exceptions_picked(ack: Ack, body: dict, context: BoltContext, request: BoltRequest) -> None:
        ack()
        team_id, user_id = person(body)
        [picker, *_] = payloads.objects(body, "actions") or [{}]
        picked = picker.get("selected_users") or []
        outcome = "not_connected"
        if not isinstance(picked, list) or not all(isinstance(u, str) and _USER_ID.fullmatch(u) for u in picked):
            outcome = "invalid"  # not what the picker sends: nothing changed (a string is not its letters)
        elif home.connected(team_id, user_id):
            try:
                with refresher.quiet():
                    people.change_reply_exceptions(team_id, user_id, replace=[u for u in picked if u != user_id])
                outcome = "changed"
            except OffhoursError:
                outcome = "invalid"  # too many: nothing changed, and the Home below shows the list as it is
        home.publish(team_id, user_id, token=context.bot_token, headers=request.headers)
        log.info("action type=exceptions outcome=%s", outcome)

    @app.options(ui.TZ_ACTION)
    def tz_options(ack: Ack, body: dict) -> None:
        zones = search_zones(payloads.text(body, "value"), now=services.clock())
        ack(options=ui.tz_options(zones))

    def submission(name: str, save: Callable[[str, str, dict], dict[str, str]]) -> Callable[..., None]:
        """A modal's submit: `save` validates and saves (returning {} ) or returns errors by block id.

        The Home is then republished by the refresher, after the HTTP answer: with process_before_response the
        answer waits for the listener to return, and a slow views.publish must not make Slack show an error on
        a change that was saved.
        """

        def handler(ack: Ack, body: dict, view: dict, context: BoltContext, request: BoltRequest) -> None:
            team_id, user_id = person(body)
            if not home.connected(team_id, user_id):
                ack()
                home.publish(team_id, user_id, token=context.bot_token, headers=request.headers)
                log.info("view type=%s outcome=not_connected", name)
                return
            values = payloads.obj(payloads.obj(view, "state"), "values")
            with refresher.quiet():
                errors = save(team_id, user_id, values)
            if errors:
                ack(response_action="errors", errors=ui.field_errors(errors))
                log.info("view type=%s outcome=invalid fields=%s", name, ",".join(sorted(errors)))
                return
            ack()
            refresher(team_id, user_id)  # queued: published from the refresher's thread, after this answer
            log.info("view type=%s outcome=saved", name)

        return handler

    app.view(ui.HOURS_VIEW)(submission("hours", home.save_hours))
    app.view(ui.MESSAGE_VIEW)(submission("message", home.save_message))
    app.view(ui.DAYS_OFF_VIEW)(submission("days_off", home.save_days_off))
    app.view(ui.HOLIDAYS_VIEW)(submission("holidays", home.save_holidays))


class HomeTab:
    """Builds, publishes and saves the Home tab for one person at a time."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.people = services.people
        self.command = services.config.command

    def connected(self, team_id: str, user_id: str) -> bool:
        return bool(team_id and user_id) and self.services.store.user_token(team_id, user_id) is not None

    def ensure_person(self, team_id: str, user_id: str, *, token: str | None) -> None:
        """A connected person's visit creates their row, and learns their Slack profile zone while it is not known
        yet, as /hours does (a lookup that failed before is tried again here)."""
        if not self.connected(team_id, user_id):
            return
        profiles = self.services.profiles
        self.people.ensure(
            team_id,
            user_id,
            profile_tz=lambda: profiles.timezone_within_ack(team_id, user_id, token=token, source="home"),
        )

    def view(self, team_id: str, user_id: str, *, headers: dict | None = None) -> dict:
        if not self.connected(team_id, user_id):
            return ui.connect_view(self.services.install_url(headers), command=self.command)
        now = self.services.clock()
        prefs = self.people.get(team_id, user_id)
        view = ui.home_view(
            prefs,
            now=now,
            preview=preview_text(prefs, now=now),
            command=self.command,
            today=local_date(now, prefs.tz),
            exceptions=self.people.reply_exceptions(team_id, user_id),
            max_exceptions=MAX_REPLY_EXCEPTIONS,
            urgent=urgent_home_blocks(self.services.store.urgent.route(team_id, user_id), command=self.command),
            nudge=home_nudge_blocks(nudge_command.before(self.services, prefs), command=self.command),
            mentions=home_mentions(self.services, team_id, user_id, headers=headers),
        )
        # Status sync, right below the person's status line.
        status = summary(self.services.config, self.services.store.status, prefs, now=now)
        link = grant_url(self.services.install_url(headers), team_id=team_id, dnd=status.settings.dnd)
        view["blocks"][3:3] = status_ui.home_status_blocks(status, command=self.command, grant_url=link)
        return view

    def publish(self, team_id: str, user_id: str, *, token: str | None, headers: dict | None = None) -> None:
        try:
            self.services.client.views_publish(
                token=token, user_id=user_id, view=self.view(team_id, user_id, headers=headers)
            )
        except SlackApiError as e:
            # The change (if any) is saved; the next open of the tab publishes it again.
            log.warning("home: views.publish failed team=%s error=%s", team_id, e.response.get("error"))
        except OSError as e:  # a timeout, likewise: never a 5xx (and a redelivery) for a saved change
            log.warning("home: views.publish failed team=%s error=%s", team_id, type(e).__name__)

    def publish_in_background(self, team_id: str, user_id: str) -> None:
        token = self.services.store.bot_token(team_id)
        if token is None:
            return
        self.publish(team_id, user_id, token=token)

    # --- modal submissions: {} when saved, else {block_id: what is wrong}; nothing is saved on any error ---

    def save_hours(self, team_id: str, user_id: str, values: dict) -> dict[str, str]:
        prefs = self.people.get(team_id, user_id)
        days = [_text(values, block_id) for block_id in ui.DAY_BLOCKS]
        spec = hours_spec(days)
        # Each day on its own first, so an error lands on its day; then the week (no hours at all, no time off).
        errors = day_errors(days)
        if not errors:
            try:
                weekly = parse_hours(spec)
            except OffhoursError as e:
                errors[ui.DAY_BLOCKS[0]] = str(e)
        option = payloads.obj(_value(values, ui.TZ_BLOCK, ui.TZ_ACTION), "selected_option")
        tz = _scalar(option.get("value"))  # a value that is not text (a number, say) is a wrong zone to explain
        if not tz and not prefs.zone_pending:
            # Only a modal opened while the zone was still to be learnt may leave it empty; learnt since, it asks.
            errors[ui.TZ_BLOCK] = "Pick a time zone: type a city or region to search, e.g. Rome or New York."
        elif tz:  # empty while pending: the profile zone is still to be learnt
            try:
                tz = resolve_timezone(tz)
            except OffhoursError as e:
                errors[ui.TZ_BLOCK] = str(e)
        reply = _text(values, ui.REPLY_BLOCK)
        try:
            reply_within = parse_duration(reply)
        except OffhoursError as e:
            errors[ui.REPLY_BLOCK] = str(e)
        if errors:
            return errors
        # Only what changed is saved: leaving the default hours untouched keeps following the workspace default.
        if weekly != prefs.weekly:
            self.people.set_hours(team_id, user_id, spec)
        if tz and (tz != prefs.tz or prefs.zone_pending):  # picking the fallback zone while pending is a choice
            self.people.set_timezone(team_id, user_id, tz)
        if reply_within != prefs.reply_within:
            self.people.set_reply_within(team_id, user_id, reply)
        return {}

    def save_message(self, team_id: str, user_id: str, values: dict) -> dict[str, str]:
        text = _text(values, ui.MESSAGE_BLOCK)
        prefs = self.people.get(team_id, user_id)
        try:
            if not text.strip():
                if prefs.custom_message:
                    self.people.reset_message(team_id, user_id)
            elif text.strip() != prefs.message or not prefs.custom_message:
                self.people.set_message(team_id, user_id, text)
        except OffhoursError as e:
            return {ui.MESSAGE_BLOCK: str(e)}
        return {}

    def save_days_off(self, team_id: str, user_id: str, values: dict) -> dict[str, str]:
        prefs = self.people.get(team_id, user_id)
        today = local_date(self.services.clock(), prefs.tz)
        typed = _text(values, ui.OFF_TEXT_BLOCK).strip()
        picked = {block: _value(values, block).get("selected_date") for block in (ui.OFF_FROM_BLOCK, ui.OFF_TO_BLOCK)}
        for block, value in picked.items():
            if value is not None and not isinstance(value, str):
                return {block: f"Pick a date from the calendar, e.g. {today.isoformat()}"}
        first, last = (payloads.clean(picked[b] or "") for b in (ui.OFF_FROM_BLOCK, ui.OFF_TO_BLOCK))
        if typed:
            spec, block = typed, ui.OFF_TEXT_BLOCK
        elif first:
            spec, block = (f"{first}..{last}" if last else first), (ui.OFF_TO_BLOCK if last else ui.OFF_FROM_BLOCK)
            if last and last < first:
                return {ui.OFF_TO_BLOCK: f"{last} is before the first day off ({first}) — pick a later date"}
        elif last:
            return {ui.OFF_FROM_BLOCK: "Pick the first day off too (or only it, for a single day)"}
        else:
            return {ui.OFF_FROM_BLOCK: f"Pick a day, or type one below — e.g. {today.isoformat()}"}
        try:
            self.people.add_days_off(team_id, user_id, spec, today=today)
        except OffhoursError as e:
            return {block: str(e)}
        return {}

    def save_holidays(self, team_id: str, user_id: str, values: dict) -> dict[str, str]:
        typed = _text(values, ui.HOLIDAYS_BLOCK).strip()
        try:
            self.people.set_holidays(team_id, user_id, typed or "off")
        except OffhoursError as e:
            return {ui.HOLIDAYS_BLOCK: str(e)}
        return {}


# --- pure helpers -------------------------------------------------------------------------------------


def preview_text(prefs: Preferences, *, now: datetime) -> str:
    """The boundary message as a sender would get it: now when off, else when the current working stretch ends."""
    at = prefs.schedule.next_end(now) if prefs.schedule.is_working(now) else now
    return autoreply.compose(prefs, now=at, sender_id=prefs.user_id)


def hours_spec(days: list[str]) -> str:
    """Seven weekday fields -> one `/hours set` text: ["9-17", "", ...] -> "mon 9-17; tue off; ..."."""
    return "; ".join(f"{name.lower()} {text.strip() or 'off'}" for name, text in zip(DAY_NAMES, days, strict=True))


def day_errors(days: list[str]) -> dict[str, str]:
    """Which weekday fields are wrong on their own, and why."""
    errors = {}
    for block_id, name, text in zip(ui.DAY_BLOCKS, DAY_NAMES, days, strict=True):
        text = text.strip()
        if any(sep in text for sep in ";·\n"):
            errors[block_id] = f"One day per field — write only {name}'s times here, e.g. 9:00-17:30 or off"
            continue
        if not text or text.lower() in _OFF_WORDS:
            continue
        try:
            parse_hours(f"{name.lower()} {text}")
        except OffhoursError as e:
            errors[block_id] = str(e)
    return errors


def search_zones(query: str, *, now: datetime, limit: int = 100) -> list[tuple[str, str]]:
    """Zones whose name contains the query (spaces match underscores), city-name matches first."""
    needle = "_".join(query.strip().lower().split())
    found = []
    for name in pytz.common_timezones:
        lowered = name.lower()
        if needle and needle not in lowered:
            continue
        city = lowered.rsplit("/", 1)[-1]
        rank = 0 if city.startswith(needle) else 1 if needle in city else 2
        found.append((rank, name))
    found.sort()
    return [(name, zone_label(name, now=now)) for _, name in found[:limit]]


def zone_label(name: str, *, now: datetime) -> str:
    """`Europe/Rome (UTC+01:00)`: the zone and its offset at `now`."""
    offset = now.astimezone(zone(name)).strftime("%z")
    return f"{name.replace('_', ' ')} (UTC{offset[:3]}:{offset[3:]})"


def _value(values: dict, block_id: str, action_id: str = ui.VALUE_ACTION) -> dict:
    return payloads.obj(payloads.obj(values, block_id), action_id)


def _scalar(value: object) -> str:
    """A field's value as text: a string (lone surrogates replaced) or a number as typed; "" for anything else."""
    if isinstance(value, str):
        return payloads.clean(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _text(values: dict, block_id: str) -> str:
    return _scalar(_value(values, block_id).get("value"))
