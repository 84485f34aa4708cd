"""`python -m bot check`: is this deployment ready? A checklist with what to fix, exit status 1 if not.

Checks the environment, config.yaml, the database (reachable, migrated), and each installed workspace's bot
token with auth.test. Never prints a token.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TextIO

from slack_sdk.errors import SlackApiError

from bot.domain.errors import ConfigError


@dataclass(frozen=True)
class Check:
    ok: bool
    label: str
    fix: str = ""


def run_check(environ: Mapping[str, str] = os.environ, out: TextIO = sys.stdout) -> int:
    checks = list(_checks(environ))
    for check in checks:
        mark = "✔" if check.ok else "✘"
        out.write(f"{mark} {check.label}\n")
        if not check.ok and check.fix:
            out.write(f"    → {check.fix}\n")
    failed = sum(not c.ok for c in checks)
    out.write(
        f"\n{len(checks) - failed} passed, {failed} failed\n" if failed else f"\nAll {len(checks)} checks passed\n"
    )
    return 1 if failed else 0


def _checks(environ: Mapping[str, str]) -> Iterator[Check]:
    from bot.config import database_url, load_config, load_settings
    from bot.slack.client import make_client
    from bot.storage.migrate import DatabaseUnreachable, head_revision
    from bot.storage.store import Store

    try:
        settings = load_settings(environ)
    except ConfigError as e:
        yield Check(False, "environment", str(e))
        return
    yield Check(True, "environment: SLACK_SIGNING_SECRET, SLACK_CLIENT_ID, SLACK_CLIENT_SECRET are set")
    try:
        config = load_config(settings.config_path, environ=environ)
    except ConfigError as e:
        yield Check(False, "config.yaml", str(e))
        return
    yield Check(True, f"config: {settings.config_path or environ.get('OFFHOURS_CONFIG') or 'config.yaml'} is valid")

    try:
        store = Store(database_url(config, environ), client_id=settings.client_id,
                      encryption_key=settings.encryption_key)  # fmt: skip
    except ConfigError as e:
        yield Check(False, "OFFHOURS_ENCRYPTION_KEY", str(e))
        return
    try:
        current = store.schema_revision()
    except DatabaseUnreachable as e:
        yield Check(False, "database reachable", f"{e.kind}: check DATABASE_URL and that the server runs")
        return
    yield Check(True, f"database reachable ({store.dialect})")
    head = head_revision()
    yield Check(current == head, f"database schema at revision {current} (newest: {head})",
                "run: python -m bot migrate")  # fmt: skip
    if current != head:
        return

    latest = {}
    for team_id, team_name in store.tokens.workspaces():
        try:
            latest[team_id] = (team_name, store.bot_token(team_id))
        except ConfigError as e:
            yield Check(False, f"workspace {team_name or team_id}: tokens readable", str(e))
            return
    if not latest:
        yield Check(False, "installed in a workspace", "open /slack/install on this app's public URL to install it")
        return
    client = make_client(settings)
    for team_id, (team_name, token) in latest.items():
        try:
            client.auth_test(token=token)
            yield Check(True, f"workspace {team_name or team_id}: bot token works (auth.test)")
        except SlackApiError as e:
            code = e.response.get("error")
            yield Check(False, f"workspace {team_name or team_id}: auth.test failed ({code})",
                        "reinstall the app from /slack/install")  # fmt: skip
        except OSError as e:
            yield Check(False, f"workspace {team_name or team_id}: Slack unreachable ({type(e).__name__})",
                        f"check network access to {settings.slack_api_url}")  # fmt: skip
