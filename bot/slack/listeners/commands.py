"""The /hours slash command: parse the subcommand, call PeopleService, answer ephemerally.

Every answer goes back in the ack (Slack shows a command's ack body only to the caller), so nothing here
posts to Slack before the 3-second deadline except, while the person's zone is not known yet (first contact, or
an earlier lookup failed), one users.info with a short timeout for their profile zone.
"""

from __future__ import annotations

import difflib
import logging
import re
import time
from collections.abc import Callable
from datetime import datetime

import pytz
from slack_bolt import Ack, App, BoltRequest
from slack_sdk.errors import SlackApiError

from bot.domain import autoreply
from bot.domain.errors import HoursError, OffhoursError
from bot.domain.hours import render_days_off
from bot.domain.preferences import Preferences
from bot.services import Services
from bot.slack.blocks import status as ui
from bot.slack.client import REVOKED, sending_client
from bot.slack.listeners import nudge_command
from bot.slack.listeners.mentions_command import mentions_subcommand
from bot.slack.listeners.status import StatusCommand
from bot.status_sync import clear_now, end_snooze_now

log = logging.getLogger(__name__)

TAKES_NO_VALUE = ("show", "pause", "resume", "preview", "forget")
SUBCOMMANDS = (
    "show", "set", "tz", "message", "reply", "off", "holidays", "except", "when", "pause", "resume", "preview",
    "help", "forget", "channel", "urgent", "status", "dnd", "nudge", "mentions",
)  # fmt: skip
FORGET_CLEANUP_S = 0.7  # /hours forget: no best-effort call (status, snooze) starts after this
# Answered for anyone in the workspace, connected or not.
OPEN_TO_ALL = ("when", "channel")  # channel: who may change a channel is checked there

# A correct example for each subcommand that takes a value: every refusal shows one, whatever the engine said.
EXAMPLES = {
    "set": "set mon-thu 9-17:30; fri 9am-1pm",
    "tz": "tz Europe/Rome",
    "message": "message Hi {sender}, I'm off until {back_at}.",
    "reply": "reply 2h",
    "off": "off 2026-12-24..2027-01-02",
    "holidays": "holidays DE-BY",
    "except": "except @maria @sam",
    "when": "when @maria",
    "mentions": "mentions on",
    "channel": "channel set mon-fri 9-17:30 Europe/London",
    "urgent": "urgent @dana",
    "status": "status text Off until {back_at}",
    "dnd": "dnd on",
    "nudge": "nudge 1h",
}


class UsageError(OffhoursError):
    """The subcommand itself is wrong (unknown, or missing its argument)."""


def _unknown() -> None:
    return None


# A user mention as Slack sends it in a command's text with should_escape: `<@U123|name>`, or `<@U123>`.
_MENTION = re.compile(r"<@([UW][A-Z0-9]{1,31})(?:\|[^<>]*)?>")


def mentioned_users(text: str, *, what: str) -> list[str]:
    """The user ids of a text made of mentions only (in order, each once); UsageError on anything else."""
    rest = _MENTION.sub(" ", text)
    leftover = " ".join(rest.replace(",", " ").split())
    if leftover:
        raise UsageError(
            f"`{leftover[:40]}` is not a person — name people with @, as Slack suggests while you type (`{what}`)."
        )
    return list(dict.fromkeys(_MENTION.findall(text)))


def _mentions(ids: list[str]) -> str:
    return ", ".join(f"<@{i}>" for i in ids)


def split_command(text: str) -> tuple[str, str]:
    """`"set mon-fri 9-17"` -> `("set", "mon-fri 9-17")`; an empty text means `show`."""
    text = (text or "").strip()
    if not text:
        return "show", ""
    head, _, rest = text.partition(" ")
    return head.lower(), rest.strip()


def register(app: App, services: Services) -> None:
    command = services.config.command

    @app.action(ui.CONNECT_ACTION)
    def connect_clicked(ack: Ack) -> None:
        ack()  # a link button: Slack opens the install URL; without an ack it shows the person an error

    @app.command(command)
    def hours_command(ack: Ack, body: dict, request: BoltRequest) -> None:
        started = time.perf_counter()
        team_id, user_id = body.get("team_id") or "", body.get("user_id") or ""
        sub, arg = split_command(body.get("text") or "")
        if sub not in OPEN_TO_ALL and services.store.user_token(team_id, user_id) is None:
            ack(
                blocks=ui.connect_blocks(services.install_url(request.headers), command=command),
                text="Connect your DMs to use Offhours",
                response_type="ephemeral",
            )
            _log(sub, "not_connected", started)
            return
        handler = Subcommands(services, team_id=team_id, user_id=user_id, channel_id=body.get("channel_id") or "",
                              channel_name=body.get("channel_name") or "",
                              install_url=services.install_url(request.headers))  # fmt: skip
        try:
            blocks, text = handler.run(sub, arg)
            outcome = "ok"
        except OffhoursError as e:
            example = f"{command} {_example(sub, arg)}" if sub in EXAMPLES else None
            blocks, text = ui.error_blocks(str(e), command=command, example=example), str(e)
            outcome = "invalid"
        ack(blocks=blocks, text=text[:300], response_type="ephemeral")
        _log(sub if sub in SUBCOMMANDS else "unknown", outcome, started)


