"""A user's change of their own password: the one way the API and the pages make it."""

from __future__ import annotations

from jobyard.access.accounts import Accounts
from jobyard.access.gate import Gate
from jobyard.access.records import Principal


def change_own_password(
    accounts: Accounts, gate: Gate, who: Principal, current: str, new: str, address: str
) -> str | None:
    """Set ``who``'s password to ``new``, proven with ``current``, from ``address``.

    ``new`` follows the rules of :meth:`Accounts.check_new_password` (422); ``current``
    is asked again whatever ``who`` acts with, and a wrong one is a 403 counted with the
    failed logins (429 after too many: :meth:`Gate.reauthenticate`). The user's browser
    sessions end; the one the change is made from, whose cookie may have been known with
    the old password, goes on under a new secret: returned, for the new cookie (None when
    ``who`` acts with no session).
    """
    accounts.check_new_password(current, new)
    gate.reauthenticate(who.name, current, address)
    accounts.set_password(who.name, new)
    return gate.renewed_session(who, new) if who.via == "session" else None
