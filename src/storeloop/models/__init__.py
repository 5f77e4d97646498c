"""All ORM models, in one place so that domains never import each other to reach a table."""

from storeloop.models.analytics import (
    AttributionRollup,
    ClickRollup,
    CohortRollup,
    CustomerDayRollup,
    OrderRollup,
    RollupDirtyDay,
    TrafficHourRollup,
    TrafficRollup,
    VisitorDayRollup,
)
from storeloop.models.attribution import AttributionCredit, StoreSettings, Touchpoint
from storeloop.models.base import Base
from storeloop.models.commerce import Order, OrderLine, Refund, WebhookDelivery
from storeloop.models.events import DerivationTask, Event, InboxEntry, QuarantinedEvent
from storeloop.models.identity import (
    Identifier,
    IdentityConflict,
    IdentityLink,
    Profile,
    TraitSet,
)
from storeloop.models.marketing import (
    Campaign,
    CampaignInfluencer,
    Click,
    DiscountCode,
    Influencer,
    Link,
    Post,
)
from storeloop.models.workspaces import ApiKey, Membership, StaffSession, User, Workspace

__all__ = [
    "ApiKey",
    "AttributionCredit",
    "AttributionRollup",
    "Base",
    "Campaign",
    "CampaignInfluencer",
    "Click",
    "ClickRollup",
    "CohortRollup",
    "CustomerDayRollup",
    "DerivationTask",
    "DiscountCode",
    "Event",
    "Identifier",
    "IdentityConflict",
    "IdentityLink",
    "InboxEntry",
    "Influencer",
    "Link",
    "Membership",
    "Order",
    "OrderLine",
    "OrderRollup",
    "Post",
    "Profile",
    "QuarantinedEvent",
    "Refund",
    "RollupDirtyDay",
    "StaffSession",
    "StoreSettings",
    "Touchpoint",
    "TrafficHourRollup",
    "TrafficRollup",
    "TraitSet",
    "User",
    "VisitorDayRollup",
    "WebhookDelivery",
    "Workspace",
]
