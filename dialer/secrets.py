"""Provider credentials at rest: encrypted with ``DIALER_SECRET_KEY`` (Fernet, from the maintained
``cryptography`` package: AES-128-CBC + HMAC-SHA256, never home-made) when it is set.

An encrypted value is stored as ``fernet:<token>``; a value stored before the key was set stays readable
(and is encrypted the next time the provider is written).
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

from dialer.errors import CredentialsUnreadable, InvalidRequest

PREFIX = "fernet:"


def new_key() -> str:
    """A fresh key for DIALER_SECRET_KEY."""
    return Fernet.generate_key().decode()


class SecretBox:
    def __init__(self, key: str | None) -> None:
        self.fernet: Fernet | None = None
        if key:
            try:
                self.fernet = Fernet(key.encode())
            except ValueError:
                raise InvalidRequest(
                    "DIALER_SECRET_KEY: not a Fernet key (32 url-safe base64 bytes); make one with "
                    "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
                ) from None

    @property
    def active(self) -> bool:
        return self.fernet is not None

    def seal(self, value: str | None) -> str | None:
        if value is None or self.fernet is None or value.startswith(PREFIX):
            return value
        return PREFIX + self.fernet.encrypt(value.encode()).decode()

    def open(self, value: str | None) -> str | None:
        if value is None or not value.startswith(PREFIX):
            return value
        if self.fernet is None:
            raise CredentialsUnreadable(
                "provider credentials are encrypted: set DIALER_SECRET_KEY to the key that sealed them"
            )
        try:
            return self.fernet.decrypt(value[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise CredentialsUnreadable(
                "provider credentials were sealed with another DIALER_SECRET_KEY: set the key that sealed them, "
                "or give the credentials again (provider update --auth-token -)"
            ) from None


def is_sealed(value: str | None) -> bool:
    return bool(value and value.startswith(PREFIX))
