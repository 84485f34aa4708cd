"""config.yaml and environment loading: defaults, every kind of bad input, and the messages people will read."""

from __future__ import annotations

import dataclasses
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import Config, StorageConfig, load_config
from bot.domain.errors import ConfigError, HoursError
from bot.domain.hours import parse_hours, render_hours
from bot.domain.templates import DEFAULT_MESSAGE
from bot.settings import Settings, database_url, load_settings

REPO = Path(__file__).resolve().parents[2]
REQUIRED_ENV = {"SLACK_SIGNING_SECRET": "sign-s3cret", "SLACK_CLIENT_ID": "123.456", "SLACK_CLIENT_SECRET": "cl-s3cret"}


@pytest.fixture
def write(tmp_path):
    def write(text: str) -> Path:
        path = tmp_path / "config.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


def problems(write, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(write(text), environ={})
    return str(caught.value)


# --- defaults and paths ------------------------------------------------------------------------------------------


def test_empty_file_gives_all_defaults(write):
    config = load_config(write(""), environ={})
    assert config.defaults.hours == render_hours(parse_hours("mon-fri 09:00-17:30"))
    assert config.defaults.weekly == parse_hours("mon-fri 09:00-17:30")
    assert config.defaults.timezone is None
    assert config.defaults.fallback_timezone == "UTC"
    assert config.defaults.message == DEFAULT_MESSAGE
    assert config.defaults.reply_within == timedelta(hours=4)
    assert config.reply.mode == "thread"
    assert config.reply.once_per == "off_window"
    assert config.recap.enabled is True
    assert config.recap.poll_seconds == 30.0
    assert config.recap.max_items == 10
    assert config.recap.include_text is False
    assert config.storage.url == "sqlite:///offhours.db"
    assert config.retention_days == 14
    assert config.command == "/hours"


def test_bare_config_equals_the_loaded_defaults(write):
    assert Config() == load_config(write(""), environ={})


def test_shipped_config_yaml_equals_the_defaults(write):
    assert load_config(REPO / "config.yaml", environ={}) == load_config(write(""), environ={})


def test_shipped_config_documents_every_key():
    text = (REPO / "config.yaml").read_text(encoding="utf-8")
    config = load_config(REPO / "config.yaml", environ={})
    for section in ("defaults", "reply", "recap", "storage"):
        assert f"\n{section}:" in text
        for key in (f.name for f in dataclasses.fields(getattr(config, section))):
            assert f"\n  {key}:" in text, f"{section}.{key} missing from config.yaml"
    for key in ("retention_days", "command"):
        assert f"\n{key}:" in text


def test_config_is_frozen(write):
    config = load_config(write(""), environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.retention_days = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.recap.max_items = 3  # type: ignore[misc]


def test_empty_sections_mean_defaults(write):
    assert load_config(write("recap:\nreply:\n"), environ={}) == load_config(write(""), environ={})


def test_values_are_read(write):
    config = load_config(
        write(
            """
            defaults:
              hours: "mon-fri 08:00-16:00"
              timezone: Europe/Berlin
              fallback_timezone: America/New_York
              message: "  Off until {back_at}.  "
              reply_within: 30m
            reply: {mode: ephemeral, once_per: day}
            recap: {enabled: false, poll_seconds: 5, max_items: 40, include_text: true}
            storage: {url: "postgresql+psycopg://db.internal/offhours"}
            retention_days: 3650
            command: /office-hours_2
            """
        ),
        environ={},
    )
    assert config.defaults.hours == render_hours(parse_hours("mon-fri 08:00-16:00"))
    assert config.defaults.timezone == "Europe/Berlin"
    assert config.defaults.fallback_timezone == "America/New_York"
    assert config.defaults.message == "Off until {back_at}."
    assert config.defaults.reply_within == timedelta(minutes=30)
    assert (config.reply.mode, config.reply.once_per) == ("ephemeral", "day")
    assert config.recap == type(config.recap)(enabled=False, poll_seconds=5.0, max_items=40, include_text=True)
    assert isinstance(config.recap.poll_seconds, float)
    assert config.storage.url == "postgresql+psycopg://db.internal/offhours"
    assert config.retention_days == 3650
    assert config.command == "/office-hours_2"


def test_fractional_poll_seconds(write):
    assert load_config(write("recap: {poll_seconds: 0.5}"), environ={}).recap.poll_seconds == 0.5


def test_path_from_environment(write):
    path = write("retention_days: 7")
    assert load_config(environ={"OFFHOURS_CONFIG": str(path)}).retention_days == 7


def test_argument_wins_over_environment(write, tmp_path):
    path = write("retention_days: 7")
    assert load_config(path, environ={"OFFHOURS_CONFIG": str(tmp_path / "nope.yaml")}).retention_days == 7


def test_default_path_is_config_yaml_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text("retention_days: 9\n", encoding="utf-8")
    assert load_config(environ={}).retention_days == 9


def test_missing_default_file_means_defaults(write, tmp_path, monkeypatch):
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    monkeypatch.chdir(empty_dir)
    assert load_config(environ={}) == load_config(write(""), environ={})


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml", environ={})


def test_missing_file_from_environment_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(environ={"OFFHOURS_CONFIG": str(tmp_path / "nope.yaml")})


def test_directory_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="can not read the config file"):
        load_config(tmp_path, environ={})


# --- bad documents -----------------------------------------------------------------------------------------------


def test_invalid_yaml_names_the_file_and_line(write):
    message = problems(write, "recap:\n  enabled: [true\n")
    assert "config.yaml: not valid YAML" in message and "line" in message


def test_top_level_must_be_a_mapping(write):
    assert "expected a mapping of sections" in problems(write, "- a\n- b\n")
    assert "got 'hello'" in problems(write, "hello\n")


def test_duplicate_keys_are_refused(write):
    message = problems(write, "recap:\n  enabled: true\nrecap:\n  enabled: false\n")
    assert "duplicate key 'recap'" in message and "line 3" in message


def test_unsafe_tags_are_refused(write):
    assert "not valid YAML" in problems(write, "command: !!python/object/apply:os.system ['true']\n")


def test_section_must_be_a_mapping(write):
    assert "recap: expected a mapping of keys (enabled, poll_seconds, max_items, include_text), got 'yes'" in problems(
        write, "recap: 'yes'"
    )


# --- unknown keys and secrets ------------------------------------------------------------------------------------


def test_unknown_key_lists_known_keys_with_did_you_mean(write):
    assert "reply.mood: unknown key — known keys: mode, once_per, external (did you mean 'mode'?)" in problems(
        write, "reply: {mood: thread}"
    )


def test_unknown_key_without_close_match(write):
    message = problems(write, "reply: {zebra: 1}")
    assert "reply.zebra: unknown key — known keys: mode, once_per" in message
    assert "did you mean" not in message


def test_unknown_top_level_key(write):
    assert (
        "retention: unknown key — known keys: defaults, reply, recap, storage, mentions, channels, status, nudge, "
        "retention_days, command "
        "(did you mean 'retention_days'?)" in problems(write, "retention: 3")
    )


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "slack: {signing_secret: abc}",
            "slack.signing_secret: secrets come from the environment: SLACK_SIGNING_SECRET",
        ),
        ("slack: {client_secret: abc}", "slack.client_secret: secrets come from the environment: SLACK_CLIENT_SECRET"),
        ("slack: {client_id: '1.2'}", "slack.client_id: secrets come from the environment: SLACK_CLIENT_ID"),
        ("app_token: xapp-1", "app_token: secrets come from the environment: SLACK_APP_TOKEN"),
        ("storage: {password: x}", "storage.password: secrets come from the environment: DATABASE_URL"),
        ("encryption_key: k", "encryption_key: secrets come from the environment: OFFHOURS_ENCRYPTION_KEY"),
        ("slack: {bot_token: xoxb-1}", "slack.bot_token: secrets come from the environment: SLACK_CLIENT_ID"),
        ("port: 8080", "port: set in the environment, not config.yaml: PORT"),
        ("host: 127.0.0.1", "host: set in the environment, not config.yaml: OFFHOURS_HOST"),
    ],
)
def test_secrets_and_deployment_settings_are_refused(write, yaml_text, expected):
    message = problems(write, yaml_text)
    assert expected in message
    assert "abc" not in message.replace(expected, "")  # the secret value itself is never echoed


