"""Who may call the HTTP API: API keys, stored only as SHA-256 hashes, each with a role.

Roles (the seed's): viewer reads; operator reads and acknowledges alerts; admin also changes cameras and
settings. A request carries its key as ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``.
``surveillance-ray api-key --name N --role R`` makes a key and prints the config entry that holds its hash.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets

from surveillance_ray.config import ApiKey


class Role(enum.IntEnum):
    VIEWER = 1  # read
    OPERATOR = 2  # read + acknowledge
    ADMIN = 3  # read + write + admin


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(name: str, role: str) -> tuple[str, ApiKey]:
    """A fresh random key and its config entry (the key itself is shown once and never stored)."""
    key = "sr_" + secrets.token_urlsafe(32)
    return key, ApiKey(name=name, role=role, sha256=key_hash(key))


class Unauthorized(Exception):
    """No key, or a key that matches none (HTTP 401)."""


class Forbidden(Exception):
    """A known key whose role is below what the endpoint needs (HTTP 403)."""


class Authenticator:
    """Checks a presented key against the configured hashes (constant-time) and a role against a need."""

    def __init__(self, keys: list[ApiKey]) -> None:
        self._keys = [(k.sha256, k.name, Role[k.role.upper()]) for k in keys]

    def identify(self, key: str | None) -> tuple[str, Role]:
        """The key's (name, role); raises ``Unauthorized``."""
        if not key:
            raise Unauthorized("missing API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'")
        digest = key_hash(key)
        found = None
        for stored, name, role in self._keys:  # every entry compared: the time does not tell which matched
            if hmac.compare_digest(stored, digest):
                found = (name, role)
        if found is None:
            raise Unauthorized("invalid API key")
        return found

    def require(self, key: str | None, need: Role) -> tuple[str, Role]:
        """The caller, when its role is at least ``need``; raises ``Unauthorized`` / ``Forbidden``."""
        name, role = self.identify(key)
        if role < need:
            raise Forbidden(f"key {name!r} has role {role.name.lower()}; this needs {need.name.lower()}")
        return name, role
