"""Settings: the environment (secrets, wiring), and the one place that decides which database every command uses.

Secrets only ever come from here, never from config.yaml (bot/config.py refuses them there). Every missing or
invalid variable is named at once, with what it expected.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from bot.config import Config
from bot.config_values import URL_SCHEME
from bot.domain.errors import ConfigError

DEFAULT_API_URL = "https://slack.com/api/"
ENV_HELP = "see README.md#environment"


def _mask_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        if parts.password:
            return url.replace(f":{parts.password}@", ":***@", 1)
    except ValueError:
        pass
    return url


@dataclass(frozen=True, slots=True)
class Settings:
    """Deployment settings from the environment; repr masks secrets."""

    signing_secret: str
    client_id: str
    client_secret: str
    database_url: str | None = None  # $DATABASE_URL as given; `database_url()` resolves the one to use
    port: int = 3000
    host: str = "0.0.0.0"  # every interface, as a PaaS router needs; 127.0.0.1 behind a local reverse proxy
    config_path: str | None = None
    slack_api_url: str = DEFAULT_API_URL
    app_token: str | None = None
    encryption_key: str | None = None
    base_url: str | None = None
    metrics_token: str | None = None  # OFFHOURS_METRICS_TOKEN: /metrics wants "Authorization: Bearer <it>"
    metrics_port: int | None = None  # METRICS_PORT: where the scheduler process serves /metrics and /readyz

    def __repr__(self) -> str:
        def secret(value: str | None) -> str:
            return "None" if value is None else "'***'"

        shown = {
            "signing_secret": secret(self.signing_secret),
            "client_id": repr(self.client_id),
            "client_secret": secret(self.client_secret),
            "database_url": repr(None if self.database_url is None else _mask_url(self.database_url)),
            "port": repr(self.port),
            "config_path": repr(self.config_path),
            "slack_api_url": repr(self.slack_api_url),
            "app_token": secret(self.app_token),
            "encryption_key": secret(self.encryption_key),
            "base_url": repr(self.base_url),
            "metrics_token": secret(self.metrics_token),
            "metrics_port": repr(self.metrics_port),
        }
        return "Settings(" + ", ".join(f"{key}={value}" for key, value in shown.items()) + ")"

    __str__ = __repr__


_REQUIRED = ("SLACK_SIGNING_SECRET", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET")


def _bind_address(value: str) -> bool:
    """An IP address or a host name (letters, digits, dots and hyphens): what a server can listen on."""
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return (
            re.fullmatch(
                r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*",
                value,
            )
            is not None
        )


def _http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def load_settings(environ: Mapping[str, str] = os.environ) -> Settings:
    """Read deployment settings from the environment; one ConfigError names every missing or invalid variable."""

    def get(name: str) -> str | None:
        value = environ.get(name, "").strip()
        return value or None  # an empty variable (common in .env files) counts as unset

    problems: list[str] = []
    missing = [name for name in _REQUIRED if get(name) is None]
    if missing:
        problems.append(f"missing required environment variables: {', '.join(missing)} — {ENV_HELP}")

    port = _port("PORT", get("PORT"), problems) or 3000

    host = get("OFFHOURS_HOST") or "0.0.0.0"
    if not _bind_address(host):
        problems.append(
            f"OFFHOURS_HOST: expected an address to listen on, like 0.0.0.0, 127.0.0.1, :: or localhost, got {host!r}"
        )

    api_url = get("SLACK_API_URL") or DEFAULT_API_URL
    if not _http_url(api_url):
        problems.append(f"SLACK_API_URL: expected an http(s) URL like {DEFAULT_API_URL!r}, got {api_url!r}")
    elif not api_url.endswith("/"):
        api_url += "/"  # WebClient joins method names onto base_url

    app_token = get("SLACK_APP_TOKEN")
    if app_token is not None and not app_token.startswith("xapp-"):
        problems.append("SLACK_APP_TOKEN: expected an app-level token starting with 'xapp-' (Socket Mode)")

    base_url = get("OFFHOURS_BASE_URL")
    if base_url is not None:
        if _http_url(base_url):
            base_url = base_url.rstrip("/")
        else:
            problems.append(f"OFFHOURS_BASE_URL: expected the public http(s) URL of this app, got {base_url!r}")
            base_url = None
    if app_token is not None:
        problems.extend(_socket_mode_base_url(base_url, given=get("OFFHOURS_BASE_URL") is not None))

    metrics_port = _port("METRICS_PORT", get("METRICS_PORT"), problems)

    database_url, problem = _env_database_url(environ)
    if problem:
        problems.append(problem)

    if problems:
        raise ConfigError("The environment is not set up correctly:\n" + "\n".join(f"  {p}" for p in problems))
    return Settings(
        signing_secret=get("SLACK_SIGNING_SECRET") or "",
        client_id=get("SLACK_CLIENT_ID") or "",
        client_secret=get("SLACK_CLIENT_SECRET") or "",
        database_url=database_url,
        port=port,
        host=host,
        config_path=get("OFFHOURS_CONFIG"),
        slack_api_url=api_url,
        app_token=app_token,
        encryption_key=get("OFFHOURS_ENCRYPTION_KEY"),
        base_url=base_url,
        metrics_token=get("OFFHOURS_METRICS_TOKEN"),
        metrics_port=metrics_port,
    )


def _port(name: str, raw: str | None, problems: list[str]) -> int | None:
    """A TCP port from the environment (None when unset); a bad one is named in `problems`."""
    if raw is None:
        return None
    if re.fullmatch(r"\d{1,5}", raw) and 1 <= int(raw) <= 65535:
        return int(raw)
    problems.append(f"{name}: expected a whole number from 1 to 65535, got {raw!r}")
    return None


def _socket_mode_base_url(base_url: str | None, *, given: bool) -> list[str]:
    """Socket Mode carries events, commands and buttons, but not people: they open /slack/install and Slack sends them
    back to the OAuth redirect in a browser, over HTTPS. With no request to take our host from, every connect link
    would point at localhost, so the public URL is required."""
    if base_url is None:
        if given:  # malformed: already named above
            return []
        return [
            "OFFHOURS_BASE_URL: required with SLACK_APP_TOKEN (Socket Mode): the public https URL where people "
            "open /slack/install and Slack's OAuth redirect returns (Socket Mode does not carry those), "
            "e.g. https://offhours.example.com"
        ]
    if urlsplit(base_url).scheme != "https":
        return [
            f"OFFHOURS_BASE_URL: Socket Mode needs the public https URL (Slack's OAuth redirect URLs are https), "
            f"got {base_url!r}"
        ]
    return []


def _env_database_url(environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """$DATABASE_URL (None when unset or empty) and what is wrong with it, if anything."""
    value = environ.get("DATABASE_URL", "").strip() or None
    if value is not None and not URL_SCHEME.match(value):
        return value, (
            f"DATABASE_URL: expected a database URL like 'postgresql+psycopg://user:password@host/db', "
            f"got {_mask_url(value)!r}"
        )
    return value, None


DATABASE_URL_SOURCES = ("DATABASE_URL", "storage.url in config.yaml")


def database_url_and_source(config: Config, environ: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """The database every command uses (serve, scheduler, migrate, check), decided here only: $DATABASE_URL,
    else config.yaml's storage.url; with where it came from, for the messages that name a problem with it."""
    value, problem = _env_database_url(environ)
    if problem:
        raise ConfigError(problem)
    return (value, DATABASE_URL_SOURCES[0]) if value else (config.storage.url, DATABASE_URL_SOURCES[1])


def database_url(config: Config, environ: Mapping[str, str] = os.environ) -> str:
    """database_url_and_source without the source."""
    return database_url_and_source(config, environ)[0]


def settings_database_url(settings: Settings, config: Config) -> tuple[str, str]:
    """database_url_and_source for settings already loaded (load_settings validated its DATABASE_URL)."""
    if settings.database_url:
        return settings.database_url, DATABASE_URL_SOURCES[0]
    return config.storage.url, DATABASE_URL_SOURCES[1]
