"""Access control: who may do what, and a record of what they did.

Owns the roles (:mod:`.roles`: viewer < operator < admin), the frozen records of
users, tokens, sessions and audit entries (:mod:`.records`), the hashing of
passwords (Argon2id) and secrets (:mod:`.credentials`), and the services over
the store: accounts (:mod:`.accounts`), authentication with its caches and the
login throttle (:mod:`.gate`, :mod:`.throttle`), a user's change of their own
password (:mod:`.own_password`) and the audit log (:mod:`.audit`). The API and the
CLI are its edges; it never imports them.
"""

from __future__ import annotations

from jobyard.access.records import AuditEntry, AuditQuery, Principal, Token, User
from jobyard.access.roles import Role

__all__ = ["AuditEntry", "AuditQuery", "Principal", "Role", "Token", "User"]
