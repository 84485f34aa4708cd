"""Configuration: config.yaml (behaviour, validated key by key at start-up); the environment is bot/settings.py.

Layering: built-in defaults, then config.yaml, then the environment. Secrets only ever come from the environment.
Every problem in config.yaml is collected and reported at once, each line naming the key path and what it expected.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

from bot import config_values as values
from bot.domain.errors import ConfigError
from bot.domain.hours import (
    WeeklyHours,
    parse_hours,
    render_duration,
)
from bot.domain.templates import DEFAULT_MESSAGE

DEFAULT_CONFIG_PATH = "config.yaml"
DEFAULT_HOURS = "Mon–Fri 09:00–17:30"  # canonical (render_hours) form of "mon-fri 09:00-17:30"

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


# The schema: section -> key -> converter; top-level keys map straight to a converter.
_Converter = Callable[[Any], Any]
_SECTIONS: dict[str, tuple[type, dict[str, _Converter]]] = {
    "defaults": (
        DefaultsConfig,
        {
            "hours": values.hours,
            "timezone": values.optional_timezone,
            "fallback_timezone": values.timezone,
            "message": values.message,
            "reply_within": values.duration,
            "holidays": values.optional_holidays,
        },
    ),
    "reply": (
        ReplyConfig,
        {
            "mode": values.one_of("thread", "ephemeral"),
            "once_per": values.one_of("off_window", "day"),
            "external": values.one_of("none", "same"),
        },
    ),
    "recap": (
        RecapConfig,
        {
            "enabled": values.boolean,
            "poll_seconds": values.positive_number,
            "max_items": values.int_between(1, 40),
            "include_text": values.boolean,
        },
    ),
    "storage": (StorageConfig, {"url": values.storage_url}),
    "mentions": (MentionsConfig, {"enabled": values.boolean, "refresh_seconds": values.positive_number}),
    "channels": (ChannelsConfig, {"managers": values.one_of("admins", "members")}),
    "status": (
        StatusConfig,
        {
            "enabled": values.boolean,
            "text": values.status_text,
            "emoji": values.status_emoji,
            "poll_seconds": values.positive_number,
        },
    ),
    "nudge": (NudgeConfig, {"before": values.nudge_before}),
}
_TOP_LEVEL: dict[str, _Converter] = {"retention_days": values.int_between(1, 3650), "command": values.command}

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
    hint = values.closest(name, known)
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
        problems.append(f"{section}: expected a mapping of keys ({', '.join(schema)}), got {values.got(raw)}")
        return None
    fields: dict[str, Any] = {}
    for key, item in raw.items():
        if key in schema:
            fields[key] = _convert(f"{section}.{key}", schema[key], item, problems)
        else:
            _unknown_key(section, key, item, list(schema), problems)
    for key, convert in schema.items():
        if key not in fields:
            fields[key] = _convert(f"{section}.{key}", convert, _raw_default(cls, key), problems)
    return cls(**fields)


def _convert(path: str, convert: _Converter, value: Any, problems: list[str]) -> Any:
    try:
        return convert(value)
    except values.Invalid as error:
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
        raise ConfigError(
            f"{file}: expected a mapping of sections (defaults, reply, recap, ...), got {values.got(data)}"
        )
    config, problems = _build(data)
    if problems:
        count = "a problem" if len(problems) == 1 else f"{len(problems)} problems"
        raise ConfigError(f"{file} has {count}:\n" + "\n".join(f"  {problem}" for problem in problems))
    return config
