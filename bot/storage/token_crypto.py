"""Tokens encrypted at rest: the Fernet cipher bot/storage/tokens.py applies to every token it writes and reads.

Enabled by OFFHOURS_ENCRYPTION_KEY (a Fernet key: `python -c "from cryptography.fernet import Fernet;
print(Fernet.generate_key().decode())"`). Without it tokens are stored as Slack issued them (`PlainTokens`).
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

from bot.domain.errors import ConfigError

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


class PlainTokens:
    """No key: tokens are stored and read as Slack issued them."""

    def encrypt(self, value: str | None) -> str | None:
        return value

    def decrypt(self, value: str | None) -> str | None:
        return value


def make_cipher(key: str | None) -> TokenCipher | PlainTokens:
    return TokenCipher(key) if key else PlainTokens()
