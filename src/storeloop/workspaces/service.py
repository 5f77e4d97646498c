"""Creating workspaces, staff users and API keys; authenticating keys."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from storeloop.kit.crypto import InstanceCipher, new_data_key, row_aad, wrap_data_key
from storeloop.kit.errors import Conflict, NotFound, ValidationFailed
from storeloop.kit.ids import new_id
from storeloop.kit.secrets import (
    SECRET_KEY_PREFIX,
    WRITE_KEY_PREFIX,
    display_prefix,
    generate_api_key,
    hash_api_key,
    hash_password,
)
from storeloop.kit.timeutil import utcnow
from storeloop.models import ApiKey, Membership, User, Workspace
from storeloop.workspaces.repository import (
    ApiKeyRepository,
    UserRepository,
    WorkspaceRepository,
    find_active_key_by_hash,
    record_key_usage,
)

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 10


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MARKETER = "marketer"
    ANALYST = "analyst"


class KeyKind(StrEnum):
    WRITE = "write"
    SECRET = "secret"


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key: ``plaintext`` is shown once and never stored."""

    key: ApiKey
    plaintext: str


@dataclass(frozen=True, slots=True)
class KeyIdentity:
    workspace_id: uuid.UUID
    key_id: uuid.UUID
    kind: KeyKind


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63]
    return slug or "store"


def create_workspace(
    session: Session, master_key: bytes, name: str, slug: str | None = None
) -> Workspace:
    name = name.strip()
    if not name:
        raise ValidationFailed("a workspace needs a name", field="name")
    slug = slug or slugify(name)
    if not _SLUG.match(slug):
        raise ValidationFailed(
            "slug must be lowercase letters, digits and dashes, at most 63", field="slug"
        )
    repository = WorkspaceRepository(session)
    if repository.by_slug(slug) is not None:
        raise Conflict(f"a workspace with slug {slug!r} already exists", field="slug")
    workspace_id = new_id()
    workspace = Workspace(
        id=workspace_id,
        name=name,
        slug=slug,
        wrapped_data_key=wrap_data_key(master_key, workspace_id, new_data_key()),
    )
    repository.add(workspace)
    return workspace


def get_workspace(session: Session, workspace_id: uuid.UUID) -> Workspace:
    workspace = WorkspaceRepository(session).get(workspace_id)
    if workspace is None:
        raise NotFound("workspace not found")
    return workspace


def find_workspace(session: Session, ref: str) -> Workspace | None:
    """A workspace by its id or its slug (the operator's CLI)."""
    repository = WorkspaceRepository(session)
    try:
        return repository.get(uuid.UUID(ref))
    except ValueError:
        return repository.by_slug(ref)


def list_workspaces(session: Session) -> Sequence[Workspace]:
    """Every workspace of the instance, oldest first (the operator's CLI)."""
    return WorkspaceRepository(session).all()


def phone_region(session: Session, workspace_id: uuid.UUID) -> str | None:
    """The region used to read the workspace's phone numbers written without a country code."""
    return WorkspaceRepository(session).phone_region(workspace_id)


def create_api_key(
    session: Session, workspace_id: uuid.UUID, kind: KeyKind, name: str
) -> CreatedKey:
    if WorkspaceRepository(session).get(workspace_id) is None:
        raise NotFound(f"workspace {workspace_id} does not exist")
    plaintext = generate_api_key(WRITE_KEY_PREFIX if kind is KeyKind.WRITE else SECRET_KEY_PREFIX)
    key = ApiKey(
        id=new_id(),
        kind=kind.value,
        name=name.strip() or f"{kind.value} key",
        prefix=display_prefix(plaintext),
        key_hash=hash_api_key(plaintext),
    )
    ApiKeyRepository(session, workspace_id).add(key)
    return CreatedKey(key, plaintext)


def revoke_api_key(session: Session, workspace_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
    key = ApiKeyRepository(session, workspace_id).get(key_id)
    if key is None:
        raise NotFound(f"no API key {key_id} in this workspace", field="key_id")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.flush()
    return key


def list_api_keys(
    session: Session, workspace_id: uuid.UUID, *, include_revoked: bool = False
) -> list[ApiKey]:
    return list(ApiKeyRepository(session, workspace_id).list(include_revoked=include_revoked))


def normalize_staff_email(email: str) -> str:
    value = email.strip().lower()
    if not _EMAIL.match(value):
        raise ValidationFailed("not a valid email address", field="email")
    return value


def create_user(
    session: Session,
    instance: InstanceCipher,
    workspace_id: uuid.UUID,
    email: str,
    password: str,
    role: Role,
) -> User:
    """Create a staff account (or reuse one with this email) and give it a role in the workspace."""
    if WorkspaceRepository(session).get(workspace_id) is None:
        raise NotFound(f"workspace {workspace_id} does not exist")
    normalized = normalize_staff_email(email)
    email_index = instance.blind_index("staff-email", normalized)
    users = UserRepository(session)
    user = users.by_email_index(email_index)
    if user is None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ValidationFailed(
                f"password must be at least {MIN_PASSWORD_LENGTH} characters", field="password"
            )
        user_id = new_id()
        user = User(
            id=user_id,
            email_index=email_index,
            email_sealed=instance.seal(normalized.encode(), row_aad("users", user_id, "email")),
            password_hash=hash_password(password),
        )
        users.add(user)
    if users.membership(workspace_id, user.id) is not None:
        raise Conflict("this user is already a member of the workspace", field="email")
    users.add_membership(Membership(workspace_id=workspace_id, user_id=user.id, role=role.value))
    return user


class KeyAuthenticator:
    """Resolves presented API keys to their workspace, with a short cache for the hot path.

    Revocation takes effect within ``ttl_seconds`` on every process.
    """

    def __init__(self, ttl_seconds: float = 5.0) -> None:
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, KeyIdentity | None]] = {}
        self._misses: dict[str, tuple[float, KeyIdentity | None]] = {}
        self._lock = threading.Lock()
        # When each key was last used; written to api_keys.last_used_at in the background
        # (flush_usage), never on the request path.
        self._used: dict[uuid.UUID, datetime] = {}

    def authenticate(
        self, session: Session | sessionmaker[Session], presented: str
    ) -> KeyIdentity | None:
        """The key's identity, or None. Given a session factory, a session is opened only when
        the cache cannot answer."""
        key_hash = hash_api_key(presented)
        now = time.monotonic()
        cached = self._cache.get(key_hash) or self._misses.get(key_hash)
        if cached is not None and cached[0] > now:
            if cached[1] is not None:
                self._used[cached[1].key_id] = utcnow()
            return cached[1]
        if isinstance(session, Session):
            key = find_active_key_by_hash(session, key_hash)
        else:
            with session() as opened:
                key = find_active_key_by_hash(opened, key_hash)
        identity = (
            KeyIdentity(key.workspace_id, key.id, KeyKind(key.kind)) if key is not None else None
        )
        with self._lock:
            # Misses live in their own bounded map: a flood of made-up keys cannot evict the
            # valid ones (at worst it costs a database look-up per made-up key).
            target = self._cache if identity is not None else self._misses
            if len(target) > 10_000:
                target.clear()
            target[key_hash] = (now + self._ttl, identity)
        if identity is not None:
            self._used[identity.key_id] = utcnow()
        return identity

    def flush_usage(self, connection: Connection) -> int:
        """Record when keys were last used; returns how many keys were updated."""
        with self._lock:
            used, self._used = self._used, {}
        if used:
            record_key_usage(connection, used)
        return len(used)

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()
            self._misses.clear()