def test_unknown_section_without_secrets_is_just_unknown(write):
    assert "slack: unknown key — known keys:" in problems(write, "slack: {channel: general}")


def test_database_password_in_storage_url_is_refused(write):
    message = problems(write, "storage: {url: 'postgresql://app:hunter2@db/offhours'}")
    assert "storage.url: contains a password; secrets come from the environment: DATABASE_URL" in message
    assert "hunter2" not in message


# --- values ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("recap: {poll_seconds: abc}", "recap.poll_seconds: expected a positive number, got 'abc'"),
        ("recap: {poll_seconds: 0}", "recap.poll_seconds: expected a positive number, got 0"),
        ("recap: {poll_seconds: -1.5}", "recap.poll_seconds: expected a positive number, got -1.5"),
        ("recap: {poll_seconds: .inf}", "recap.poll_seconds: expected a positive number, got inf"),
        ("recap: {poll_seconds: true}", "recap.poll_seconds: expected a positive number, got True"),
        ("recap: {poll_seconds: '30'}", "recap.poll_seconds: expected a positive number, got '30'"),
        ("recap: {poll_seconds: }", "recap.poll_seconds: expected a positive number, got nothing (null)"),
        ("recap: {enabled: yes please}", "recap.enabled: expected true or false, got 'yes please'"),
        ("recap: {enabled: 1}", "recap.enabled: expected true or false, got 1"),
        ("recap: {include_text: 'false'}", "recap.include_text: expected true or false, got 'false'"),
        ("recap: {max_items: 0}", "recap.max_items: expected a whole number from 1 to 40, got 0"),
        ("recap: {max_items: 41}", "recap.max_items: expected a whole number from 1 to 40, got 41"),
        ("recap: {max_items: 10.0}", "recap.max_items: expected a whole number from 1 to 40, got 10.0"),
        ("recap: {max_items: [1]}", "recap.max_items: expected a whole number from 1 to 40, got a list"),
        ("retention_days: 0", "retention_days: expected a whole number from 1 to 3650, got 0"),
        ("retention_days: 3651", "retention_days: expected a whole number from 1 to 3650, got 3651"),
        ("retention_days: '14'", "retention_days: expected a whole number from 1 to 3650, got '14'"),
        (
            "reply: {mode: threads}",
            "reply.mode: expected one of 'thread', 'ephemeral', got 'threads' (did you mean 'thread'?)",
        ),
        ("reply: {mode: 1}", "reply.mode: expected one of 'thread', 'ephemeral', got 1"),
        ("reply: {once_per: week}", "reply.once_per: expected one of 'off_window', 'day', got 'week'"),
        ("command: hours", "command: expected a slash command like '/hours'"),
        ("command: /Hours", "got '/Hours'"),
        ("command: '/my hours'", "got '/my hours'"),
        ("command: /", "got '/'"),
        ("command: /" + "a" * 32, "at most 32 characters"),
        ("storage: {url: ''}", "storage.url: expected a database URL like 'sqlite:///offhours.db', got ''"),
        ("storage: {url: offhours.db}", "storage.url: expected a database URL like 'sqlite:///offhours.db'"),
        ("defaults: {hours: 9}", "defaults.hours: expected working hours like 'mon-fri 09:00-17:30', got 9"),
        ("defaults: {timezone: 5}", "defaults.timezone: expected a time zone name like 'Europe/Berlin', got 5"),
        ("defaults: {fallback_timezone: ~}", "defaults.fallback_timezone: expected a time zone name"),
        ("defaults: {reply_within: 4}", "defaults.reply_within: expected a duration like '4h', '30m' or '1d', got 4"),
        ("defaults: {message: 42}", "defaults.message: expected a message template (text), got 42"),
    ],
)
def test_bad_values_name_the_key_and_what_was_expected(write, yaml_text, expected):
    assert expected in problems(write, yaml_text)


