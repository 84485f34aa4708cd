"""The Slack app manifest: the top-level manifest.yaml, `python -m bot manifest --url ...` and its Socket Mode form."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.domain.errors import ConfigError
from bot.slack.manifest import PLACEHOLDER_URL, build_manifest, print_manifest, render_manifest
from bot.slack.paths import BOT_SCOPES, USER_SCOPES

ROOT = Path(__file__).resolve().parents[2]
BASE = "https://offhours.example.com"


def urls(node) -> list[str]:
    """Every URL-valued field of the manifest, wherever it is."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and (key == "url" or key.endswith("_url")):
                found.append(value)
            found.extend(urls(value))
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, str) and item.startswith(("http://", "https://")):
                found.append(item)
            found.extend(urls(item))
    return found


def printed(capsys, url: str | None, **kwargs) -> dict:
    assert print_manifest(url, **kwargs) == 0
    return yaml.safe_load(capsys.readouterr().out)


def test_the_top_level_manifest_is_the_rendered_one_for_the_placeholder_url():
    assert (ROOT / "manifest.yaml").read_text(encoding="utf-8") == render_manifest(PLACEHOLDER_URL)
    assert PLACEHOLDER_URL == "https://your.host"


def test_url_fills_in_every_request_and_redirect_url(capsys):
    manifest = printed(capsys, BASE + "/")  # a trailing slash is fine
    events = BASE + "/slack/events"
    assert manifest["features"]["slash_commands"][0]["url"] == events
    assert manifest["settings"]["event_subscriptions"]["request_url"] == events
    assert manifest["settings"]["interactivity"]["request_url"] == events
    assert manifest["oauth_config"]["redirect_urls"] == [BASE + "/slack/oauth_redirect"]
    assert sorted(set(urls(manifest))) == [BASE + "/slack/events", BASE + "/slack/oauth_redirect"]
    assert "your.host" not in yaml.safe_dump(manifest)


def test_without_url_it_prints_the_placeholder_manifest(capsys):
    assert print_manifest(None) == 0
    assert capsys.readouterr().out == (ROOT / "manifest.yaml").read_text(encoding="utf-8")


def test_scopes_command_events_interactivity_and_home_tab():
    manifest = build_manifest(BASE)
    scopes = manifest["oauth_config"]["scopes"]
    assert scopes["bot"] == list(BOT_SCOPES)
    assert set(scopes["bot"]) == {"commands", "chat:write", "im:write", "im:history", "users:read", "channels:history",
                                  "groups:history", "channels:read", "groups:read"}  # fmt: skip
    # The connect link asks for USER_SCOPES; the status and mention scopes only of who turns them on.
    assert set(USER_SCOPES) == {"im:history", "chat:write"}
    assert set(scopes["user"]) == {
        *USER_SCOPES, "users.profile:read", "users.profile:write", "dnd:write", "channels:history", "groups:history",
        "mpim:history", "mpim:read",
    }  # fmt: skip

    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/hours"
    assert command["description"] and command["usage_hint"]
    assert command["should_escape"] is True  # mentions arrive as <@U123|name> (issue 21)

    events = manifest["settings"]["event_subscriptions"]
    assert events["user_events"] == ["message.im", "message.channels", "message.groups", "message.mpim"]
    assert set(events["bot_events"]) == {"app_home_opened", "tokens_revoked", "app_uninstalled", "message.channels",
                                         "message.groups", "channel_left", "group_left"}  # fmt: skip

    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert manifest["features"]["bot_user"]["display_name"] == "Offhours"
    assert manifest["settings"]["socket_mode_enabled"] is False
    assert manifest["settings"]["token_rotation_enabled"] is False


def test_the_command_name_follows_config():
    manifest = build_manifest(BASE, command="/offhours")
    assert manifest["features"]["slash_commands"][0]["command"] == "/offhours"


def test_socket_mode_manifest_has_no_request_urls_but_keeps_the_oauth_redirect(capsys):
    manifest = printed(capsys, BASE, socket_mode=True)
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert "url" not in manifest["features"]["slash_commands"][0]
    assert "request_url" not in manifest["settings"]["event_subscriptions"]
    assert set(manifest["settings"]["interactivity"]) == {"is_enabled"}
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    # The install pages are still served over HTTP: OAuth needs its redirect URL.
    assert urls(manifest) == [BASE + "/slack/oauth_redirect"]
    # Everything else is the same as over HTTP.
    events = manifest["settings"]["event_subscriptions"]
    assert events["user_events"] == ["message.im", "message.channels", "message.groups", "message.mpim"]
    assert set(events["bot_events"]) == {"app_home_opened", "tokens_revoked", "app_uninstalled", "message.channels",
                                         "message.groups", "channel_left", "group_left"}  # fmt: skip


@pytest.mark.parametrize(
    "url",
    [
        "http://offhours.example.com",  # Slack wants https request URLs
        "offhours.example.com",
        "https://",
        "https://offhours.example.com/slack/events",  # the base URL, not an endpoint
        "https://offhours.example.com/?x=1",
    ],
)
def test_a_bad_url_is_refused_with_what_was_expected(url):
    with pytest.raises(ConfigError, match=r"--url: expected the public https base URL of this app"):
        print_manifest(url)


def test_cli_refuses_a_bad_url_with_exit_status_2_and_one_clear_line():
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bot", "manifest", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)  # fmt: skip

    bad = run("--url", "http://offhours.example.com")
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.startswith("offhours: --url: expected the public https base URL of this app, like "
                                 "https://your.host, got 'http://offhours.example.com'")  # fmt: skip
    assert "Traceback" not in bad.stderr
