"""Tokens encrypted at rest: Bolt's SQLAlchemy installation store, with Fernet on every token column.

Enabled by OFFHOURS_ENCRYPTION_KEY (a Fernet key: `python -c "from cryptography.fernet import Fernet;
print(Fernet.generate_key().decode())"`). Without it tokens are stored as Slack issued them.
"""

from __future__ import annotations

import copy

from cryptography.fernet import Fernet, InvalidToken
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore

from bot.domain.errors import ConfigError

BOT_FIELDS = ("bot_token", "bot_refresh_token")
USER_FIELDS = ("user_token", "user_refresh_token")
PREFIX = "enc:"  # marks encrypted values, so rows written before the key was set still read


class TokenCipher:
    def __init__(self, key: str) -> None:
        try:
            self.fernet = Fernet(key.encode())
        except (ValueError, TypeError) as e:
            raise ConfigError(
                "OFFHOURS_ENCRYPTION_KEY: expected a Fernet key (32 url-safe base64-encoded bytes) — generate one "
                'with: python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
            ) from e

    def encrypt(self, value: str | None) -> str | None:
        if not value or value.startswith(PREFIX):
            return value
        return PREFIX + self.fernet.encrypt(value.encode()).decode()

    def decrypt(self, value: str | None) -> str | None:
        if not value or not value.startswith(PREFIX):
            return value
        try:
            return self.fernet.decrypt(value[len(PREFIX) :].encode()).decode()
        except InvalidToken as e:
            raise ConfigError("OFFHOURS_ENCRYPTION_KEY does not decrypt the stored tokens: was the key changed?") from e


class EncryptedInstallationStore(SQLAlchemyInstallationStore):
    """Encrypts tokens on save and decrypts them on find; the rest is slack_sdk's store unchanged."""

    def __init__(self, *args, cipher: TokenCipher, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cipher = cipher

    def _apply(self, obj, fields, convert):
        obj = copy.copy(obj)
        for field in fields:
            if hasattr(obj, field):
                setattr(obj, field, convert(getattr(obj, field)))
        return obj

    def save(self, installation: Installation) -> None:
        super().save(self._apply(installation, BOT_FIELDS + USER_FIELDS, self.cipher.encrypt))

    def save_bot(self, bot: Bot) -> None:
        super().save_bot(self._apply(bot, BOT_FIELDS, self.cipher.encrypt))

    def find_bot(self, **kwargs) -> Bot | None:
        bot = super().find_bot(**kwargs)
        return None if bot is None else self._apply(bot, BOT_FIELDS, self.cipher.decrypt)

    def find_installation(self, **kwargs) -> Installation | None:
        installation = super().find_installation(**kwargs)
        if installation is None:
            return None
        return self._apply(installation, BOT_FIELDS + USER_FIELDS, self.cipher.decrypt)