def test_command_at_the_length_limit_is_fine(write):
    command = "/" + "a" * 31
    assert load_config(write(f"command: {command}"), environ={}).command == command


def test_bad_hours_carry_the_hours_parsers_message(write):
    with pytest.raises(HoursError) as expected:
        parse_hours("mondays all day")
    message = problems(write, "defaults: {hours: 'mondays all day'}")
    first_line = str(expected.value).splitlines()[0]
    assert f"defaults.hours: {first_line}" in message


def test_bad_timezone_carries_the_resolvers_message(write):
    message = problems(write, "defaults: {timezone: Mars/Olympus}")
    assert "defaults.timezone: " in message and "Mars/Olympus" in message


def test_bad_duration_carries_the_parsers_message(write):
    message = problems(write, "defaults: {reply_within: soon}")
    assert "defaults.reply_within: " in message and "soon" in message


def test_bad_message_carries_the_template_message(write):
    message = problems(write, "defaults: {message: 'back {bak_at}'}")
    assert "defaults.message: The message has a problem:" in message
    assert "did you mean {back_at}?" in message


def test_all_problems_are_reported_at_once_one_per_line(write):
    message = problems(
        write,
        """
        reply: {mood: thread}
        recap: {poll_seconds: abc, enabled: maybe}
        retention_days: 0
        slack: {signing_secret: x}
        """,
    )
    lines = message.splitlines()
    assert lines[0].endswith("config.yaml has 5 problems:")
    assert len(lines) == 6
    for expected in (
        "reply.mood:",
        "recap.poll_seconds:",
        "recap.enabled:",
        "retention_days:",
        "slack.signing_secret:",
    ):
        assert sum(line.strip().startswith(expected) for line in lines) == 1