def _example(sub: str, arg: str) -> str:
    if sub == "except" and arg.lower().startswith("remove"):
        return "except remove @maria"
    return EXAMPLES[sub]


def _log(sub: str, outcome: str, started: float) -> None:
    latency = (time.perf_counter() - started) * 1000
    log.info("command sub=%s outcome=%s latency_ms=%.1f", sub, outcome, latency)


class Subcommands:
    """One method per subcommand, each returning (blocks, fallback text)."""

    def __init__(
        self,
        services: Services,
        *,
        team_id: str,
        user_id: str,
        channel_id: str = "",
        channel_name: str = "",
        install_url: str | None = None,
    ) -> None:
        self.services = services
        self.channel_id, self.channel_name = channel_id, channel_name  # where the command ran (`channel`)
        self.install_url = install_url or services.install_url()
        self.people = services.people
        self.team_id = team_id
        self.user_id = user_id
        self.now = services.clock()
        self.command = services.config.command

    def run(self, sub: str, arg: str) -> tuple[list[dict], str]:
        handlers: dict[str, Callable[[str], tuple[list[dict], str]]] = {
            "show": self.show, "set": self.set_hours, "tz": self.set_tz, "message": self.set_message,
            "reply": self.set_reply, "off": self.days_off, "pause": self.pause, "resume": self.resume,
            "preview": self.preview, "help": self.help, "forget": self.forget, "holidays": self.holidays,
            "except": self.exceptions, "when": self.when, "channel": self.channel, "urgent": self.urgent,
            "status": self.status,
            "dnd": lambda arg: self._status_command().dnd(arg), "nudge": lambda arg: nudge_command.run(self, arg),
            "mentions": lambda arg: mentions_subcommand(self.services, team_id=self.team_id, user_id=self.user_id,
                                                        arg=arg),
        }  # fmt: skip
        handler = handlers.get(sub)
        if handler is None:
            close = difflib.get_close_matches(sub, SUBCOMMANDS, n=1)
            hint = f" — did you mean `{self.command} {close[0]}`?" if close else ""
            raise UsageError(f"`{sub}` is not something {self.command} knows{hint} Try `{self.command} help`.")
        if sub in TAKES_NO_VALUE and arg:
            # `/hours forget tz` (say) must not delete everything: words the subcommand would ignore are refused.
            raise UsageError(f"`{self.command} {sub}` takes nothing after it, so nothing was done. "
                             f"To {sub}, send just `{self.command} {sub}`.")  # fmt: skip
        if sub in OPEN_TO_ALL:
            return handler(arg)  # the asker may not be connected: no row of theirs is made or needed
        # The row is read here anyway; Slack is asked only while the person's zone is unknown (PeopleService), and
        # not for a zone about to be chosen, data about to be deleted, or help.
        # `urgent` asks users.info about the backup within the ack: one Slack call is enough there.
        self._ensure_person(learn_zone=sub not in ("tz", "forget", "help", "urgent"))
        return handler(arg)

    def _ensure_person(self, *, learn_zone: bool) -> Preferences:
        return self.people.ensure(self.team_id, self.user_id, profile_tz=self._profile_tz if learn_zone else _unknown)

    def _profile_tz(self) -> str | None:
        token = self.services.store.bot_token(self.team_id)
        return self.services.profiles.timezone_within_ack(self.team_id, self.user_id, token=token, source="command")

    def _require(self, arg: str, sub: str) -> str:
        if not arg:
            raise UsageError(f"`{self.command} {sub}` needs a value.")
        return arg

    def _done(self, text: str, prefs: Preferences) -> tuple[list[dict], str]:
        return ui.confirmation_blocks(text, prefs, now=self.now), text

    def show(self, arg: str) -> tuple[list[dict], str]:
        prefs = self.people.get(self.team_id, self.user_id)
        preview = self._preview_text(prefs)
        # Only connected people get this far (the others get the connect prompt).
        blocks = ui.status_blocks(prefs, now=self.now, preview=preview, command=self.command, connected=True)
        blocks[2:2] = self._status_command().run("")[0][:1]  # status sync: on or off, and the next status
        blocks.append(nudge_command.status_block(self.services, prefs))
        return blocks, ui.now_line(prefs, now=self.now)

    def _status_command(self) -> StatusCommand:
        return StatusCommand(self.services, team_id=self.team_id, user_id=self.user_id, install_url=self.install_url,
                             now=self.now)  # fmt: skip

    def status(self, arg: str) -> tuple[list[dict], str]:
        return self._status_command().run(arg)

    def set_hours(self, arg: str) -> tuple[list[dict], str]:
        prefs = self.people.set_hours(self.team_id, self.user_id, self._require(arg, "set"))
        return self._done(f"Your hours are now *{prefs.hours_text}* ({prefs.tz}).", prefs)

    def set_tz(self, arg: str) -> tuple[list[dict], str]:
        prefs = self.people.set_timezone(self.team_id, self.user_id, self._require(arg, "tz"))
        return self._done(f"Your time zone is now *{prefs.tz}*.", prefs)

    def set_message(self, arg: str) -> tuple[list[dict], str]:
        arg = self._require(arg, "message")
        first, _, rest = arg.partition(" ")
        if first.lower() == "external":
            return self._set_external_message(rest.strip())
        if arg.lower() == "reset":
            prefs = self.people.reset_message(self.team_id, self.user_id)
            return self._done("Your boundary message is back to the default.", prefs)
        prefs = self.people.set_message(self.team_id, self.user_id, arg)
        blocks, text = self._done("Your boundary message is saved. Senders will see:", prefs)
        return blocks + ui.auto_reply_blocks(self._preview_text(prefs)), text

    def _set_external_message(self, arg: str) -> tuple[list[dict], str]:
        """People of another organisation (Slack Connect): what they are told, or (reset) the config's policy."""
        if not arg:
            raise HoursError("Give the text people of other organisations should see, like "
                             "`/hours message external Thanks, I'm out of office and will answer when I'm back.`, "
                             "or `/hours message external reset`.")  # fmt: skip
        if arg.lower() == "reset":
            prefs = self.people.set_external_message(self.team_id, self.user_id, None)
            return self._done("People of other organisations are answered as the workspace's config says.", prefs)
        prefs = self.people.set_external_message(self.team_id, self.user_id, arg)
        text = "Your message for people of other organisations is saved. They will see:"
        blocks, fallback = self._done(text, prefs)
        preview = autoreply.compose(prefs, now=self._next_off_instant(prefs), sender_id=self.user_id, external=True)
        return blocks + ui.auto_reply_blocks(preview), fallback

    def set_reply(self, arg: str) -> tuple[list[dict], str]:
        from bot.domain.hours import render_duration

        prefs = self.people.set_reply_within(self.team_id, self.user_id, self._require(arg, "reply"))
        return self._done(f"Once back, you aim to reply within *{render_duration(prefs.reply_within)}*.", prefs)

    def days_off(self, arg: str) -> tuple[list[dict], str]:
        arg = self._require(arg, "off")
        today = self.now.astimezone(pytz.timezone(self.people.get(self.team_id, self.user_id).tz)).date()
        if arg.lower() == "list":
            prefs = self.people.get(self.team_id, self.user_id)
            upcoming = [render_days_off(d) for d in prefs.days_off if d.end >= today]
            text = "Your days off: " + (", ".join(upcoming) if upcoming else "none planned.")
            return self._done(text, prefs)
        if arg.lower() == "clear":
            prefs = self.people.clear_days_off(self.team_id, self.user_id)
            return self._done("Your days off are cleared.", prefs)
        prefs, added = self.people.add_days_off(self.team_id, self.user_id, arg, today=today)
        return self._done(f"Added *{render_days_off(added)}* to your days off.", prefs)

    def holidays(self, arg: str) -> tuple[list[dict], str]:
        if not arg:
            prefs = self.people.get(self.team_id, self.user_id)
            return self._done(ui.holidays_line(prefs, now=self.now), prefs)
        prefs = self.people.set_holidays(self.team_id, self.user_id, arg)
        if prefs.holidays is None:
            return self._done("Public holidays are off: only your own days off count.", prefs)
        return self._done(ui.holidays_line(prefs, now=self.now, changed=True), prefs)

    def exceptions(self, arg: str) -> tuple[list[dict], str]:
        """`except` lists; `except @a @b` adds; `except remove @a` removes."""
        head, _, rest = arg.partition(" ")
        removing = head.lower() == "remove"
        what = "except remove" if removing else "except"
        ids = mentioned_users(rest if removing else arg, what=what)
        if arg and not ids:
            raise UsageError(f"`{self.command} {what}` needs at least one person, as a mention.")
        if not arg:
            listed = self.people.reply_exceptions(self.team_id, self.user_id)
            text = ui.exceptions_line(listed)
        elif removing:
            listed = self.people.change_reply_exceptions(self.team_id, self.user_id, remove=ids)
            text = f"Removed {_mentions(ids)}: they get your auto-reply again. " + ui.exceptions_line(listed)
        else:
            listed = self.people.change_reply_exceptions(self.team_id, self.user_id, add=ids)
            text = f"{_mentions(ids)} never get your auto-reply; their messages still go in your recap. " + (
                ui.exceptions_line(listed)
            )
        return self._done(text, self.people.get(self.team_id, self.user_id))

    def when(self, arg: str) -> tuple[list[dict], str]:
        ids = mentioned_users(arg, what="when")
        if len(ids) != 1:
            raise UsageError(f"`{self.command} when` takes one person, as a mention.")
        target = ids[0]
        if self.services.store.user_token(self.team_id, target) is None:
            text = f"<@{target}> hasn't connected Offhours, so it has no hours to tell for them."
            return ui.when_blocks(text), text
        text = ui.when_text(self.people.get(self.team_id, target), now=self.now)
        return ui.when_blocks(text), text

    def channel(self, arg: str) -> tuple[list[dict], str]:
        from bot.slack.listeners.channel_hours import ChannelCommand

        return ChannelCommand(self.services, team_id=self.team_id, user_id=self.user_id, channel_id=self.channel_id,
                              channel_name=self.channel_name).run(arg)  # fmt: skip

    def urgent(self, arg: str) -> tuple[list[dict], str]:
        from bot.slack.listeners.urgent import urgent_command  # its own module (issue 19)

        return urgent_command(self.services, team_id=self.team_id, user_id=self.user_id, arg=arg,
                              mentioned=lambda text: mentioned_users(text, what="urgent"))  # fmt: skip

    def pause(self, arg: str) -> tuple[list[dict], str]:
        prefs = self.people.set_paused(self.team_id, self.user_id, True)
        return self._done("Auto-replies are paused. Your recap still comes each morning.", prefs)

    def resume(self, arg: str) -> tuple[list[dict], str]:
        prefs = self.people.set_paused(self.team_id, self.user_id, False)
        return self._done("Auto-replies are back on.", prefs)

    def preview(self, arg: str) -> tuple[list[dict], str]:
        prefs = self.people.get(self.team_id, self.user_id)
        text = self._preview_text(prefs)
        return ui.preview_blocks(text, working=prefs.schedule.is_working(self.now)), text

    def help(self, arg: str) -> tuple[list[dict], str]:
        return ui.help_blocks(command=self.command), f"{self.command} help"

    def forget(self, arg: str) -> tuple[list[dict], str]:
        token = self.services.store.user_token(self.team_id, self.user_id)
        revoked = True
        if token:
            # Offhours' status and snooze go with the token that could end them later (the person's own status
            # stays). All of it runs before the ack (process_before_response), and the token must still work, so
            # it cannot wait until after: these best-effort calls never sleep, give up after 1 s each, and none
            # starts once FORGET_CLEANUP_S have passed; the revoke, which matters most, then has its own 1 s, so
            # the answer leaves within Slack's 3 s.
            started = time.monotonic()

            def in_time() -> bool:
                return time.monotonic() - started < FORGET_CLEANUP_S

            quick = sending_client(self.services.client, timeout=1)
            status, where = self.services.store.status, {"team_id": self.team_id, "user_id": self.user_id}
            clear_now(quick, status, token=token, now=self.now, in_time=in_time, **where)
            end_snooze_now(quick, status, token=token, now=self.now, in_time=in_time, **where)
            try:
                quick.auth_revoke(token=token)  # before the ack: no sleeping on a 429
            except SlackApiError as e:
                revoked = e.response.get("error") in REVOKED  # already refused by Slack: nothing left to revoke
                log.warning("forget: auth.revoke failed error=%s", e.response.get("error"))
            except OSError as e:  # forgetting never depends on Slack answering: the token is deleted below
                revoked = False
                log.warning("forget: auth.revoke failed error=%s", type(e).__name__)
        self.services.store.forget_person(self.team_id, self.user_id)
        if revoked:
            text = "Done: Offhours deleted your hours, messages and tokens, and disconnected your DMs."
            return ui.forgotten_blocks(text), text
        # The token is gone from Offhours, but Slack may still honour it: say so, and how to end it at Slack.
        text = (
            "Offhours deleted your hours, messages and tokens, but Slack did not confirm that your DMs are "
            "disconnected (it could not be reached, or refused). To be sure, remove Offhours' access yourself: "
            "in Slack, open Offhours from Apps, then About › Configuration, and choose Revoke / Remove."
        )
        return ui.forgotten_blocks(text, revoked=False), text

    def _preview_text(self, prefs: Preferences) -> str:
        at = self._next_off_instant(prefs)
        return autoreply.compose(prefs, now=at, sender_id=self.user_id)

    def _next_off_instant(self, prefs: Preferences) -> datetime:
        """Now when off; else the moment the current working interval ends."""
        if prefs.schedule.is_working(self.now):
            return prefs.schedule.next_end(self.now)
        return self.now
