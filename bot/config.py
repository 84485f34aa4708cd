"""Configuration: config.yaml (behaviour, validated key by key at start-up) and the environment (secrets, wiring).

Layering: built-in defaults, then config.yaml, then the environment. Secrets only ever come from the environment.
Every problem in config.yaml is collected and reported at once, each line naming the key path and what it expected.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from bot.domain.errors import ConfigError, OffhoursError
from bot.domain.hours import (
    WeeklyHours,
    parse_duration,
    parse_hours,
    render_duration,
    render_hours,
    resolve_holidays,
    resolve_timezone,
)
from bot.domain.templates import DEFAULT_MESSAGE, validate_template

DEFAULT_CONFIG_PATH = "config.yaml"
DEFAULT_HOURS = "Mon–Fri 09:00–17:30"  # canonical (render_hours) form of "mon-fri 09:00-17:30"
DEFAULT_API_URL = "https://slack.com/api/"
ENV_HELP = "see README.md#environment"

ReplyMode = Literal["thread", "ephemeral"]
OncePer = Literal["off_window", "day"]
ExternalPolicy = Literal["none", "same"]


@lru_cache(maxsize=64)
def _weekly_for(spec: str) -> WeeklyHours:
    return parse_hours(spec)


@dataclass(frozen=True, slots=True)
class DefaultsConfig:
    """What a person gets before they set anything themselves."""

    hours: str = DEFAULT_HOURS
    timezone: str | None = None  # None: use the person's Slack profile zone
    fallback_timezone: str = "UTC"  # when the profile zone is unknown
    message: str = DEFAULT_MESSAGE
    reply_within: timedelta = timedelta(hours=4)
    holidays: str | None = None  # public holidays everyone gets as days off until they choose ("US", "DE-BY")

    @property
    def weekly(self) -> WeeklyHours:
        """The parsed ``hours``."""
        return _weekly_for(self.hours)


@dataclass(frozen=True, slots=True)
class ReplyConfig:
    mode: ReplyMode = "thread"
    once_per: OncePer = "off_window"
    # People of another organisation (Slack Connect) who DM someone off hours: "none" (privacy-safe: recorded for
    # the recap, no auto-reply, so no hours or UTC offset leave the organisation) or "same" (the usual message).
    # A person's own `/hours message external <text>` wins over either.
    external: ExternalPolicy = "none"


@dataclass(frozen=True, slots=True)
class RecapConfig:
    enabled: bool = True
    poll_seconds: float = 30.0
    max_items: int = 10
    include_text: bool = False


@dataclass(frozen=True, slots=True)
class MentionsConfig:
    # Channel mentions and group DMs answered for people who never chose (`/hours mentions on|off`).
    enabled: bool = False
    # How often each process reads again who is watched (changes made in the process show at once).
    refresh_seconds: float = 15.0


@dataclass(frozen=True, slots=True)
class ChannelsConfig:
    # Who may change a channel's office hours: workspace admins and owners and the channel's creator ("admins"),
    # or any member of the channel ("members").
    managers: str = "admins"


@dataclass(frozen=True, slots=True)
class StatusConfig:
    """Status sync (bot/domain/status.py): the default for people who never chose, and the default status."""

    enabled: bool = False
    text: str = "Off the clock — back {back_at}"
    emoji: str = ":crescent_moon:"
    poll_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class NudgeConfig:
    # How long (in working time) before an auto-reply's reply-by time the person is reminded; None: no nudges.
    before: timedelta | None = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class StorageConfig:
    url: str = "sqlite:///offhours.db"


@dataclass(frozen=True, slots=True)
class Config:
    """The validated contents of config.yaml."""

    defaults: DefaultsConfig = field(default_factory=DefaultsConfig)
    reply: ReplyConfig = field(default_factory=ReplyConfig)
    recap: RecapConfig = field(default_factory=RecapConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    mentions: MentionsConfig = field(default_factory=MentionsConfig)
    channels: ChannelsConfig = field(default_factory=ChannelsConfig)
    status: StatusConfig = field(default_factory=StatusConfig)
    nudge: NudgeConfig = field(default_factory=NudgeConfig)
    retention_days: int = 14
    command: str = "/hours"


# --- config.yaml -----------------------------------------------------------------------------------------------------


class _Invalid(Exception):
    """One key's value is wrong; the message is what was expected (the key path is added by the caller)."""


