"""Secrets: Argon2id password hashes, and random tokens stored as their SHA-256."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()  # Argon2id with the library's (RFC 9106 low-memory) parameters
TOKEN_PREFIX = "jy_"


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_password() -> str:
    """A random password for a first admin: 20 characters, easy to copy."""
    return secrets.token_urlsafe(15)


def new_secret(prefix: str = TOKEN_PREFIX) -> str:
    """A random secret (API token or session id) with 256 bits of entropy."""
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What is stored of a secret: a long random string needs no slow hash."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