def test_timezone_null_means_the_slack_profile_zone(write):
    assert load_config(write("defaults: {timezone: ~}"), environ={}).defaults.timezone is None


# --- the environment ---------------------------------------------------------------------------------------------


def test_settings_with_only_the_required_variables():
    settings = load_settings(REQUIRED_ENV)
    assert settings == Settings(signing_secret="sign-s3cret", client_id="123.456", client_secret="cl-s3cret")
    assert settings.port == 3000
    assert settings.host == "0.0.0.0"
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.database_url is None
    assert settings.app_token is None and settings.encryption_key is None and settings.base_url is None
    assert settings.config_path is None


def test_settings_with_everything():
    settings = load_settings(
        {
            **REQUIRED_ENV,
            "DATABASE_URL": "postgresql+psycopg://app:pw@db/offhours",
            "PORT": "8080",
            "OFFHOURS_HOST": "::1",
            "OFFHOURS_CONFIG": "/etc/offhours.yaml",
            "SLACK_API_URL": "http://127.0.0.1:8888/api",
            "SLACK_APP_TOKEN": "xapp-1-abc",
            "OFFHOURS_ENCRYPTION_KEY": "k3y",
            "OFFHOURS_BASE_URL": "https://offhours.example.com/",
        }
    )
    assert settings.database_url == "postgresql+psycopg://app:pw@db/offhours"
    assert settings.port == 8080
    assert settings.host == "::1"
    assert settings.config_path == "/etc/offhours.yaml"
    assert settings.slack_api_url == "http://127.0.0.1:8888/api/"
    assert settings.app_token == "xapp-1-abc"
    assert settings.encryption_key == "k3y"
    assert settings.base_url == "https://offhours.example.com"


