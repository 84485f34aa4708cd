"""The browser's side of the OAuth flow, and oauth.v2.access answers as Slack gives them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape
from urllib.parse import parse_qs, urlencode, urlparse

from tests.support.slackhttp import Response, request

BOT_TOKEN = "xoxb-oauth-T1"
STATE_COOKIE = "slack-app-oauth-state"


@dataclass
class Install:
    """What GET /slack/install handed the browser."""

    response: Response
    authorize_url: str
    state: str
    cookie: str  # "name=value", as a browser sends it back


def start_install(base_url: str, query: str = "") -> Install:
    response = request(f"{base_url}/slack/install{query}")
    assert response.status == 200, response.text
    links = re.findall(r'href="(https://slack\.com/oauth/v2/authorize\?[^"]+)"', response.text)
    assert links, response.text
    url = unescape(links[0])
    state = parse_qs(urlparse(url).query)["state"][0]
    set_cookie = response.headers.get("Set-Cookie") or ""
    cookie = set_cookie.split(";", 1)[0]
    return Install(response=response, authorize_url=url, state=state, cookie=cookie)


def redirect(base_url: str, *, cookie: str | None = None, **query: str) -> Response:
    from tests.support import logscan

    logscan.watch(query.get("code"))  # an OAuth code is as good as a token for a few minutes: never logged
    headers = {"Cookie": cookie} if cookie else {}
    return request(f"{base_url}/slack/oauth_redirect?{urlencode(query)}", headers=headers)


def oauth_answer(user_id: str, *, with_bot: bool) -> dict:
    """oauth.v2.access as Slack answers it: the bot token on a workspace install, the person's token always."""
    answer = {
        "ok": True,
        "app_id": "A1",
        "team": {"id": "T1", "name": "Example"},
        "enterprise": None,
        "is_enterprise_install": False,
        "authed_user": {
            "id": user_id,
            "scope": "im:history,chat:write",
            "access_token": f"xoxp-oauth-{user_id}",
            "token_type": "user",
        },
    }
    if with_bot:
        answer.update(
            access_token=BOT_TOKEN,
            token_type="bot",
            scope="commands,chat:write,im:write,users:read",
            bot_user_id="UBOT",
        )
    return answer
