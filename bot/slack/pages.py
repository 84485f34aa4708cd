"""The web pages a person sees while installing Offhours or connecting their DMs: install, connect, success,
cancel and failure, all in one small look, with no external assets (no CDN, no web fonts, no scripts).

`OffhoursPages` is a slack_sdk `RedirectUriPageRenderer`, handed to Bolt through `OAuthSettings`, so Bolt's own
callback paths render these pages too; the app's `CallbackOptions` call its richer methods with what they know.
No page shows an internal error: a failure says what to try.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from slack_sdk.oauth import RedirectUriPageRenderer

_STYLE = """
:root { color-scheme: light dark; --ink: #1d1c1d; --muted: #5e5d60; --bg: #f8f7f4; --card: #ffffff;
        --accent: #3b3a8f; --accent-ink: #ffffff; --ring: #f2c744; }
@media (prefers-color-scheme: dark) {
  :root { --ink: #ecebe8; --muted: #b9b7b2; --bg: #1a1a22; --card: #24242e; --accent: #a9a7ff; --accent-ink: #15151c; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); line-height: 1.5;
       font: 1.0625rem/1.55 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 36rem; margin: 3rem auto; padding: 2rem; background: var(--card); border-radius: 12px; }
.brand { margin: 0 0 1.5rem; font-weight: 600; color: var(--muted); letter-spacing: .02em; }
h1 { font-size: 1.6rem; line-height: 1.25; margin: 0 0 1rem; }
p, li { margin: 0 0 .9rem; }
code { font: .95em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: rgba(127,127,127,.15);
       padding: .1em .35em; border-radius: 4px; white-space: nowrap; }
.brand svg { vertical-align: -3px; margin-right: .2rem; }
a { color: var(--accent); }
a.button { display: inline-block; margin: .5rem 0 1rem; padding: .75rem 1.25rem; border-radius: 8px;
           background: var(--accent); color: var(--accent-ink); font-weight: 600; text-decoration: none; }
a:focus-visible { outline: 3px solid var(--ring); outline-offset: 2px; }
.small { font-size: .9rem; color: var(--muted); }
"""


# Drawn inline: an emoji needs a font the reader may not have, and a file would be one more request.
_MOON = (
    '<svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true" focusable="false">'
    '<path fill="currentColor" d="M21 12.8A9 9 0 1 1 11.2 3a7 7 0 0 0 9.8 9.8z"/></svg>'
)


def page(title: str, body: str) -> str:
    """A whole page: `body` is trusted HTML built here; every value in it is escaped by the caller."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>{escape(title)} · Offhours</title>
<style>{_STYLE}</style>
</head>
<body>
<main>
<p class="brand">{_MOON} Offhours</p>
{body}
</main>
</body>
</html>
"""


class OffhoursPages(RedirectUriPageRenderer):
    """Every page of the install and connect flow."""

    def __init__(self, *, install_path: str, redirect_uri_path: str, command: str = "/hours") -> None:
        super().__init__(install_path=install_path, redirect_uri_path=redirect_uri_path)
        self.command = command

    # --- before Slack ------------------------------------------------------------------------------------

    def install(self, authorize_url: str, *, first: bool) -> str:
        """The page at /slack/install: the first install of the workspace, or a person connecting their DMs."""
        link = escape(authorize_url)
        if first:
            return page(
                "Install Offhours",
                f"""<h1>Install Offhours in your Slack workspace</h1>
<p>Offhours keeps your working hours: when someone sends you a direct message while you are off, it answers once,
on your behalf, saying when you will be back. When your next workday starts, it sends you a recap of what came in.</p>
<p>Installing adds Offhours to the workspace and connects your own DMs in the same step. Everyone else connects
their own DMs later, from this page or from the Offhours Home tab.</p>
<a class="button" href="{link}">Add Offhours to Slack</a>
<p class="small">Slack shows what Offhours asks for before anything happens. You can remove it any time with
<code>{escape(self.command)} forget</code> or by removing the app in Slack.</p>""",
            )
        return page(
            "Connect your DMs",
            f"""<h1>Connect your DMs to Offhours</h1>
<p>Offhours is already in your workspace. Connect your direct messages and it will answer, on your behalf, the people
who write to you outside your working hours, and send you a recap when your day starts.</p>
<a class="button" href="{link}">Connect my DMs</a>
<p class="small">Nothing is answered for you until you connect. You can disconnect any time with
<code>{escape(self.command)} forget</code>, which deletes what Offhours holds about you.</p>""",
        )

    # --- back from Slack ---------------------------------------------------------------------------------

    def success(self, *, team_id: str | None, app_id: str | None, team_name: str | None, installed: bool) -> str:
        """After a successful install (`installed`: the workspace's first) or connect: what happens next."""
        home = _deep_link(team_id, app_id)
        browser = f"https://app.slack.com/client/{quote(team_id or '', safe='')}"
        where = f" in {escape(team_name)}" if team_name else ""
        heading = f"Offhours is installed{where}" if installed else f"Your DMs are connected{where}"
        command = escape(self.command)
        return page(
            "You're all set",
            f"""<h1>{heading}</h1>
<p>From now on, people who message you outside your working hours get one friendly answer saying when you will be
back, and you get a recap when your day starts.</p>
<p><strong>What to do next:</strong> set your hours with <code>{command} set mon-fri 9-17:30</code> in any
conversation, or open the Offhours Home tab in Slack. Until then the workspace's default hours apply.</p>
<a class="button" href="{escape(home)}">Open Offhours in Slack</a>
<p class="small">Using Slack in a browser? <a href="{escape(browser)}">Open Slack in this browser</a> instead.</p>""",
        )

    def cancel(self) -> str:
        """The person chose Cancel on Slack's page."""
        return page(
            "Nothing was connected",
            f"""<h1>No problem: nothing was connected</h1>
<p>You cancelled on Slack's page, so Offhours stored nothing about you and will not answer anyone for you.</p>
<p>You can connect any time, from this link or from the Offhours Home tab in Slack.</p>
<a class="button" href="{escape(self.install_path)}">Connect my DMs</a>""",
        )

    def failure(self, reason: str) -> str:
        """Anything else that went wrong on the way back: what to try, never the internal reason."""
        if reason in ("invalid_browser", "invalid_state"):
            return page(
                "This link has expired",
                f"""<h1>This link has expired</h1>
<p>To keep your account safe, a connect link works once, for a few minutes, and only in the browser that opened it.
Nothing was stored.</p>
<a class="button" href="{escape(self.install_path)}">Start again</a>""",
            )
        return page(
            "Something went wrong",
            f"""<h1>Slack did not finish connecting Offhours</h1>
<p>Nothing was stored. This is usually brief: please try again in a moment.</p>
<a class="button" href="{escape(self.install_path)}">Try again</a>
<p class="small">If it keeps failing, tell whoever runs Offhours for your workspace: <code>python -m bot check</code>
shows what to fix.</p>""",
        )

    # --- Bolt's default callback paths -------------------------------------------------------------------

    def render_success_page(
        self,
        app_id: str,
        team_id: str | None,
        is_enterprise_install: bool | None = None,
        enterprise_url: str | None = None,
    ) -> str:
        return self.success(team_id=team_id, app_id=app_id, team_name=None, installed=False)

    def render_failure_page(self, reason: str) -> str:
        # Bolt passes a sentence built around its internal reason code: not for the person reading the page.
        return self.failure("")


def _deep_link(team_id: str | None, app_id: str | None) -> str:
    """Slack's deep link to the app's Home tab (or to Slack itself when the ids are not known)."""
    if not team_id or not app_id:
        return "slack://open"
    return f"slack://app?team={quote(team_id, safe='')}&id={quote(app_id, safe='')}&tab=home"
