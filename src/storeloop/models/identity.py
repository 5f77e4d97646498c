"""Customer profiles and the identity graph that decides which identifiers share one."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from storeloop.models.base import Base


class Profile(Base):
    """One customer. The id is derived from the identifiers (see identity.graph), so the same
    events give the same profiles whatever order they arrive in."""

    __tablename__ = "profiles"
    __table_args__ = (
        Index("ix_profiles_workspace_email", "workspace_id", "email_index"),
        Index("ix_profiles_workspace_phone", "workspace_id", "phone_index"),
        Index("ix_profiles_workspace_last_seen", "workspace_id", "last_seen_at"),
        # The merged profiles, looked up by id for the rollups (SQLite would otherwise plan
        # the workspace's lookups through another index and scan every profile).
        Index(
            "ix_profiles_workspace_merged",
            "workspace_id",
            "id",
            sqlite_where=text("merged_into IS NOT NULL"),
            postgresql_where=text("merged_into IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    workspace_id: Mapped[uuid.UUID]
    # Set when a later link folded this profile into another; kept so old ids still resolve.
    merged_into: Mapped[uuid.UUID | None]
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    email_index: Mapped[str | None] = mapped_column(String(32))
    phone_index: Mapped[str | None] = mapped_column(String(32))
    # email, phone, name, address, ...: sealed with the profile id as associated data.
    personal_sealed: Mapped[bytes | None]
    traits: Mapped[dict[str, Any]]


class Identifier(Base):
    """A node of the identity graph: anonymous_id, user_id, email or phone.

    ``key`` is the id itself for anonymous_id and user_id, and a blind index for email and phone
    (whose value is sealed in ``value_sealed``).
    """

    __tablename__ = "identifiers"
    __table_args__ = (Index("ix_identifiers_workspace_profile", "workspace_id", "profile_id"),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    profile_id: Mapped[uuid.UUID]
    value_sealed: Mapped[bytes | None]
    first_seen_at: Mapped[datetime]


class IdentityLink(Base):
    """An edge of the identity graph: two identifiers seen together, first at ``seen_at``."""

    __tablename__ = "identity_links"
    __table_args__ = (Index("ix_identity_links_reverse", "workspace_id", "b_kind", "b_key"),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    a_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    a_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    b_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    b_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    seen_at: Mapped[datetime]
    message_id: Mapped[str] = mapped_column(String(255))


class IdentityConflict(Base):
    """A link that would have merged two different user ids; recorded instead of merged."""

    __tablename__ = "identity_conflicts"

    workspace_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    a_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    a_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    b_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    b_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(255))
    detected_at: Mapped[datetime]


class TraitSet(Base):
    """Traits last set on one identifier, each with the time and message that set it, sealed."""

    __tablename__ = "trait_sets"

    workspace_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    node_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    node_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    traits_sealed: Mapped[bytes]
    updated_at: Mapped[datetime]
