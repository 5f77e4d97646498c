"""Staff sign-in for the dashboard: password check, sessions, CSRF tokens.

The session cookie carries 256 random bits; the database keeps only HMAC(secret key, token),
so neither a database copy nor a log line can be replayed as a session. CSRF tokens are derived
from the session token with the same key, so they need no storage and die with the session.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy.orm import Session

from storeloop.kit.crypto import InstanceCipher
from storeloop.kit.secrets import hash_password, verify_password
from storeloop.kit.timeutil import as_utc, utcnow
from storeloop.models import StaffSession, User
from storeloop.workspaces.repository import StaffSessionRepository, UserRepository
from storeloop.workspaces.service import Role, normalize_staff_email

SESSION_IDLE_TIMEOUT = timedelta(hours=12)
SESSION_MAX_AGE = timedelta(days=14)
# Touching last_seen_at at most this often keeps a page view from being a write.
LAST_SEEN_RESOLUTION = timedelta(minutes=5)
# Verified when the email is unknown, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))

# What each role may do in the dashboard; reading is open to every role.
_MANAGE_KEYS = frozenset({Role.OWNER, Role.ADMIN})
_MANAGE_MARKETING = frozenset({Role.OWNER, Role.ADMIN, Role.MARKETER})


@dataclass(frozen=True, slots=True)
class StaffContext:
    """Who is signed in, in which workspace, with which role."""

    session_id: uuid.UUID
    user_id: uuid.UUID
    workspace_id: uuid.UUID
    workspace_name: str
    role: Role
    csrf_token: str

    @property
    def can_manage_keys(self) -> bool:
        return self.role in _MANAGE_KEYS

    @property
    def can_manage_marketing(self) -> bool:
        return self.role in _MANAGE_MARKETING


def _token_hash(signing_key: bytes, token: str) -> str:
    return hmac.new(signing_key, b"session:" + token.encode(), hashlib.sha256).hexdigest()


def csrf_token_for(signing_key: bytes, token: str) -> str:
    return hmac.new(signing_key, b"csrf:" + token.encode(), hashlib.sha256).hexdigest()


def authenticate_staff(
    session: Session, instance: InstanceCipher, email: str, password: str
) -> User | None:
    """The active user with this email and password, or None (same cost either way)."""
    try:
        normalized = normalize_staff_email(email)
    except Exception:
        verify_password(_DUMMY_HASH, password)
        return None
    user = UserRepository(session).by_email_index(instance.blind_index("staff-email", normalized))
    if user is None:
        verify_password(_DUMMY_HASH, password)
        return None
    if not verify_password(user.password_hash, password) or not user.is_active:
        return None
    return user


def email_rate_key(instance: InstanceCipher, email: str) -> str:
    """A key for per-account login limits that does not reveal the address."""
    return instance.blind_index("login-attempt", email.strip().lower())[:24]


def start_session(
    session: Session, signing_key: bytes, user: User, workspace_id: uuid.UUID | None = None
) -> str | None:
    """Open a session for ``user`` in ``workspace_id`` (default: their first workspace).

    Returns the token for the cookie, or None when the user belongs to no such workspace.
    """
    sessions = StaffSessionRepository(session)
    chosen = sessions.first_workspace_of(user.id, workspace_id)
    if chosen is None:
        return None
    token = secrets.token_urlsafe(32)
    now = utcnow()
    sessions.add(
        StaffSession(
            token_hash=_token_hash(signing_key, token),
            user_id=user.id,
            workspace_id=chosen,
            created_at=now,
            last_seen_at=now,
            expires_at=now + SESSION_MAX_AGE,
        )
    )
    return token


def resolve_session(session: Session, signing_key: bytes, token: str) -> StaffContext | None:
    """The signed-in context of a cookie token, or None if expired, revoked or unknown.

    The role is read from the membership on every request, so a demotion applies at once.
    """
    row = StaffSessionRepository(session).active_with_role(_token_hash(signing_key, token))
    if row is None:
        return None
    staff_session, role, workspace_name = row
    now = utcnow()
    last_seen = as_utc(staff_session.last_seen_at)
    if as_utc(staff_session.expires_at) <= now or now - last_seen > SESSION_IDLE_TIMEOUT:
        return None
    if now - last_seen > LAST_SEEN_RESOLUTION:
        staff_session.last_seen_at = now
    return StaffContext(
        session_id=staff_session.id,
        user_id=staff_session.user_id,
        workspace_id=staff_session.workspace_id,
        workspace_name=workspace_name,
        role=Role(role),
        csrf_token=csrf_token_for(signing_key, token),
    )


def end_session(session: Session, signing_key: bytes, token: str) -> None:
    StaffSessionRepository(session).revoke(_token_hash(signing_key, token), utcnow())


class LoginRateLimiter:
    """Failed sign-ins per client address and per account, moving window; Redis when set.

    Only failures count, so a user who types the password right is never slowed down by
    others; per-account limits stop a distributed guess at one password.
    """

    def __init__(
        self,
        storage_uri: str | None = None,
        *,
        per_address: str = "20/minute",
        per_account: str = "5/minute",
    ) -> None:
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri or "memory://"))
        self._per_address = parse(per_address)
        self._per_account = parse(per_account)

    def retry_after(self, address: str, account: str) -> int | None:
        """Seconds to wait if either limit is used up, else None."""
        waits = []
        for item, ident in ((self._per_address, address), (self._per_account, account)):
            if not self._limiter.test(item, "login", ident):
                stats = self._limiter.get_window_stats(item, "login", ident)
                waits.append(max(1, math.ceil(stats.reset_time - time.time())))
        return max(waits) if waits else None

    def failed(self, address: str, account: str) -> None:
        self._limiter.hit(self._per_address, "login", address)
        self._limiter.hit(self._per_account, "login", account)