def test_all_missing_required_variables_in_one_message():
    with pytest.raises(ConfigError) as caught:
        load_settings({"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "  "})
    message = str(caught.value)
    assert "SLACK_SIGNING_SECRET, SLACK_CLIENT_SECRET" in message
    assert "SLACK_CLIENT_ID," not in message
    assert "see README.md#environment" in message


def test_nothing_set_names_all_three():
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET, SLACK_CLIENT_ID, SLACK_CLIENT_SECRET"):
        load_settings({})


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("PORT", "abc", "PORT: expected a whole number from 1 to 65535, got 'abc'"),
        ("PORT", "0", "PORT: expected a whole number from 1 to 65535, got '0'"),
        ("PORT", "65536", "got '65536'"),
        ("PORT", "-1", "got '-1'"),
        ("PORT", "80.5", "got '80.5'"),
        ("METRICS_PORT", "abc", "METRICS_PORT: expected a whole number from 1 to 65535, got 'abc'"),
        ("METRICS_PORT", "0", "METRICS_PORT: expected a whole number from 1 to 65535, got '0'"),
        ("OFFHOURS_HOST", "http://0.0.0.0", "OFFHOURS_HOST: expected an address to listen on"),
        ("OFFHOURS_HOST", "0.0.0.0:3000", "got '0.0.0.0:3000'"),
        ("OFFHOURS_HOST", "my host", "got 'my host'"),
        ("OFFHOURS_HOST", "-bad.example", "got '-bad.example'"),
        ("SLACK_API_URL", "slack.com/api", "SLACK_API_URL: expected an http(s) URL"),
        ("SLACK_API_URL", "ftp://slack.com/api/", "SLACK_API_URL: expected an http(s) URL"),
        ("SLACK_APP_TOKEN", "xoxb-123", "SLACK_APP_TOKEN: expected an app-level token starting with 'xapp-'"),
        ("OFFHOURS_BASE_URL", "offhours.example.com", "OFFHOURS_BASE_URL: expected the public http(s) URL"),
        ("DATABASE_URL", "offhours.db", "DATABASE_URL: expected a database URL"),
    ],
)
def test_bad_environment_values(name, value, expected):
    with pytest.raises(ConfigError) as caught:
        load_settings({**REQUIRED_ENV, name: value})
    assert expected in str(caught.value)


def test_ports_given_are_used_and_unset_ones_take_their_defaults():
    assert (load_settings(REQUIRED_ENV).port, load_settings(REQUIRED_ENV).metrics_port) == (3000, None)
    given = load_settings({**REQUIRED_ENV, "PORT": "8080", "METRICS_PORT": "9090"})
    assert (given.port, given.metrics_port) == (8080, 9090)


def test_socket_mode_requires_the_public_base_url_named_with_every_other_problem():
    """Socket Mode carries events, commands and buttons, not people: connect links and Slack's OAuth redirect need
    the public https URL, which no request tells a Socket Mode app (its links pointed at http://localhost:3000)."""
    with pytest.raises(ConfigError) as caught:
        load_settings({"SLACK_CLIENT_ID": "1.2", "SLACK_APP_TOKEN": "xapp-1-abc", "PORT": "x"})
    message = str(caught.value)
    assert "missing required environment variables: SLACK_SIGNING_SECRET, SLACK_CLIENT_SECRET" in message
    assert "PORT: expected a whole number" in message
    assert "OFFHOURS_BASE_URL: required with SLACK_APP_TOKEN (Socket Mode)" in message
    assert "/slack/install" in message and "https://" in message
    assert "xapp-1-abc" not in message


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://offhours.example.com", "OFFHOURS_BASE_URL: Socket Mode needs the public https URL"),
        ("http://localhost:3000", "got 'http://localhost:3000'"),
        ("offhours.example.com", "OFFHOURS_BASE_URL: expected the public http(s) URL of this app"),
    ],
)
def test_socket_mode_needs_an_https_base_url(base_url, expected):
    with pytest.raises(ConfigError) as caught:
        load_settings({**REQUIRED_ENV, "SLACK_APP_TOKEN": "xapp-1-abc", "OFFHOURS_BASE_URL": base_url})
    message = str(caught.value)
    assert expected in message
    assert message.count("OFFHOURS_BASE_URL") == 1  # a malformed one is named once, not also as missing