def _got(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _closest(word: str, choices: list[str]) -> str | None:
    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return found[0] if found else None


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"expected true or false, got {_got(value)}")
    return value


def _positive_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise _Invalid(f"expected a positive number, got {_got(value)}")
    return float(value)


def _int_between(low: int, high: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _Invalid(f"expected a whole number from {low} to {high}, got {_got(value)}")
        return value

    return convert


def _one_of(*choices: str) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if value not in choices or not isinstance(value, str):
            listed = ", ".join(repr(choice) for choice in choices)
            hint = _closest(value, list(choices)) if isinstance(value, str) else None
            suffix = f" (did you mean {hint!r}?)" if hint else ""
            raise _Invalid(f"expected one of {listed}, got {_got(value)}{suffix}")
        return value

    return convert


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(f"expected {what}, got {_got(value)}")
    return value.strip()


def _hours(value: Any) -> str:
    spec = _text(value, "working hours like 'mon-fri 09:00-17:30'")
    try:
        return render_hours(parse_hours(spec))
    except OffhoursError as error:
        raise _Invalid(str(error)) from None


def _timezone(value: Any) -> str:
    name = _text(value, "a time zone name like 'Europe/Berlin'")
    try:
        return resolve_timezone(name)
    except OffhoursError as error:
        raise _Invalid(str(error)) from None


def _optional_timezone(value: Any) -> str | None:
    return None if value is None else _timezone(value)


def _optional_holidays(value: Any) -> str | None:
    if value is None:
        return None
    code = _text(value, "a country code like 'US' or 'DE-BY'")
    try:
        return resolve_holidays(code)
    except OffhoursError as error:
        raise _Invalid(str(error)) from None


def _message(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"expected a message template (text), got {_got(value)}")
    try:
        return validate_template(value)
    except OffhoursError as error:
        raise _Invalid(str(error)) from None


def _status_text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(f"expected a status template (text), got {_got(value)}")
    try:
        text = validate_template(" ".join(value.split()))
    except OffhoursError as error:
        raise _Invalid(str(error)) from None
    if len(text) > 100:
        raise _Invalid(f"a status holds at most 100 characters, got {len(text)}")
    return text


def _status_emoji(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r":[a-z0-9_+\-']{1,98}:", value.strip()):
        raise _Invalid(f"expected an emoji code like ':crescent_moon:', got {_got(value)}")
    return value.strip()


def _duration(value: Any) -> timedelta:
    if not isinstance(value, str):
        raise _Invalid(f"expected a duration like '4h', '30m' or '1d', got {_got(value)}")
    try:
        return parse_duration(value.strip())
    except OffhoursError as error:
        raise _Invalid(str(error)) from None


def _nudge_before(value: Any) -> timedelta | None:
    if value is None or value is False or (isinstance(value, str) and value.strip().lower() == "off"):
        return None
    duration = _duration(value)
    if duration <= timedelta(0):
        raise _Invalid(f"expected a duration like '30m' or '1h', or 'off', got {_got(value)}")
    return duration


_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _storage_url(value: Any) -> str:
    url = _text(value, "a database URL like 'sqlite:///offhours.db'")
    if not _URL_SCHEME.match(url):
        raise _Invalid(f"expected a database URL like 'sqlite:///offhours.db', got {_got(value)}")
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        raise _Invalid("contains a password; secrets come from the environment: DATABASE_URL")
    return url


_COMMAND = re.compile(r"^/[a-z0-9_-]{1,31}$")


def _command(value: Any) -> str:
    if not isinstance(value, str) or not _COMMAND.match(value):
        raise _Invalid(
            f"expected a slash command like '/hours' (a '/' then lowercase letters, digits, '-' or '_'; "
            f"at most 32 characters), got {_got(value)}"
        )
    return value


# The schema: section -> key -> converter; top-level keys map straight to a converter.
_Converter = Callable[[Any], Any]
_SECTIONS: dict[str, tuple[type, dict[str, _Converter]]] = {
    "defaults": (
        DefaultsConfig,
        {
            "hours": _hours,
            "timezone": _optional_timezone,
            "fallback_timezone": _timezone,
            "message": _message,
            "reply_within": _duration,
            "holidays": _optional_holidays,
        },
    ),
    "reply": (
        ReplyConfig,
        {
            "mode": _one_of("thread", "ephemeral"),
            "once_per": _one_of("off_window", "day"),
            "external": _one_of("none", "same"),
        },
    ),
    "recap": (
        RecapConfig,
        {
            "enabled": _bool,
            "poll_seconds": _positive_number,
            "max_items": _int_between(1, 40),
            "include_text": _bool,
        },
    ),
    "storage": (StorageConfig, {"url": _storage_url}),
    "mentions": (MentionsConfig, {"enabled": _bool, "refresh_seconds": _positive_number}),
    "channels": (ChannelsConfig, {"managers": _one_of("admins", "members")}),
    "status": (
        StatusConfig,
        {"enabled": _bool, "text": _status_text, "emoji": _status_emoji, "poll_seconds": _positive_number},
    ),
    "nudge": (NudgeConfig, {"before": _nudge_before}),
}
_TOP_LEVEL: dict[str, _Converter] = {"retention_days": _int_between(1, 3650), "command": _command}

# Keys people may reasonably try to put in config.yaml that belong in the environment instead.
_SECRETS = {
    "signing_secret": "SLACK_SIGNING_SECRET",
    "client_secret": "SLACK_CLIENT_SECRET",
    "client_id": "SLACK_CLIENT_ID",
    "app_token": "SLACK_APP_TOKEN",
    "bot_token": "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (bot tokens come from installing the app)",
    "token": "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (bot tokens come from installing the app)",
    "encryption_key": "OFFHOURS_ENCRYPTION_KEY",
    "database_url": "DATABASE_URL",
    "password": "DATABASE_URL",
}
_ENVIRONMENT_ONLY = {
    "port": "PORT",
    "host": "OFFHOURS_HOST",
    "api_url": "SLACK_API_URL",
    "slack_api_url": "SLACK_API_URL",
    "base_url": "OFFHOURS_BASE_URL",
}


def _unknown_key(path: str, key: Any, value: Any, known: list[str], problems: list[str]) -> None:
    name = str(key)
    where = f"{path}.{name}" if path else name
    if name.lower() in _SECRETS:
        problems.append(f"{where}: secrets come from the environment: {_SECRETS[name.lower()]}")
        return
    if name.lower() in _ENVIRONMENT_ONLY:
        problems.append(f"{where}: set in the environment, not config.yaml: {_ENVIRONMENT_ONLY[name.lower()]}")
        return
    if isinstance(value, Mapping):
        # e.g. a `slack:` section: name each secret inside rather than just "unknown key".
        before = len(problems)
        for inner_key, inner_value in value.items():
            if str(inner_key).lower() in _SECRETS or str(inner_key).lower() in _ENVIRONMENT_ONLY:
                _unknown_key(where, inner_key, inner_value, [], problems)
        if len(problems) > before:
            return
    hint = _closest(name, known)
    suffix = f" (did you mean {hint!r}?)" if hint else ""
    problems.append(f"{where}: unknown key — known keys: {', '.join(known)}{suffix}")


def _indent(message: str) -> str:
    return message.replace("\n", "\n    ")


def _build(data: Mapping[Any, Any]) -> tuple[Config, list[str]]:
    """Validate in file order, so the problems read top to bottom like the file; missing keys take defaults."""
    problems: list[str] = []
    known_top = [*_SECTIONS, *_TOP_LEVEL]
    given: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known_top:
            _unknown_key("", key, value, known_top, problems)
            continue
        if key in _SECTIONS:
            given[key] = _build_section(key, value, problems)
        else:
            given[key] = _convert(key, _TOP_LEVEL[key], value, problems)
    # Defaults go through the same conversion, so an empty file equals the shipped one (canonical hours text).
    for section in _SECTIONS:
        if section not in given:
            given[section] = _build_section(section, {}, problems)
    for key, convert in _TOP_LEVEL.items():
        if key not in given:
            given[key] = _convert(key, convert, _raw_default(Config, key), problems)
    if problems:
        return Config(), problems
    return Config(**given), problems


def _build_section(section: str, raw: Any, problems: list[str]) -> Any:
    cls, schema = _SECTIONS[section]
    if raw is None:  # present with everything commented out
        raw = {}
    if not isinstance(raw, Mapping):
        problems.append(f"{section}: expected a mapping of keys ({', '.join(schema)}), got {_got(raw)}")
        return None
    values: dict[str, Any] = {}
    for key, item in raw.items():
        if key in schema:
            values[key] = _convert(f"{section}.{key}", schema[key], item, problems)
        else:
            _unknown_key(section, key, item, list(schema), problems)
    for key, convert in schema.items():
        if key not in values:
            values[key] = _convert(f"{section}.{key}", convert, _raw_default(cls, key), problems)
    return cls(**values)


def _convert(path: str, convert: _Converter, value: Any, problems: list[str]) -> Any:
    try:
        return convert(value)
    except _Invalid as error:
        problems.append(f"{path}: {_indent(str(error))}")
        return None


def _raw_default(cls: type, key: str) -> Any:
    default = {f.name: f for f in dataclasses.fields(cls)}[key].default
    if isinstance(default, timedelta):
        return render_duration(default)
    return default


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (two `recap:` sections would otherwise silently drop one)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:  # unhashable key; the base constructor reports it properly
            break
        if duplicate:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _config_path(path: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> tuple[Path, bool]:
    """The file to read and whether it was asked for explicitly (then it must exist)."""
    if path is not None:
        return Path(path), True
    from_env = environ.get("OFFHOURS_CONFIG", "").strip()
    if from_env:
        return Path(from_env), True
    return Path(DEFAULT_CONFIG_PATH), False


def config_file(path: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] = os.environ) -> Path:
    """The config.yaml load_config reads: ``path``, else $OFFHOURS_CONFIG, else ./config.yaml."""
    return _config_path(path, environ)[0]


def load_config(path: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] = os.environ) -> Config:
    """Read and validate config.yaml: ``path``, else $OFFHOURS_CONFIG, else ./config.yaml; one ConfigError lists all."""
    file, explicit = _config_path(path, environ)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{file}: config file not found") from None
        text = ""
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{file}: can not read the config file: {error}") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: no Python tags
    except yaml.YAMLError as error:
        raise ConfigError(f"{file}: not valid YAML: {error}") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{file}: expected a mapping of sections (defaults, reply, recap, ...), got {_got(data)}")
    config, problems = _build(data)
    if problems:
        count = "a problem" if len(problems) == 1 else f"{len(problems)} problems"
        raise ConfigError(f"{file} has {count}:\n" + "\n".join(f"  {problem}" for problem in problems))
    return config


# --- the environment -------------------------------------------------------------------------------------------------


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

    port = 3000
    raw_port = get("PORT")
    if raw_port is not None:
        if re.fullmatch(r"\d{1,5}", raw_port) and 1 <= int(raw_port) <= 65535:
            port = int(raw_port)
        else:
            problems.append(f"PORT: expected a whole number from 1 to 65535, got {raw_port!r}")

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

    metrics_port = None
    raw_metrics_port = get("METRICS_PORT")
    if raw_metrics_port is not None:
        if re.fullmatch(r"\d{1,5}", raw_metrics_port) and 1 <= int(raw_metrics_port) <= 65535:
            metrics_port = int(raw_metrics_port)
        else:
            problems.append(f"METRICS_PORT: expected a whole number from 1 to 65535, got {raw_metrics_port!r}")

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
    if value is not None and not _URL_SCHEME.match(value):
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
