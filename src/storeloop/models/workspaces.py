"""Workspaces (one store each), staff users, their memberships and API keys."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storeloop.models.base import Base, created_at_column, id_column


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[uuid.UUID] = id_column()
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    # The workspace's data key, wrapped by the instance master key (kit.crypto).
    wrapped_data_key: Mapped[bytes]
    # ISO 3166 region used to read phone numbers written without a country code.
    default_phone_region: Mapped[str | None] = mapped_column(String(2))
    created_at: Mapped[datetime] = created_at_column()
    # Bumped whenever a recompute gives touchpoints other channels: what was learned from the
    # old channels (attribution's data-driven weights) is learned again.
    channels_revision: Mapped[int] = mapped_column(default=0, server_default="0")


class User(Base):
    """A member of a store's staff; one account may belong to several workspaces."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = id_column()
    email_index: Mapped[str] = mapped_column(String(32), unique=True)
    email_sealed: Mapped[bytes]
    password_hash: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = created_at_column()


class Membership(Base):
    __tablename__ = "memberships"

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = created_at_column()


class ApiKey(Base):
    """A write key (ingestion only, may appear in a web page) or a secret key (management API)."""

    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("key_hash"),)

    id: Mapped[uuid.UUID] = id_column()
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at_column()
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class StaffSession(Base):
    """A signed-in dashboard session. The cookie holds a random token; only its keyed hash is
    stored, so a copy of the database cannot be turned into a session."""

    __tablename__ = "staff_sessions"
    __table_args__ = (UniqueConstraint("token_hash"),)

    id: Mapped[uuid.UUID] = id_column()
    token_hash: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = created_at_column()
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
