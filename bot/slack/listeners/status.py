"""`/hours status …`: turn status sync on or off, change its text, emoji and replace choice, or show it.

Called from the /hours listener (bot/slack/listeners/commands.py); every answer goes back in the ack.
"""

from __future__ import annotations

from datetime import datetime

from bot.domain import status as domain
from bot.domain.errors import OffhoursError
from bot.services import Services
from bot.slack.blocks import status_sync as ui
from bot.status_sync import grant_url, summary

USAGE = "status on · status off · status text <text> · status emoji :palm_tree: · status replace on|off"


class StatusCommand:
    def __init__(self, services: Services, *, team_id: str, user_id: str, install_url: str, now: datetime) -> None:
        self.services = services
        self.store = services.store.status
        self.team_id = team_id
        self.user_id = user_id
        self.install_url = install_url
        self.now = now
        self.command = services.config.command

    def run(self, arg: str) -> tuple[list[dict], str]:
        head, _, rest = arg.strip().partition(" ")
        head, rest = head.lower(), rest.strip()
        if head == "":
            return self._answer(None)
        if head in ("on", "off") and not rest:
            self.store.choose(self.team_id, self.user_id, enabled=head == "on")
            if head == "on":
                return self._answer("Status sync is on: while you are off, your Slack status says so.")
            return self._answer("Status sync is off. A status Offhours set is cleared within a minute "
                                "(a status you set yourself is left alone).")  # fmt: skip
        if head == "text" and rest:
            if rest.lower() == "reset":
                self.store.choose(self.team_id, self.user_id, text=None)
                return self._answer("Your status text is back to the default.")
            prefs = self.services.people.get(self.team_id, self.user_id)
            text = domain.validate_status_text(rest, prefs, now=self.now)
            self.store.choose(self.team_id, self.user_id, text=text)
            return self._answer("Your status text is saved.")
        if head == "emoji" and rest:
            if rest.lower() == "reset":
                self.store.choose(self.team_id, self.user_id, emoji=None)
                return self._answer("Your status emoji is back to the default.")
            self.store.choose(self.team_id, self.user_id, emoji=domain.validate_emoji(rest))
            return self._answer("Your status emoji is saved.")
        if head == "replace" and rest.lower() in ("on", "off"):
            on = rest.lower() == "on"
            self.store.choose(self.team_id, self.user_id, replace=on)
            if on:
                return self._answer("While you are off, Offhours' status replaces one you set yourself, and puts "
                                    "yours back when you are back (unless you changed it meanwhile).")  # fmt: skip
            return self._answer("A status you set yourself is left alone (Offhours sets none over it).")
        raise OffhoursError(f"`{self.command} status {arg.strip()[:40]}` is not something I know. Try: {USAGE}")

    def dnd(self, arg: str) -> tuple[list[dict], str]:
        """`/hours dnd on|off`: snooze notifications for each off window (dnd.setSnooze), or not."""
        word = arg.strip().lower()
        if word == "on":
            self.store.choose(self.team_id, self.user_id, dnd=True)
            return self._answer("While you are off, your notifications are snoozed until you are back.")
        if word == "off":
            self.store.choose(self.team_id, self.user_id, dnd=False)
            return self._answer("Offhours no longer snoozes your notifications (a snooze under way ends within a "
                                "minute).")  # fmt: skip
        if not word:
            return self._answer(None)
        raise OffhoursError(f"`{self.command} dnd {arg.strip()[:40]}` is not something I know. Try: dnd on · dnd off")

    def _answer(self, done: str | None) -> tuple[list[dict], str]:
        if done is not None:
            self.services.home_refresh(self.team_id, self.user_id)  # the Home tab shows the change too
        prefs = self.services.people.get(self.team_id, self.user_id)
        s = summary(self.services.config, self.store, prefs, now=self.now)
        link = grant_url(self.install_url, team_id=self.team_id, dnd=s.settings.dnd)
        blocks = ui.status_sync_blocks(s, command=self.command, grant_url=link, done=done)
        return blocks, done or ui.summary_line(s, command=self.command)
