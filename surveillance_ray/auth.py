"""Who may call the HTTP API: API keys, stored only as SHA-256 hashes, each with a role, and the JWTs
(HS256) the API issues for them.

Roles (the seed's): viewer reads; operator reads and acknowledges alerts; admin also changes cameras and
settings. A request carries its key or token as ``Authorization: Bearer …``, ``X-API-Key: KEY`` or the
``sr_token`` cookie ``POST /token`` sets (what a browser's ``<img>`` and ``EventSource`` send).
``surveillance-ray api-key --name N --role R`` makes a key and prints the config entry that holds its hash.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import time

import jwt

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


ISSUER = "surveillance-ray"


class Authenticator:
    """Checks a presented key against the configured hashes (constant-time), or a JWT against the signing
    secret, and a role against a need."""

    def __init__(self, keys: list[ApiKey], jwt_secret: str | None = None, token_ttl_s: float = 3600.0) -> None:
        self._keys = [(k.sha256, k.name, Role[k.role.upper()]) for k in keys]
        self._secret = jwt_secret
        self.token_ttl_s = token_ttl_s

    def issue(self, name: str, role: Role) -> str:
        """A JWT for the key ``name`` with its role, valid ``token_ttl_s``."""
        if not self._secret:
            raise Unauthorized("tokens are off (no signing secret)")
        now = int(time.time())
        return jwt.encode({"sub": name, "role": role.name.lower(), "iss": ISSUER, "iat": now,
                           "exp": now + int(self.token_ttl_s)}, self._secret, algorithm="HS256")

    def identify(self, key: str | None) -> tuple[str, Role]:
        """The key's or token's (name, role); raises ``Unauthorized``."""
        if not key:
            raise Unauthorized("missing API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'")
        if key.count(".") == 2 and self._secret:
            return self._token(key)
        return self.identify_key(key)

    def identify_key(self, key: str) -> tuple[str, Role]:
        """An API key's (name, role) (never a token: tokens are issued for keys only)."""
        digest = key_hash(key)
        found = None
        for stored, name, role in self._keys:  # every entry compared: the time does not tell which matched
            if hmac.compare_digest(stored, digest):
                found = (name, role)
        if found is None:
            raise Unauthorized("invalid API key")
        return found

    def _token(self, token: str) -> tuple[str, Role]:
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], issuer=ISSUER,
                                options={"require": ["exp", "iat", "sub", "role"]})
            return claims["sub"], Role[str(claims["role"]).upper()]
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired: get a new one from POST /token") from None
        except (jwt.InvalidTokenError, KeyError):
            raise Unauthorized("invalid token") from None

    def require(self, key: str | None, need: Role) -> tuple[str, Role]:
        """The caller, when its role is at least ``need``; raises ``Unauthorized`` / ``Forbidden``."""
        name, role = self.identify(key)
        if role < need:
            raise Forbidden(f"key {name!r} has role {role.name.lower()}; this needs {need.name.lower()}")
        return name, role