def test_socket_mode_with_an_https_base_url_and_http_without_socket_mode_are_accepted():
    with_socket = load_settings(
        {**REQUIRED_ENV, "SLACK_APP_TOKEN": "xapp-1-abc", "OFFHOURS_BASE_URL": "https://offhours.example.com/"}
    )
    assert (with_socket.app_token, with_socket.base_url) == ("xapp-1-abc", "https://offhours.example.com")
    # Over HTTP the links come from Slack's own requests (their Host header): the base URL stays optional.
    assert load_settings(REQUIRED_ENV).base_url is None
    assert load_settings({**REQUIRED_ENV, "OFFHOURS_BASE_URL": "http://127.0.0.1:3000"}).base_url == (
        "http://127.0.0.1:3000"
    )


def test_app_token_is_not_echoed_when_wrong():
    with pytest.raises(ConfigError) as caught:
        load_settings({**REQUIRED_ENV, "SLACK_APP_TOKEN": "xoxb-secret-value"})
    assert "secret-value" not in str(caught.value)


def test_missing_and_invalid_together_in_one_error():
    with pytest.raises(ConfigError) as caught:
        load_settings({"PORT": "x"})
    message = str(caught.value)
    assert "SLACK_SIGNING_SECRET" in message and "PORT: expected" in message


def test_empty_optional_variables_count_as_unset():
    settings = load_settings({**REQUIRED_ENV, "PORT": "", "SLACK_APP_TOKEN": "", "SLACK_API_URL": " "})
    assert settings.port == 3000 and settings.app_token is None and settings.slack_api_url == "https://slack.com/api/"


def test_settings_repr_masks_secrets():
    settings = load_settings(
        {
            **REQUIRED_ENV,
            "SLACK_APP_TOKEN": "xapp-1-topsecret",
            "OFFHOURS_BASE_URL": "https://offhours.example.com",  # Socket Mode requires it
            "OFFHOURS_ENCRYPTION_KEY": "enc-topsecret",
            "DATABASE_URL": "postgresql://app:dbtopsecret@db/offhours",
        }
    )
    for shown in (repr(settings), str(settings), f"{settings}"):
        assert "s3cret" not in shown and "topsecret" not in shown
        assert "123.456" in shown  # the client id is not a secret and helps debugging
        assert "postgresql://app:***@db/offhours" in shown
        assert "signing_secret='***'" in shown


def test_settings_are_frozen():
    settings = load_settings(REQUIRED_ENV)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]


# --- the one database URL -------------------------------------------------------------------------------------


def test_the_database_is_database_url_else_the_config_files_storage_url():
    config = Config(storage=StorageConfig(url="sqlite:///from-config.db"))
    assert database_url(config, {}) == "sqlite:///from-config.db"
    assert database_url(config, {"DATABASE_URL": "  "}) == "sqlite:///from-config.db"  # empty counts as unset
    assert database_url(config, {"DATABASE_URL": "postgresql+psycopg://db/x"}) == "postgresql+psycopg://db/x"
    assert database_url(Config(), {}) == "sqlite:///offhours.db"


def test_a_malformed_database_url_is_refused_as_load_settings_refuses_it():
    with pytest.raises(ConfigError, match="DATABASE_URL: expected a database URL") as raised:
        database_url(Config(), {"DATABASE_URL": "offhours.db"})
    with pytest.raises(ConfigError) as from_settings:
        load_settings({**REQUIRED_ENV, "DATABASE_URL": "offhours.db"})
    assert str(raised.value) in str(from_settings.value)


def test_channels_managers_is_admins_or_members(write):
    assert load_config(write("channels: {managers: members}"), environ={}).channels.managers == "members"
    assert "channels.managers" in problems(write, "channels: {managers: everyone}")


def test_nudge_before_is_a_duration_or_off(write):
    assert problems(write, "nudge:\n  before: soon") and "nudge.before" in problems(write, "nudge:\n  before: soon")
    assert "nudge.before" in problems(write, "nudge:\n  before: 0m")


def test_nudge_before_reads_off_and_durations(write):
    assert load_config(write("nudge:\n  before: off\n"), environ={}).nudge.before is None
    assert load_config(write("nudge:\n  before: 1h\n"), environ={}).nudge.before == timedelta(hours=1)
    assert load_config(write(""), environ={}).nudge.before == timedelta(minutes=30)
