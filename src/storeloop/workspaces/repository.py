"""Every query of the workspaces domain. Key and membership queries are scoped to a workspace."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.orm import Session

from storeloop.models import ApiKey, Membership, StaffSession, User, Workspace


class WorkspaceRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, workspace_id: uuid.UUID) -> Workspace | None:
        return self.session.get(Workspace, workspace_id)

    def phone_region(self, workspace_id: uuid.UUID) -> str | None:
        """The region used to read phone numbers written without a country code."""
        return self.session.scalar(
            select(Workspace.default_phone_region).where(Workspace.id == workspace_id)
        )

    def by_slug(self, slug: str) -> Workspace | None:
        return self.session.scalar(select(Workspace).where(Workspace.slug == slug))

    def all(self) -> Sequence[Workspace]:
        return self.session.scalars(select(Workspace).order_by(Workspace.created_at)).all()

    def add(self, workspace: Workspace) -> None:
        self.session.add(workspace)
        self.session.flush()


class ApiKeyRepository:
    def __init__(self, session: Session, workspace_id: uuid.UUID) -> None:
        self.session = session
        self.workspace_id = workspace_id

    def list(self, *, include_revoked: bool = False) -> Sequence[ApiKey]:
        query = select(ApiKey).where(ApiKey.workspace_id == self.workspace_id)
        if not include_revoked:
            query = query.where(ApiKey.revoked_at.is_(None))
        return self.session.scalars(query.order_by(ApiKey.created_at, ApiKey.id)).all()

    def get(self, key_id: uuid.UUID) -> ApiKey | None:
        return self.session.scalar(
            select(ApiKey).where(ApiKey.workspace_id == self.workspace_id, ApiKey.id == key_id)
        )

    def add(self, key: ApiKey) -> None:
        key.workspace_id = self.workspace_id
        self.session.add(key)
        self.session.flush()


def find_active_key_by_hash(session: Session, key_hash: str) -> ApiKey | None:
    """The one unscoped key query: authentication is what tells us the workspace."""
    return session.scalar(
        select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    )


def record_key_usage(connection: Connection, used: dict[uuid.UUID, datetime]) -> None:
    statement = (
        update(ApiKey)
        .where(ApiKey.id == bindparam("key_id"))
        .values(last_used_at=bindparam("used_at"))
    )
    connection.execute(
        statement, [{"key_id": key_id, "used_at": when} for key_id, when in used.items()]
    )


class UserRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def by_email_index(self, email_index: str) -> User | None:
        return self.session.scalar(select(User).where(User.email_index == email_index))

    def add(self, user: User) -> None:
        self.session.add(user)
        self.session.flush()

    def membership(self, workspace_id: uuid.UUID, user_id: uuid.UUID) -> Membership | None:
        return self.session.get(Membership, (workspace_id, user_id))

    def add_membership(self, membership: Membership) -> None:
        self.session.add(membership)
        self.session.flush()


class StaffSessionRepository:
    """Dashboard sessions, looked up by the keyed hash of their token."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def first_workspace_of(
        self, user_id: uuid.UUID, workspace_id: uuid.UUID | None = None
    ) -> uuid.UUID | None:
        query = select(Membership.workspace_id).where(Membership.user_id == user_id)
        if workspace_id is not None:
            query = query.where(Membership.workspace_id == workspace_id)
        return self.session.scalars(query.order_by(Membership.created_at).limit(1)).first()

    def add(self, staff_session: StaffSession) -> None:
        self.session.add(staff_session)
        self.session.flush()

    def active_with_role(self, token_hash: str) -> tuple[StaffSession, str, str] | None:
        """The unrevoked session of an active user, with the user's role in its workspace."""
        row = self.session.execute(
            select(StaffSession, Membership.role, Workspace.name)
            .join(
                Membership,
                (Membership.user_id == StaffSession.user_id)
                & (Membership.workspace_id == StaffSession.workspace_id),
            )
            .join(User, User.id == StaffSession.user_id)
            .join(Workspace, Workspace.id == StaffSession.workspace_id)
            .where(
                StaffSession.token_hash == token_hash,
                StaffSession.revoked_at.is_(None),
                User.is_active.is_(True),
            )
        ).first()
        if row is None:
            return None
        staff_session, role, name = row
        return staff_session, role, name

    def revoke(self, token_hash: str, moment: datetime) -> None:
        self.session.execute(
            update(StaffSession)
            .where(StaffSession.token_hash == token_hash, StaffSession.revoked_at.is_(None))
            .values(revoked_at=moment)
        )
