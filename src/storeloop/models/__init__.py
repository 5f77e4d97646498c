"""All ORM models, in one place so that domains never import each other to reach a table."""

from storeloop.models.base import Base
from storeloop.models.events import Event, InboxEntry, QuarantinedEvent
from storeloop.models.identity import (
    Identifier,
    IdentityConflict,
    IdentityLink,
    Profile,
    TraitSet,
)
from storeloop.models.workspaces import ApiKey, Membership, User, Workspace

__all__ = [
    "ApiKey",
    "Base",
    "Event",
    "Identifier",
    "IdentityConflict",
    "IdentityLink",
    "InboxEntry",
    "Membership",
    "Profile",
    "QuarantinedEvent",
    "TraitSet",
    "User",
    "Workspace",
]
